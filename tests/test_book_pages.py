"""The built HTML book: every page of the table of contents renders in headless Chromium to a non-blank
screenshot, no page shows a Python traceback, and with the network off every formula is typeset by the MathJax
shipped in _static (no raw TeX left). Run after ``sdr book --html`` (``make test`` does)."""

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from sdrlib import book

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1200,2000",
]
TRACEBACK_MARKS = ("Traceback (most recent call last)", "highlight-ipythontb")
# No network: every host name fails to resolve and any proxied request goes nowhere.
OFFLINE = [
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
]
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$")


def toc_pages() -> list[str]:
    """Every file named in _toc.yml (root first), without suffix."""
    return book.toc_files(ROOT)


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
    proc = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"chromium failed on {html.name}: {proc.stderr[-500:]}"
    assert png.is_file(), f"chromium failed on {html.name}: {proc.stderr[-500:]}"
    img = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    assert img.shape == (2000, 1200), img.shape
    inked = (img < 200).mean()  # share of pixels that are not (near-)white: text, figures, navigation
    assert inked > 0.01, f"{html.name} rendered a near-blank page (ink {inked:.3%}, std {img.std():.1f})"
    assert img.std() > 10, f"{html.name} rendered a near-blank page (ink {inked:.3%}, std {img.std():.1f})"


class VisibleText(HTMLParser):
    """The text of a DOM outside scripts, styles, code and MathJax's own output."""

    SKIP: ClassVar[set[str]] = {"script", "style", "pre", "code", "textarea", "mjx-container", "math"}

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.parts = 0, []

    def handle_starttag(self, tag, attrs):
        self.depth += tag in self.SKIP

    def handle_endtag(self, tag):
        self.depth -= tag in self.SKIP and self.depth > 0

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)


def test_pages_reference_assets_by_relative_paths():
    for page in toc_pages():
        text = (HTML / f"{page}.html").read_text(errors="replace")
        bad = [v for v in re.findall(r'(?:src|href)="([^"]*)"', text) if v.startswith(("/", "file:"))]
        assert not bad, f"{page}.html links absolute paths: {bad[:3]}"
        if 'class="math' in text:
            assert re.search(r'<script[^>]+src="(\.\./)*_static/mathjax/tex-chtml\.js', text), (
                f"{page}.html does not load the shipped MathJax (_static/mathjax/tex-chtml.js)"
            )


@pytest.mark.parametrize("page", toc_pages())
def test_formulas_render_offline(page, tmp_path):
    html = HTML / f"{page}.html"
    text = html.read_text(errors="replace")
    n_math = len(re.findall(r'class="math[ "]', text))  # 0 on pages without formulas: then no raw TeX either
    proc = subprocess.run(
        [
            chromium(),
            *FLAGS,
            *OFFLINE,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"chromium failed on {html.name}: {proc.stderr[-500:]}"
    dom = proc.stdout
    typeset = dom.count("<mjx-container")
    assert typeset >= n_math, f"{html.name}: {typeset} of {n_math} formulas typeset by MathJax with the network off"
    parser = VisibleText()
    parser.feed(dom)
    raw = RAW_TEX.findall("".join(parser.parts))
    assert not raw, f"{html.name} shows raw TeX: {raw[:5]}"


def test_the_formula_check_is_not_vacuous():
    """test_formulas_render_offline asks nothing of MathJax on pages without formulas (only that they show no
    raw TeX); the chapters that state the method must have some."""
    with_math = {
        p for p in toc_pages() if re.search(r'class="math[ "]', (HTML / f"{p}.html").read_text(errors="replace"))
    }
    assert {"book/02_sparse", "book/04_reconstruction", "book/05_explore"} <= with_math, with_math
