"""Running the book (DESIGN "Chapters"): notebook sources (jupytext), parameter profiles (papermill
parameter files), papermill execution of the chapter notebooks, and the Jupyter Book build.

    sdr book                                   # sync, execute every chapter in place (cpu), build the HTML
    sdr book --profile colab --chapters 02 --output-dir runs/colab --no-build
    sdr book --sync 02                         # book/src/02_sparse.py -> book/02_sparse.ipynb (no execution)
    sdr book --html                            # build the HTML only (no execution)

Chapter notebooks are written as jupytext percent-format scripts ``book/src/NN_name.py``, paired with
``book/NN_name.ipynb`` (``formats: ipynb,src//py:percent``); the executed ``.ipynb`` is what the book publishes.
A profile is a folder of papermill parameter files, at most one per chapter:
``book/profiles/<profile>/NN_name.yaml``, so that plain papermill runs the same thing as ``sdr book --profile``:

    papermill book/02_sparse.ipynb out.ipynb -f book/profiles/colab/02_sparse.yaml

The ``cpu`` profile is each notebook's own ``parameters`` cell (no file); a chapter with no file under a profile
runs with its own defaults too (told the profile's name).

The modules: ``chapters`` (the book's layout: root, chapters, profiles, table of contents, and the check that
they agree), ``notebooks`` (jupytext sync and the Colab install cell), ``params`` (parameters cells, -p values,
typing, folding papermill's injected cell), ``runner`` (papermill execution) and ``html`` (the Jupyter Book
build). This package only re-exports their public names: ``book.X`` works for each.
"""

from __future__ import annotations

from .chapters import (
    CHAPTER_GLOB,
    DEFAULT_PROFILE,
    PROFILES_DIR,
    TOC,
    chapters,
    find_root,
    layout_problems,
    profile_file,
    profile_names,
    select,
    sources,
    toc_files,
)
from .html import (
    BUILD_ARGS,
    MATHJAX_INTEGRITY,
    MATHJAX_KEEP,
    MATHJAX_VERSION,
    VENDOR_STATIC,
    BuildFailed,
    build_html,
    jupyter_book_executable,
    vendor_mathjax,
    write_verdicts,
)
from .notebooks import (
    INSTALL_CELL,
    JUPYTEXT_FORMATS,
    SOURCE_FORMAT,
    cell_sources,
    install_cell,
    keep_outputs,
    notebook_from_source,
    repository_url,
    sync,
    with_install_cell,
)
from .params import (
    assignments,
    chapter_defaults,
    chapter_parameters,
    coerce,
    declared_parameters,
    fold_file,
    fold_parameters,
    literal,
    parameters_cell,
    parse_overrides,
    parse_value,
    read_parameter_file,
    source_parameters,
    typed_value,
)
from .runner import (
    KERNEL,
    ChapterFailed,
    ChapterRun,
    execute_chapter,
    run,
)

__all__ = [
    "BUILD_ARGS",
    "BuildFailed",
    "CHAPTER_GLOB",
    "ChapterFailed",
    "ChapterRun",
    "DEFAULT_PROFILE",
    "INSTALL_CELL",
    "JUPYTEXT_FORMATS",
    "KERNEL",
    "MATHJAX_INTEGRITY",
    "MATHJAX_KEEP",
    "MATHJAX_VERSION",
    "PROFILES_DIR",
    "SOURCE_FORMAT",
    "TOC",
    "VENDOR_STATIC",
    "assignments",
    "build_html",
    "cell_sources",
    "chapter_defaults",
    "chapter_parameters",
    "chapters",
    "coerce",
    "declared_parameters",
    "execute_chapter",
    "find_root",
    "fold_file",
    "fold_parameters",
    "install_cell",
    "jupyter_book_executable",
    "keep_outputs",
    "layout_problems",
    "literal",
    "notebook_from_source",
    "parameters_cell",
    "parse_overrides",
    "parse_value",
    "profile_file",
    "profile_names",
    "read_parameter_file",
    "repository_url",
    "run",
    "select",
    "source_parameters",
    "sources",
    "sync",
    "toc_files",
    "typed_value",
    "vendor_mathjax",
    "with_install_cell",
    "write_verdicts",
]
