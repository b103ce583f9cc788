"""Running the chapters: papermill executes each chapter notebook with its profile's parameters (plus -p
overrides), in place (the injected values folded into the parameters cell) or into an output folder, then the
HTML is built."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chapters import DEFAULT_PROFILE, PROFILES_DIR, chapters, find_root, profile_file, select, sources
from .html import build_html
from .notebooks import cell_sources, notebook_from_source, sync
from .params import chapter_parameters, declared_parameters, fold_parameters, source_parameters, typed_value

KERNEL = "python3"


class ChapterFailed(RuntimeError):
    """A chapter notebook raised an exception while papermill executed it."""


@dataclass
class ChapterRun:
    """What running one chapter produced."""

    chapter: str
    source: Path
    output: Path
    parameters: dict
    seconds: float


# ----------------------------------------------------------------------------- execution


def _stale(script: Path, notebook: Path) -> bool:
    """Whether a chapter's notebook holds other cells than its source (book/src) would write."""
    import nbformat

    return cell_sources(nbformat.read(notebook, as_version=4)) != cell_sources(notebook_from_source(script))


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
    if output_dir:
        unwritten = [ch for ch, nb in todo.items() if not nb.is_file()]
        if unwritten:
            raise ValueError(
                f"chapter(s) {', '.join(unwritten)} have no notebook yet, and --output-dir runs the book's notebooks "
                f"as they are: write them first with sdr book --sync {' '.join(unwritten)}"
            )
        stale = [ch for ch in synced if _stale(scripts[ch], todo[ch])]
        if stale:
            log(
                f"sdr book: warning: the notebook of chapter(s) {', '.join(stale)} differs from its source (book/src); "
                f"--output-dir runs the notebook as it is (sdr book --sync {' '.join(stale)} writes it first)"
            )
    elif synced:
        sync(synced, root, log=log)
    runs = []
    for ch, nb in todo.items():
        if profile != DEFAULT_PROFILE and profile_file(root, profile, nb) is None:
            log(
                f"sdr book: note: no {PROFILES_DIR / profile / (nb.stem + '.yaml')}; chapter {ch} runs with "
                f"its notebook's defaults{' (profile ' + profile + ')' if 'profile' in declared[ch] else ''} (plus -p)",
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
