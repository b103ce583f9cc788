"""The built HTML book: every page of the table of contents renders in headless Chromium to a non-blank
screenshot, and no page shows a Python traceback. Run after ``jupyter-book build`` (``make test`` does)."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--window-size=1200,2000"]
TRACEBACK_MARKS = ("Traceback (most recent call last)", "highlight-ipythontb")


def toc_pages() -> list[str]:
    """Every file named in _toc.yml (root first), without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                pages.append(e["file"])
            walk(e.get("sections"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return pages


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "headless Chromium is needed for this test: sudo apt-get install chromium"
    return exe


@pytest.mark.parametrize("page", toc_pages())
def test_page_renders_without_traceback(page, tmp_path):
    html = HTML / f"{page}.html"
    assert html.is_file(), f"{html} is missing: build the book first (jupyter-book build . -W -n --keep-going)"
    text = html.read_text(errors="replace")
    for mark in TRACEBACK_MARKS:
        assert mark not in text, f"{html.name} shows a Python traceback ({mark!r})"
    png = tmp_path / "page.png"
    proc = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
                           html.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and png.is_file(), f"chromium failed on {html.name}: {proc.stderr[-500:]}"
    img = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    assert img.shape == (2000, 1200), img.shape
    inked = (img < 200).mean()          # share of pixels that are not (near-)white: text, figures, navigation
    assert inked > 0.01 and img.std() > 10, f"{html.name} rendered a near-blank page (ink {inked:.3%}, std {img.std():.1f})"
