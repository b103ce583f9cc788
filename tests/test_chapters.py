"""Adding a chapter (README "Contributing"): its source book/src/NN_name.py, one line in _toc.yml, and the
claims it tests in sdrlib/claims/catalogue.py; ``sdr book`` writes its notebook, and a profile file is optional.
These tests fail when one of those edits is missed, or when the pieces stop agreeing (sdrlib.book.chapters)."""

from pathlib import Path

import pytest

from sdrlib import book
from sdrlib.claims.catalogue import CLAIMS

ROOT = Path(__file__).resolve().parent.parent


def test_the_book_agrees_with_its_chapter_sources():
    """Every source has its notebook and a _toc.yml line, every notebook a source, every numbered _toc.yml entry
    a chapter or a page, every profile file and every claim of the catalogue a chapter."""
    problems = book.layout_problems(ROOT, [c.chapter for c in CLAIMS])
    assert not problems, "\n".join(problems)


def test_the_table_of_contents_holds_every_chapter_once():
    toc = book.toc_files(ROOT)
    assert toc[0] == "book/intro"
    assert len(toc) == len(set(toc)), toc
    for nb in book.chapters(ROOT).values():
        assert toc.count(f"book/{nb.stem}") == 1, nb.name


TOC = """\
format: jb-book
root: book/intro
parts:
  - caption: Chapters
    chapters:
      - file: book/01_first
      - file: book/02_second
      - file: book/03_page
"""


def small_book(root: Path) -> Path:
    """A book with two chapters made the documented way (source, notebook, _toc.yml line), a numbered Markdown
    page and a profile file for one chapter."""
    (root / "book" / "src").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\n")
    (root / "_toc.yml").write_text(TOC)
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "book" / "03_page.md").write_text("# A page\n")
    for stem in ("01_first", "02_second"):
        (root / "book" / "src" / f"{stem}.py").write_text('# %% tags=["parameters"]\nprofile = "cpu"\n')
        (root / "book" / f"{stem}.ipynb").write_text("{}")
    (root / book.PROFILES_DIR / "colab").mkdir(parents=True)
    (root / book.PROFILES_DIR / "colab" / "02_second.yaml").write_text("profile: colab\n")
    return root


def test_a_book_made_the_documented_way_has_no_problems(tmp_path):
    root = small_book(tmp_path)
    assert book.layout_problems(root, ["01_first", "02_second"]) == []
    assert list(book.chapters(root)) == ["01", "02"]


def _no_notebook(root: Path) -> None:
    (root / "book" / "02_second.ipynb").unlink()


def _no_toc_line(root: Path) -> None:
    (root / "_toc.yml").write_text(TOC.replace("      - file: book/02_second\n", ""))


def _no_source(root: Path) -> None:
    (root / "book" / "src" / "02_second.py").unlink()


def _renamed_source(root: Path) -> None:
    """The chapter renamed in book/src only: its old notebook, toc line and profile file are left behind."""
    (root / "book" / "src" / "02_second.py").rename(root / "book" / "src" / "02_renamed.py")


def _stale_toc_line(root: Path) -> None:
    (root / "_toc.yml").write_text(TOC + "      - file: book/04_gone\n")


def _stray_profile_file(root: Path) -> None:
    (root / book.PROFILES_DIR / "colab" / "05_nothing.yaml").write_text("profile: colab\n")


def _page_numbered_like_a_chapter(root: Path) -> None:
    (root / "book" / "03_page.md").rename(root / "book" / "02_page.md")
    (root / "_toc.yml").write_text(TOC.replace("book/03_page", "book/02_page"))


@pytest.mark.parametrize(
    ("slip", "claims", "message"),
    [
        (_no_notebook, (), "02_second.py has no notebook 02_second.ipynb: run sdr book --chapters 02"),
        (_no_toc_line, (), "chapter 02 (02_second.ipynb) is not in _toc.yml: add '- file: book/02_second'"),
        (_no_source, (), "02_second.ipynb has no source book/src/02_second.py"),
        (_renamed_source, (), "two chapters numbered 02: 02_renamed.ipynb and 02_second.ipynb"),
        (_stale_toc_line, (), "_toc.yml names book/04_gone, which is neither a chapter"),
        (_stray_profile_file, (), "book/profiles/colab/05_nothing.yaml names no chapter"),
        (_page_numbered_like_a_chapter, (), "page book/02_page.md and chapter 02_second.ipynb share the number 02"),
        (None, ("01_first", "06_missing"), "a claim of the catalogue names chapter '06_missing'"),
    ],
    ids=[
        "no notebook",
        "no toc line",
        "no source",
        "source renamed alone",
        "stale toc line",
        "stray profile file",
        "page numbered like a chapter",
        "claim of no chapter",
    ],
)
def test_each_missed_edit_is_named_with_its_fix(tmp_path, slip, claims, message):
    root = small_book(tmp_path)
    if slip:
        slip(root)
    problems = book.layout_problems(root, list(claims))
    assert any(message in p for p in problems), problems
