"""The Debian packages that hold the data sets' sources, read from ``debian-packages.txt`` beside this module:
one plain-text list that the Makefile reads before any venv exists and Python reads here."""

from __future__ import annotations

from pathlib import Path

DEBIAN_LIST = Path(__file__).with_name("debian-packages.txt")


def read_packages(path: Path = DEBIAN_LIST) -> tuple[str, ...]:
    """The package names of a list: one per line, in file order; ``#`` starts a comment, blank lines are skipped."""
    return tuple(word for line in path.read_text().splitlines() for word in line.split("#", 1)[0].split())


DEBIAN_PACKAGES = read_packages()  # ("dataset-fashion-mnist", "ufoai-textures", ...), in install order
