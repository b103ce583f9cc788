"""Running the book (DESIGN "Chapters"): notebook sources (jupytext), parameter profiles (papermill
parameter files), papermill execution of the chapter notebooks, and the Jupyter Book build.

    sdr book                                   # sync, execute every chapter in place (cpu), build the HTML
    sdr book --profile colab --chapters 02 --output-dir runs/colab --no-build
    sdr book --sync 02                         # book/src/02_sparse.py -> book/02_sparse.ipynb (no execution)
    sdr book --html                            # build the HTML only (no execution)

Chapter notebooks are written as jupytext percent-format scripts ``book/src/NN_name.py``, paired with
``book/NN_name.ipynb`` (``formats: ipynb,src//py:percent``); the executed ``.ipynb`` is what the book publishes.
A profile is a folder of papermill parameter files, one per chapter: ``book/profiles/<profile>/NN_name.yaml``,
so that plain papermill runs the same thing as ``sdr book --profile``:

    papermill book/02_sparse.ipynb out.ipynb -f book/profiles/colab/02_sparse.yaml

The ``cpu`` profile is each notebook's own ``parameters`` cell (no file).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PROFILE = "cpu"
PROFILES_DIR = Path("book") / "profiles"
KERNEL = "python3"
BUILD_ARGS = ("-W", "-n", "--keep-going")
JUPYTEXT_FORMATS = "ipynb,src//py:percent"
SOURCE_FORMAT = "py:percent"
# The Debian packages that hold the data the reference checkpoints were trained on (the Makefile's DATA_DEBS).
DATA_DEBS = ("dataset-fashion-mnist", "ufoai-textures", "opencv-doc", "mate-backgrounds", "plasma-workspace-wallpapers")
# MathJax 3 is shipped with the built HTML (formulas render offline): the npm package, checked against the
# registry's integrity hash, unpacked under VENDOR_STATIC/mathjax, which _config.yml copies into _static.
MATHJAX_VERSION = "3.2.2"
MATHJAX_INTEGRITY = "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
MATHJAX_KEEP = ("tex-chtml.js", "input/", "output/chtml.js", "output/chtml/", "a11y/", "ui/", "sre/", "adaptors/")
VENDOR_STATIC = Path(".vendor") / "static"
_PARAMS_MARK = re.compile(r"^# %%.*\btags=\[[^\]]*\"parameters\"")


class ChapterFailed(RuntimeError):
    """A chapter notebook raised an exception while papermill executed it."""


class BuildFailed(RuntimeError):
    """The Jupyter Book build reported errors or warnings (it runs with -W), or could not be prepared."""


@dataclass
class ChapterRun:
    """What running one chapter produced."""

    chapter: str
    source: Path
    output: Path
    parameters: dict
    seconds: float


# ----------------------------------------------------------------------------- the book and its chapters


def find_root(start: str | Path | None = None) -> Path:
    """The book's root: ``start`` (default: the working directory) or the package's parent, holding _config.yml."""
    cands = [Path(start)] if start is not None else [Path.cwd(), Path(__file__).resolve().parent.parent.parent]
    for c in cands:
        if (c / "_config.yml").is_file() and (c / "book").is_dir():
            return c.resolve()
    raise FileNotFoundError(f"no book found: expected _config.yml and book/ in {' or '.join(str(c) for c in cands)}")


def chapters(root: Path) -> dict[str, Path]:
    """The chapter notebooks book/NN_*.ipynb, keyed by their number "NN"."""
    found = {p.name[:2]: p for p in sorted((root / "book").glob("[0-9][0-9]_*.ipynb"))}
    if not found:
        raise FileNotFoundError(f"no chapter notebooks (book/NN_*.ipynb) under {root}")
    return found


def select(available: Mapping[str, Path], wanted: Sequence[str] | None) -> dict[str, Path]:
    """The chapters named in ``wanted`` ("01", "1" or "01_denoiser"); all of them when None or empty."""
    if not wanted:
        return dict(available)
    out = {}
    for w in wanted:
        key = w.split("_")[0].zfill(2) if w.split("_")[0].isdigit() else None
        if key not in available:
            names = ", ".join(f"{k} ({p.stem})" for k, p in available.items())
            raise ValueError(f"unknown chapter {w!r}; available: {names}")
        out[key] = available[key]
    return out


# ----------------------------------------------------------------------------- profiles


def profile_names(root: Path) -> list[str]:
    """``cpu`` (the notebooks' own defaults) and each folder of book/profiles/."""
    d = root / PROFILES_DIR
    found = sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []
    return [DEFAULT_PROFILE] + [p for p in found if p != DEFAULT_PROFILE]


def profile_file(root: Path, profile: str, notebook: Path) -> Path | None:
    """The papermill parameter file of ``notebook`` under ``profile`` (None: the notebook's defaults)."""
    names = profile_names(root)
    if profile not in names:
        raise ValueError(f"unknown profile {profile!r}; expected one of {names} (folders of {root / PROFILES_DIR})")
    f = root / PROFILES_DIR / profile / f"{notebook.stem}.yaml"
    return f if f.is_file() else None


def read_parameter_file(path: Path) -> dict[str, Any]:
    """A papermill parameter file, read exactly as ``papermill -f`` reads it."""
    from papermill.iorw import read_yaml_file

    params = read_yaml_file(str(path)) or {}
    if not isinstance(params, dict):
        raise ValueError(  # noqa: TRY004 - a user's file: ValueError, which the CLI reports in one line
            f"{path}: expected a mapping of parameter names to values, got {type(params).__name__}"
        )
    return params


def chapter_parameters(
    root: Path, profile: str, notebook: Path, declared: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The parameters papermill injects into a chapter: its profile file's, then the -p overrides it declares."""
    f = profile_file(root, profile, notebook)
    params = read_parameter_file(f) if f else {}
    unknown = set(params) - set(declared)
    if unknown:
        raise ValueError(f"{f} sets {sorted(unknown)}, which {notebook.name} does not declare")
    params.update({k: v for k, v in overrides.items() if k in declared})
    return params


# ----------------------------------------------------------------------------- execution


def execute_chapter(chapter: str, source: Path, output: Path, parameters: Mapping[str, Any]) -> float:
    """Execute one chapter with papermill (venv kernel, working directory book/); seconds taken.

    Raises ChapterFailed with one line naming the chapter and the failing cell.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(source),
            str(output),
            parameters=dict(parameters),
            kernel_name=KERNEL,
            cwd=str(source.parent),
            progress_bar=False,
            log_output=False,
        )
    except PapermillExecutionError as e:
        first = (e.source or "").strip().splitlines()[0][:60] if (e.source or "").strip() else ""
        evalue = (e.evalue or "").strip().splitlines()[0] if (e.evalue or "").strip() else ""
        raise ChapterFailed(
            f'chapter {chapter} ({source.name}) failed in cell [{e.exec_count}] "{first}": '
            f"{e.ename}: {evalue} (executed notebook: {output})"
        ) from None
    except Exception as e:  # noqa: BLE001 - a dead kernel, a missing kernel, an unreadable notebook
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ChapterFailed(
            f"chapter {chapter} ({source.name}) could not be executed: {type(e).__name__}: {msg}"
        ) from None
    return time.perf_counter() - t0


def _check_overrides(overrides: Mapping[str, Any], declared: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise ValueError when a -p name is a parameter of none of the chapters run, or its value cannot take the
    type of that parameter's default (checked before anything is synced or executed)."""
    unused = [k for k in overrides if not any(k in d for d in declared.values())]
    if unused:
        known = sorted({k for d in declared.values() for k in d})
        raise ValueError(f"-p {', '.join(unused)}: not a parameter of chapter(s) {', '.join(declared)}; known: {known}")
    for d in declared.values():  # a value of the wrong type: refused before anything runs
        for k, v in overrides.items():
            if k in d:
                typed_value(k, v, d[k])


def _run_one(
    root: Path, ch: str, nb: Path, params: Mapping[str, Any], output_dir: Path | None, log: Callable
) -> ChapterRun:
    """Execute one chapter; in place, fold the injected values and move the result over book/NN_*.ipynb."""
    import nbformat

    out = output_dir / nb.name if output_dir else root / "_build" / "papermill" / nb.name
    secs = execute_chapter(ch, nb, out, params)
    if not output_dir:
        done = nbformat.read(out, as_version=4)
        changed = fold_parameters(done)
        nbformat.write(done, out)
        os.replace(out, nb)
        out = nb
        if changed:
            log(
                f"sdr book: note: {nb.name}'s parameters cell now holds {sorted(changed)} of this run "
                f"(sdr book --sync {ch} restores its source's)",
                flush=True,
            )
    log(f"sdr book: chapter {ch} done in {secs:.0f} s -> {out}", flush=True)
    return ChapterRun(ch, nb, out, dict(params), secs)


def run(
    profile: str = DEFAULT_PROFILE,
    wanted: Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    output_dir: str | Path | None = None,
    build: bool = True,
    root: str | Path | None = None,
    log: Callable = print,
) -> list[ChapterRun]:
    """Execute the chosen chapters with a profile's parameter files (+ overrides), then build the HTML.

    In place by default: the notebooks are first synced from their sources, each chapter is executed into
    _build/papermill/, its injected parameters are folded into its parameters cell, and it is moved over
    book/NN_*.ipynb only when it succeeded. With ``output_dir``, the book's notebooks are executed as they are
    (exactly ``papermill NB OUT -f book/profiles/<profile>/NN_*.yaml``) and left untouched.
    """
    root = find_root(root)
    todo = select(chapters(root), wanted)
    scripts = {s.name[:2]: s for s in sources(root)}
    declared = {
        ch: source_parameters(scripts[ch]) if ch in scripts else declared_parameters(nb) for ch, nb in todo.items()
    }
    overrides = dict(overrides or {})
    _check_overrides(overrides, declared)
    params = {ch: chapter_parameters(root, profile, nb, declared[ch], overrides) for ch, nb in todo.items()}
    synced = [ch for ch in todo if ch in scripts]
    if synced and not output_dir:
        sync(synced, root, log=log)
    runs = []
    for ch, nb in todo.items():
        if profile != DEFAULT_PROFILE and profile_file(root, profile, nb) is None:
            log(
                f"sdr book: note: no {PROFILES_DIR / profile / (nb.stem + '.yaml')}; chapter {ch} runs with "
                "its notebook's defaults (plus -p)",
                flush=True,
            )
        log(f"sdr book: chapter {ch} ({nb.name}), profile {profile}: executing ...", flush=True)
        runs.append(_run_one(root, ch, nb, params[ch], Path(output_dir) if output_dir else None, log))
    if build:
        if output_dir:
            log("sdr book: --output-dir given: the book's own notebooks are unchanged; building the HTML from them")
        secs = build_html(root, log=log)
        log(f"sdr book: HTML built in {secs:.0f} s -> {root / '_build' / 'html' / 'index.html'}", flush=True)
    return runs


# The parts of the runner in their own modules (names re-exported: ``book.X`` works for each).
from .html import build_html, jupyter_book_executable, vendor_mathjax, write_verdicts  # noqa: E402,F401
from .params import (
    assignments,
    chapter_defaults,
    coerce,
    declared_parameters,
    fold_file,  # noqa: E402,F401
    fold_parameters,
    literal,
    parameters_cell,
    parse_overrides,
    parse_value,
    source_parameters,
    typed_value,
)
from .sources import (
    cell_sources,
    install_cell,
    keep_outputs,
    notebook_from_source,
    repository_url,  # noqa: E402,F401
    sources,
    sync,
    with_install_cell,
)
