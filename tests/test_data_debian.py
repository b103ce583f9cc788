"""The one list of the Debian packages that hold the data (sdrlib/data/debian-packages.txt): Python reads it as
``sdrlib.data.DEBIAN_PACKAGES`` (the chapters' Colab install cell is written from it), the Makefile reads the
same file before any venv exists, and it ships with the package."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from sdrlib import data
from sdrlib.data import debian

ROOT = Path(__file__).resolve().parent.parent


def test_the_list_in_install_order() -> None:
    assert data.DEBIAN_PACKAGES == (
        "dataset-fashion-mnist",
        "ufoai-textures",
        "opencv-doc",
        "mate-backgrounds",
        "plasma-workspace-wallpapers",
    )


def test_comments_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_text("# a comment\n\none   # what it is for\n  two\n#three\n")
    assert debian.read_packages(f) == ("one", "two")


def test_the_makefile_reads_the_same_list(tmp_path: Path) -> None:
    assert shutil.which("make"), "make runs the test suite (make test), so it is here"
    probe = tmp_path / "probe.mk"
    probe.write_text("print-debs:\n\t@echo $(DATA_DEBS)\n")
    out = subprocess.run(
        ["make", "-s", "--no-print-directory", "-f", "Makefile", "-f", str(probe), "print-debs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert tuple(out.split()) == data.DEBIAN_PACKAGES


def test_the_list_ships_as_package_data() -> None:
    config = (ROOT / "pyproject.toml").read_text()
    section = config.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert f'"sdrlib.data" = ["{debian.DEBIAN_LIST.name}"]' in section
