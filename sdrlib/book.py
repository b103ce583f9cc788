"""Running the book (DESIGN "Chapters"): parameter profiles, papermill execution of the chapter
notebooks, and the Jupyter Book build.

    sdr book                                   # cpu profile, every chapter, in place, then the HTML
    sdr book --profile paper -p n_eval 1000 --chapters 01 --output-dir runs/paper --no-build

Chapter notebooks are written as readable percent-format scripts in ``book/src/NN_name.py``
(``# %%`` code cells, ``# %% [markdown]`` text cells, ``tags=[...]`` after the marker) and turned
into ``book/NN_name.ipynb`` by :func:`sync` (``python -m sdrlib.book sync NN``); the executed
``.ipynb`` is what the book publishes.
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

PROFILE_NAMES = ("cpu", "colab", "paper")
KERNEL = "python3"
BUILD_ARGS = ("-W", "-n", "--keep-going")
URL_PLACEHOLDER = "{{repository_url}}"

_REFS = ["small-fashion-mnist", "small-textures"]   # the shipped reference checkpoints

# The parameters of each chapter under each profile. "cpu" is also what each notebook's `parameters`
# cell holds (tests/test_book.py checks this), so opening a notebook and running it is the cpu profile.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {   # every chapter within a few minutes on a 2-core CPU
        "01": {"profile": "cpu", "data_sets": None, "n_show": 8, "train_data": "fashion-mnist",
               "demo_preset": "small", "demo_seconds": 180, "demo_batch": 64,
               "references": _REFS, "device": "auto", "seed": 0, "n_eval": 32,
               "sigmas": [0.05, 0.1, 0.2, 0.4, 0.8], "n_examples": 2, "workers": 2},
    },
    "colab": {  # a free Colab session: a GPU if one is attached, otherwise its 2 CPU cores
        "01": {"profile": "colab", "data_sets": None, "n_show": 8, "train_data": "fashion-mnist",
               "demo_preset": "small", "demo_seconds": 300, "demo_batch": 128,
               "references": _REFS, "device": "auto", "seed": 0, "n_eval": 128,
               "sigmas": [0.02, 0.05, 0.1, 0.2, 0.4, 0.8], "n_examples": 3, "workers": 2},
    },
    "paper": {  # GPU scale: the paper's architecture, larger evaluation sets
        "01": {"profile": "paper", "data_sets": None, "n_show": 12, "train_data": "fashion-mnist",
               "demo_preset": "paper", "demo_seconds": 900, "demo_batch": 512,
               "references": _REFS, "device": "cuda", "seed": 0, "n_eval": 1000,
               "sigmas": [0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0], "n_examples": 4,
               "workers": 16},
    },
}


# Chapters 2-4: the cpu values are each notebook's parameters cell; colab and paper scale them up.
_CPU = {
    "02": {"profile": "cpu", "references": _REFS, "n_images": 1000, "sigma": 0.2,
           "sigmas": [0.0, 0.05, 0.1, 0.2, 0.4, 0.8], "n_sweep": 500, "n_noise": 2, "tau": 0.1,
           "selective_below": 0.3, "nonselective_above": 0.9, "n_top": 8, "device": "cpu", "seed": 0},
    "03": {"profile": "cpu", "references": _REFS, "n_train": 3000, "n_test": 1000, "sigma": 0.2,
           "sigmas": [0.0, 0.05, 0.1, 0.2, 0.4], "n_sweep": 1000, "n_noise": 2, "k": 10, "kmeans_restarts": 4,
           "probe_epochs": 100, "n_query": 4, "device": "cpu", "seed": 0},
    "04": {"profile": "cpu", "references": _REFS, "n_targets": 4, "n_per_target": 3, "n_steps": 20,
           "match_iter": 25, "match_lr": 0.01, "n_noise_target": 4, "n_uncond": 12,
           "ascent": {"h0": 0.1, "beta": 0.5, "sigma0": 1.0, "sigma_L": 0.05, "max_iter": 400},
           "adaptive_match_iter": 5, "n_knn": 3000, "k": 10, "sigma_knn": 0.2, "n_noise_knn": 2,
           "device": "cpu", "seed": 0},
}
_SCALE = {
    "colab": {"02": {"n_images": 2000, "n_sweep": 1000, "n_noise": 4},
              "03": {"n_train": 6000, "n_test": 2000, "n_sweep": 2000, "n_noise": 4, "probe_epochs": 300,
                     "kmeans_restarts": 10},
              "04": {"n_steps": 50, "match_iter": 50, "n_noise_target": 10, "adaptive_match_iter": 10}},
    "paper": {"02": {"n_images": 10000, "n_sweep": 2000, "n_noise": 20,
                     "sigmas": [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0]},
              "03": {"n_train": 20000, "n_test": 5000, "n_sweep": 5000, "n_noise": 20, "probe_epochs": 500,
                     "kmeans_restarts": 10,
                     "sigmas": [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6]},
              "04": {"n_targets": 8, "n_per_target": 8, "n_steps": 100, "match_iter": 100, "n_noise_target": 10,
                     "n_uncond": 32, "adaptive_match_iter": 20, "n_knn": 20000, "n_noise_knn": 20,
                     "ascent": {"h0": 0.01, "beta": 0.05, "sigma0": 1.0, "sigma_L": 0.04, "max_iter": 20000}}},
}
for _ch, _params in _CPU.items():
    PROFILES["cpu"][_ch] = dict(_params)
    for _prof, _over in _SCALE.items():
        PROFILES[_prof][_ch] = {**_params, "profile": _prof, "device": "auto" if _prof == "colab" else "cuda",
                                **_over[_ch]}


class ChapterFailed(RuntimeError):
    """A chapter notebook raised an exception while papermill executed it."""


class BuildFailed(RuntimeError):
    """The Jupyter Book build reported errors or warnings (it runs with -W)."""


@dataclass
class ChapterRun:
    """What running one chapter produced."""

    chapter: str
    source: Path
    output: Path
    parameters: dict
    seconds: float


def find_root(start: str | Path | None = None) -> Path:
    """The book's root: ``start`` (default: the working directory) or the package's parent, holding _config.yml."""
    cands = [Path(start)] if start is not None else [Path.cwd(), Path(__file__).resolve().parent.parent]
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
            raise ValueError(f"unknown chapter {w!r}; available: {', '.join(f'{k} ({p.stem})' for k, p in available.items())}")
        out[key] = available[key]
    return out


def parse_value(text: str) -> Any:
    """A -p value: JSON when it parses (numbers, lists, true/false/null, quoted strings), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(pairs: Sequence[Sequence[str]]) -> dict[str, Any]:
    """-p NAME VALUE pairs as a dict of parsed values."""
    out = {}
    for pair in pairs:
        if len(pair) != 2 or not pair[0].isidentifier():
            raise ValueError(f"-p expects NAME VALUE with NAME a Python identifier, got {list(pair)}")
        out[pair[0]] = parse_value(pair[1])
    return out


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """The names and default values assigned in a notebook's cell tagged ``parameters``."""
    import nbformat
    nb = nbformat.read(notebook, as_version=4)
    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        raise ValueError(f"{notebook} has no cell tagged 'parameters'")
    out = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def chapter_parameters(chapter: str, profile: str, declared: Mapping[str, Any],
                       overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters papermill injects into a chapter: the profile's, then the -p overrides it declares."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILE_NAMES}")
    params = dict(PROFILES[profile].get(chapter, {}))
    unknown = set(params) - set(declared)
    if unknown:
        raise ValueError(f"profile {profile!r} sets {sorted(unknown)}, which chapter {chapter} does not declare")
    params.update({k: v for k, v in overrides.items() if k in declared})
    return params


def execute_chapter(chapter: str, source: Path, output: Path, parameters: Mapping[str, Any]) -> float:
    """Execute one chapter with papermill (venv kernel, working directory book/); seconds taken.

    Raises ChapterFailed with one line naming the chapter and the failing cell.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError
    output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(source), str(output), parameters=dict(parameters), kernel_name=KERNEL,
                            cwd=str(source.parent), progress_bar=False, log_output=False)
    except PapermillExecutionError as e:
        first = (e.source or "").strip().splitlines()[0][:60] if (e.source or "").strip() else ""
        evalue = (e.evalue or "").strip().splitlines()[0] if (e.evalue or "").strip() else ""
        raise ChapterFailed(f"chapter {chapter} ({source.name}) failed in cell [{e.exec_count}] \"{first}\": "
                            f"{e.ename}: {evalue} (executed notebook: {output})") from None
    except Exception as e:  # a dead kernel, a missing kernel, an unreadable notebook
        raise ChapterFailed(f"chapter {chapter} ({source.name}) could not be executed: "
                            f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}") from None
    return time.perf_counter() - t0


def jupyter_book_executable() -> str:
    """The jupyter-book command next to this Python (the venv's bin), else the one on PATH."""
    here = Path(sys.executable).parent / "jupyter-book"
    if here.is_file():
        return str(here)
    import shutil
    found = shutil.which("jupyter-book")
    if found is None:
        raise FileNotFoundError("jupyter-book is not installed (pip install -r requirements.txt)")
    return found


def build_html(root: Path) -> float:
    """``jupyter-book build ROOT -W -n --keep-going``; seconds taken. Raises BuildFailed on a non-zero exit."""
    t0 = time.perf_counter()
    proc = subprocess.run([jupyter_book_executable(), "build", str(root), *BUILD_ARGS], cwd=root)
    if proc.returncode != 0:
        raise BuildFailed(f"jupyter-book build {' '.join(BUILD_ARGS)} failed with exit status {proc.returncode} "
                          "(its warnings are printed above)")
    return time.perf_counter() - t0


def run(profile: str = "cpu", wanted: Sequence[str] | None = None, overrides: Mapping[str, Any] | None = None,
        output_dir: str | Path | None = None, build: bool = True, root: str | Path | None = None,
        log=print) -> list[ChapterRun]:
    """Execute the chosen chapters with a profile's parameters (+ overrides), then build the HTML.

    In place by default: each chapter is executed into _build/papermill/ and moved over book/NN_*.ipynb only
    when it succeeds. With ``output_dir``, executed notebooks go there and the book's notebooks are untouched.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILE_NAMES}")
    root = find_root(root)
    todo = select(chapters(root), wanted)
    overrides = dict(overrides or {})
    declared = {ch: declared_parameters(p) for ch, p in todo.items()}
    unused = [k for k in overrides if not any(k in d for d in declared.values())]
    if unused:
        known = sorted({k for d in declared.values() for k in d})
        raise ValueError(f"-p {', '.join(unused)}: not a parameter of chapter(s) {', '.join(todo)}; known: {known}")
    runs = []
    for ch, src in todo.items():
        params = chapter_parameters(ch, profile, declared[ch], overrides)
        if ch not in PROFILES[profile]:
            log(f"sdr book: note: chapter {ch} has no {profile!r} parameters in sdrlib.book.PROFILES; "
                "it runs with its notebook's defaults (plus -p)", flush=True)
        out = Path(output_dir) / src.name if output_dir else root / "_build" / "papermill" / src.name
        log(f"sdr book: chapter {ch} ({src.name}), profile {profile}: executing ...", flush=True)
        secs = execute_chapter(ch, src, out, params)
        if not output_dir:
            os.replace(out, src)
            out = src
        log(f"sdr book: chapter {ch} done in {secs:.0f} s -> {out}", flush=True)
        runs.append(ChapterRun(ch, src, out, params, secs))
    if build:
        if output_dir:
            log("sdr book: --output-dir given: the book's own notebooks are unchanged; building the HTML from them")
        secs = build_html(root)
        log(f"sdr book: HTML built in {secs:.0f} s -> {root / '_build' / 'html' / 'index.html'}", flush=True)
    return runs


# ----------------------------------------------------------------------------- notebook sources

_MARK = re.compile(r"^# %%(?P<md> \[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")


def script_to_notebook(text: str):
    """A percent-format script (``# %%`` cells) as an nbformat v4 notebook with the python3 kernel."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    cells, cur, kind, tags = [], [], None, []

    def flush() -> None:
        if kind is None:
            return
        body = "\n".join(cur).strip("\n")
        if kind == "markdown":
            body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            cell = new_markdown_cell(body)
        else:
            cell = new_code_cell(body)
        if tags:
            cell.metadata["tags"] = list(tags)
        cells.append(cell)

    for line in text.splitlines():
        m = _MARK.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            tags = json.loads(m.group("tags")) if m.group("tags") else []
            cur = []
        elif kind is not None:
            cur.append(line)
    flush()
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    return nb


def repository_url(root: Path) -> str:
    """``repository.url`` of the book's _config.yml (the one place the repository address is written)."""
    import yaml
    cfg = yaml.safe_load((root / "_config.yml").read_text())
    url = (cfg.get("repository") or {}).get("url")
    if not url:
        raise ValueError(f"{root / '_config.yml'} sets no repository.url")
    return url


def sources(root: Path) -> dict[Path, Path]:
    """Each chapter script book/src/NN_*.py and the notebook it becomes."""
    return {s: root / "book" / (s.stem + ".ipynb") for s in sorted((root / "book" / "src").glob("[0-9][0-9]_*.py"))}


def notebook_from_source(script: Path, root: Path):
    """The notebook of a chapter script, with the repository URL of _config.yml filled in."""
    return script_to_notebook(script.read_text().replace(URL_PLACEHOLDER, repository_url(root)))


def sync(wanted: Sequence[str], root: str | Path | None = None) -> list[Path]:
    """Write book/NN_*.ipynb from book/src/NN_*.py for the chapters named (outputs are dropped: run
    ``sdr book`` afterwards). Chapters must be named, so that nobody else's executed notebook is overwritten."""
    import nbformat
    if not wanted:
        raise ValueError("name the chapters to sync (e.g. 01): syncing drops a notebook's outputs")
    root = find_root(root)
    by_chapter = {s.name[:2]: (s, nb) for s, nb in sources(root).items()}
    written = []
    for ch in select({k: nb for k, (_, nb) in by_chapter.items()}, wanted):
        script, nb_path = by_chapter[ch]
        nbformat.write(notebook_from_source(script, root), nb_path)
        written.append(nb_path)
    return written


def cell_sources(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    """(type, source, tags) of a notebook's cells, leaving out papermill's injected-parameters cell."""
    return [(c.cell_type, c.source, tuple(c.get("metadata", {}).get("tags", []))) for c in nb.cells
            if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "sync":
        sys.exit("usage: python -m sdrlib.book sync NN [NN ...]   (book/src/NN_*.py -> book/NN_*.ipynb)")
    for p in sync(sys.argv[2:]):
        print(f"wrote {p}")
