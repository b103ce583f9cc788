"""Notebook sources: each chapter is a jupytext percent-format script ``book/src/NN_name.py`` paired with
``book/NN_name.ipynb``; ``sync`` writes the notebook from the script (keeping the outputs of unchanged
cells) with the Colab install cell built from ``_config.yml``'s repository URL."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from .chapters import find_root, select, sources

JUPYTEXT_FORMATS = "ipynb,src//py:percent"
SOURCE_FORMAT = "py:percent"

# ----------------------------------------------------------------------------- notebook sources (jupytext)


def repository_url(root: Path) -> str:
    """``repository.url`` of the book's _config.yml (the one place the repository address is written)."""
    import yaml

    cfg = yaml.safe_load((root / "_config.yml").read_text())
    url = (cfg.get("repository") or {}).get("url")
    if not url:
        raise ValueError(f"{root / '_config.yml'} sets no repository.url")
    return url


INSTALL_CELL = """\
# In Colab: install the book's library, and the Debian packages that hold the
# data its reference checkpoints were trained on. Elsewhere: check that sdrlib
# is installed. (Written by `sdr book --sync` from _config.yml's repository.)
import os
import subprocess
import sys

REPO = "{url}"
if "google.colab" in sys.modules:
    HERE = "/content/{name}"
{debs}
    apt = f"apt-get install -y -qq {{' '.join(DEBS)}} >/dev/null"
    subprocess.run(f"{{apt}} || (apt-get update -qq && {{apt}})", shell=True,
                   check=True)
    if not os.path.isdir(HERE):
        subprocess.run(["git", "clone", "--depth", "1", REPO, HERE], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e",
                    f"{{HERE}}[baselines,digits]"], check=True)
    sys.path.insert(0, HERE)
else:
    try:
        import sdrlib  # noqa: F401
    except ImportError:
        print(f"sdrlib is not installed for this kernel: in a clone of {{REPO}}"
              " run `make setup` and pick its .venv kernel (or pip install -e)")"""


def install_cell(root: Path) -> str:
    """The first cell of every chapter: installs sdrlib and the data in Colab, from _config.yml's repository and
    the one list of Debian data packages (``sdrlib.data.DEBIAN_PACKAGES``, which the Makefile reads too)."""
    from ..data import DEBIAN_PACKAGES  # imported here: sdrlib.data brings torch, which sdr book --sync needs not

    url = repository_url(root)
    name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    debs = (
        textwrap.fill(
            ", ".join(f'"{d}"' for d in DEBIAN_PACKAGES),
            width=78,
            initial_indent="    DEBS = [",
            subsequent_indent=" " * 12,
            break_long_words=False,
            break_on_hyphens=False,
        )
        + "]"
    )
    return INSTALL_CELL.format(url=url, name=name, debs=debs)


def with_install_cell(text: str, cell: str) -> str:
    """A chapter script whose first cell (tagged remove-cell) is replaced by ``cell``."""
    lines = text.split("\n")
    starts = [i for i, ln in enumerate(lines) if ln.startswith("# %%")]
    if not starts or "remove-cell" not in lines[starts[0]]:
        raise ValueError('a chapter script must start with its install cell (# %% tags=["remove-cell"])')
    end = starts[1] if len(starts) > 1 else len(lines)
    return "\n".join(lines[: starts[0] + 1] + cell.split("\n") + [""] + lines[end:])


def keep_outputs(nb, previous) -> int:
    """Give each code cell of ``nb`` the outputs of a cell of ``previous`` with the very same source (in order);
    the number of cells that got outputs. Cells whose code changed get none: no stale outputs."""
    pool: dict[str, list] = {}
    for c in previous.cells:
        if c.cell_type == "code" and "injected-parameters" not in c.get("metadata", {}).get("tags", []):
            pool.setdefault(c.source, []).append(c)
    kept = 0
    for c in nb.cells:
        if c.cell_type == "code" and pool.get(c.source):
            old = pool[c.source].pop(0)
            c.outputs, c.execution_count = old.get("outputs", []), old.get("execution_count")
            kept += 1
    if "language_info" in previous.metadata:
        nb.metadata["language_info"] = previous.metadata["language_info"]
    return kept


def notebook_from_source(script: Path, previous: Path | None = None):
    """The notebook of a chapter script (jupytext), with the outputs of ``previous`` kept for unchanged cells."""
    import jupytext
    import nbformat

    nb = jupytext.read(script, fmt=SOURCE_FORMAT)
    if previous is not None and previous.is_file():
        keep_outputs(nb, nbformat.read(previous, as_version=4))
    nb.metadata.setdefault("jupytext", {})["formats"] = JUPYTEXT_FORMATS
    return nb


def sync(wanted: Sequence[str] | None = None, root: str | Path | None = None, log: Callable = print) -> list[Path]:
    """Write book/NN_*.ipynb from book/src/NN_*.py with jupytext (all chapters when ``wanted`` is empty).

    The install cell of the script is first brought in line with _config.yml. Cells whose code is unchanged
    keep their outputs; changed cells have none until ``sdr book`` runs them."""
    import jupytext

    root = find_root(root)
    by_chapter = {s.name[:2]: (s, nb) for s, nb in sources(root).items()}
    cell = install_cell(root)
    written = []
    for ch in select({k: nb for k, (_, nb) in by_chapter.items()}, wanted):
        script, nb_path = by_chapter[ch]
        text = script.read_text()
        fixed = with_install_cell(text, cell)
        if fixed != text:
            script.write_text(fixed)
            log(f"sdr book: {script.relative_to(root)}: install cell updated from _config.yml", flush=True)
        jupytext.write(notebook_from_source(script, nb_path), nb_path, fmt="ipynb")
        written.append(nb_path)
    return written


def cell_sources(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    """(type, source, tags) of a notebook's cells, leaving out papermill's injected-parameters cell."""
    return [
        (c.cell_type, c.source, tuple(c.get("metadata", {}).get("tags", [])))
        for c in nb.cells
        if "injected-parameters" not in c.get("metadata", {}).get("tags", [])
    ]
