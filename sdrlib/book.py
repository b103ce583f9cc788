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

import ast
import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable, Mapping, MutableMapping, Sequence
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
DATA_DEBS = ("dataset-fashion-mnist", "ufoai-textures", "opencv-doc", "mate-backgrounds",
             "plasma-workspace-wallpapers")
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
            names = ", ".join(f"{k} ({p.stem})" for k, p in available.items())
            raise ValueError(f"unknown chapter {w!r}; available: {names}")
        out[key] = available[key]
    return out


# ----------------------------------------------------------------------------- parameters

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


def assignments(source: str) -> dict[str, Any]:
    """The ``name = literal`` assignments of a cell's source, as a dict."""
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def parameters_cell(nb) -> int:
    """The index of a notebook's one cell tagged ``parameters``."""
    found = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(found) != 1:
        raise ValueError(f"expected one cell tagged 'parameters', found {len(found)}")
    return found[0]


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """The names and default values assigned in a notebook's cell tagged ``parameters``."""
    import nbformat
    nb = nbformat.read(notebook, as_version=4)
    try:
        return assignments(nb.cells[parameters_cell(nb)].source)
    except ValueError as e:
        raise ValueError(f"{notebook}: {e}") from None


def source_parameters(script: Path) -> dict[str, Any]:
    """The defaults in the ``parameters`` cell of a percent-format chapter script (read without jupytext)."""
    lines, body, inside = script.read_text().splitlines(), [], False
    for line in lines:
        if line.startswith("# %%"):
            if inside:
                break
            inside = bool(_PARAMS_MARK.match(line))
        elif inside:
            body.append(line)
    if not inside:
        raise ValueError(f"{script} has no cell tagged 'parameters'")
    return assignments("\n".join(body))


def chapter_defaults(chapter: str) -> dict[str, Any]:
    """The parameters cell of chapter ``chapter`` ("02"), read from its source book/src/02_*.py.

    Looked for under the working directory (a chapter runs in book/) and then next to this package."""
    key = chapter.split("_")[0].zfill(2)
    here = Path(__file__).resolve().parent.parent / "book" / "src"
    for d in (Path.cwd() / "src", Path.cwd() / "book" / "src", here):
        found = sorted(d.glob(f"{key}_*.py"))
        if found:
            return source_parameters(found[0])
    raise FileNotFoundError(f"no source of chapter {chapter!r} (book/src/{key}_*.py) under {Path.cwd()} or {here}")


def _parse_text(text: str) -> Any:
    """A parameter given as text: JSON, else YAML (``[a, b]``, ``{k: 1}``), else the text itself."""
    import yaml
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def typed_value(name: str, value: Any, default: Any) -> Any:
    """``value`` with the type of ``default``: text (papermill -p) is parsed; a mismatch raises ValueError."""
    if default is None:
        parsed = _parse_text(value) if isinstance(value, str) else value
        return parsed if isinstance(parsed, (list, dict)) else value
    want = type(default)
    if want is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        parsed = value
    else:
        parsed = _parse_text(value) if isinstance(value, str) else value
    if want is float and isinstance(parsed, int) and not isinstance(parsed, bool):
        parsed = float(parsed)
    if want in (list, tuple) and isinstance(parsed, (list, tuple)) and type(parsed) is not want:
        parsed = want(parsed)
    if not isinstance(parsed, want) or (isinstance(parsed, bool) and want is not bool):
        hint = " (write it as JSON, e.g. '[1, 2]' or '{\"a\": 1}')" if want in (list, tuple, dict) else ""
        raise ValueError(f"parameter {name!r}: got {value!r}, expected a value of type {want.__name__} like its "
                         f"default {default!r}{hint}")
    return parsed


def coerce(namespace: MutableMapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Give each parameter in ``namespace`` the type of its default, in place (papermill -p passes text).

    A chapter calls ``coerce(globals(), chapter_defaults("NN"))`` in the cell after its parameters;
    returns the values that changed. Raises ValueError naming the parameter, the value and the type expected."""
    changed = {}
    for name, default in defaults.items():
        if name in namespace:
            new = typed_value(name, namespace[name], default)
            if new is not namespace[name]:
                namespace[name] = changed[name] = new
    return changed


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
            f"{path}: expected a mapping of parameter names to values, got {type(params).__name__}")
    return params


def chapter_parameters(root: Path, profile: str, notebook: Path, declared: Mapping[str, Any],
                       overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters papermill injects into a chapter: its profile file's, then the -p overrides it declares."""
    f = profile_file(root, profile, notebook)
    params = read_parameter_file(f) if f else {}
    unknown = set(params) - set(declared)
    if unknown:
        raise ValueError(f"{f} sets {sorted(unknown)}, which {notebook.name} does not declare")
    params.update({k: v for k, v in overrides.items() if k in declared})
    return params


# ----------------------------------------------------------------------------- folding papermill's injected cell

def literal(value: Any) -> str:
    """A Python literal for a parameter value, strings in double quotes (the parameters cells' style)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    raise ValueError(f"cannot write parameter value {value!r} ({type(value).__name__}) as a Python literal")


def _replace_values(source: str, values: Mapping[str, Any]) -> str:
    """``source`` with the right-hand side of each ``name = ...`` in ``values`` replaced (comments kept)."""
    lines = source.split("\n")
    edits = []
    for node in ast.parse(source).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in values):
            v = node.value
            edits.append((v.lineno - 1, v.col_offset, v.end_lineno - 1, v.end_col_offset,
                          literal(values[node.targets[0].id])))
    for l0, c0, l1, c1, text in sorted(edits, reverse=True):   # ast offsets are in UTF-8 bytes
        head = lines[l0].encode()[:c0].decode()
        tail = lines[l1].encode()[c1:].decode()
        lines[l0:l1 + 1] = [head + text + tail]
    return "\n".join(lines)


def fold_parameters(nb) -> dict[str, Any] | None:
    """Fold papermill's ``injected-parameters`` cell into the ``parameters`` cell and drop it (in place).

    The parameters cell then holds the values the notebook ran with, so that a reader who edits it in
    Jupyter or Colab changes what runs. Returns the injected values that differed from the cell's (None: the
    notebook had no injected cell). The widgets' saved state is dropped too: the published page shows each
    explorer's static figure and should load nothing from a CDN."""
    nb.metadata.pop("widgets", None)
    injected = [i for i, c in enumerate(nb.cells) if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    if not injected:
        return None
    values: dict[str, Any] = {}
    for i in injected:
        values.update(assignments(nb.cells[i].source))
    cell = nb.cells[parameters_cell(nb)]
    current = assignments(cell.source)
    changed = {k: v for k, v in values.items() if k not in current or current[k] != v}
    source = _replace_values(cell.source, {k: v for k, v in changed.items() if k in current})
    extra = [f"{k} = {literal(v)}  # injected by papermill" for k, v in changed.items() if k not in current]
    cell.source = "\n".join([source.rstrip("\n"), *extra]) if extra else source
    nb.cells = [c for i, c in enumerate(nb.cells) if i not in injected]
    return changed


def fold_file(path: str | Path) -> dict[str, Any] | None:
    """:func:`fold_parameters` on a notebook file, rewritten in place when it had an injected cell."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    changed = fold_parameters(nb)
    if changed is not None:
        nbformat.write(nb, path)
    return changed


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
        pm.execute_notebook(str(source), str(output), parameters=dict(parameters), kernel_name=KERNEL,
                            cwd=str(source.parent), progress_bar=False, log_output=False)
    except PapermillExecutionError as e:
        first = (e.source or "").strip().splitlines()[0][:60] if (e.source or "").strip() else ""
        evalue = (e.evalue or "").strip().splitlines()[0] if (e.evalue or "").strip() else ""
        raise ChapterFailed(f"chapter {chapter} ({source.name}) failed in cell [{e.exec_count}] \"{first}\": "
                            f"{e.ename}: {evalue} (executed notebook: {output})") from None
    except Exception as e:  # noqa: BLE001 - a dead kernel, a missing kernel, an unreadable notebook
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ChapterFailed(f"chapter {chapter} ({source.name}) could not be executed: "
                            f"{type(e).__name__}: {msg}") from None
    return time.perf_counter() - t0


def _check_overrides(overrides: Mapping[str, Any], declared: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise ValueError when a -p name is a parameter of none of the chapters run, or its value cannot take the
    type of that parameter's default (checked before anything is synced or executed)."""
    unused = [k for k in overrides if not any(k in d for d in declared.values())]
    if unused:
        known = sorted({k for d in declared.values() for k in d})
        raise ValueError(f"-p {', '.join(unused)}: not a parameter of chapter(s) {', '.join(declared)}; "
                         f"known: {known}")
    for d in declared.values():           # a value of the wrong type: refused before anything runs
        for k, v in overrides.items():
            if k in d:
                typed_value(k, v, d[k])


def _run_one(root: Path, ch: str, nb: Path, params: Mapping[str, Any], output_dir: Path | None,
             log: Callable) -> ChapterRun:
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
            log(f"sdr book: note: {nb.name}'s parameters cell now holds {sorted(changed)} of this run "
                f"(sdr book --sync {ch} restores its source's)", flush=True)
    log(f"sdr book: chapter {ch} done in {secs:.0f} s -> {out}", flush=True)
    return ChapterRun(ch, nb, out, dict(params), secs)


def run(profile: str = DEFAULT_PROFILE, wanted: Sequence[str] | None = None,
        overrides: Mapping[str, Any] | None = None, output_dir: str | Path | None = None, build: bool = True,
        root: str | Path | None = None, log: Callable = print) -> list[ChapterRun]:
    """Execute the chosen chapters with a profile's parameter files (+ overrides), then build the HTML.

    In place by default: the notebooks are first synced from their sources, each chapter is executed into
    _build/papermill/, its injected parameters are folded into its parameters cell, and it is moved over
    book/NN_*.ipynb only when it succeeded. With ``output_dir``, the book's notebooks are executed as they are
    (exactly ``papermill NB OUT -f book/profiles/<profile>/NN_*.yaml``) and left untouched.
    """
    root = find_root(root)
    todo = select(chapters(root), wanted)
    scripts = {s.name[:2]: s for s in sources(root)}
    declared = {ch: source_parameters(scripts[ch]) if ch in scripts else declared_parameters(nb)
                for ch, nb in todo.items()}
    overrides = dict(overrides or {})
    _check_overrides(overrides, declared)
    params = {ch: chapter_parameters(root, profile, nb, declared[ch], overrides) for ch, nb in todo.items()}
    synced = [ch for ch in todo if ch in scripts]
    if synced and not output_dir:
        sync(synced, root, log=log)
    runs = []
    for ch, nb in todo.items():
        if profile != DEFAULT_PROFILE and profile_file(root, profile, nb) is None:
            log(f"sdr book: note: no {PROFILES_DIR / profile / (nb.stem + '.yaml')}; chapter {ch} runs with "
                "its notebook's defaults (plus -p)", flush=True)
        log(f"sdr book: chapter {ch} ({nb.name}), profile {profile}: executing ...", flush=True)
        runs.append(_run_one(root, ch, nb, params[ch], Path(output_dir) if output_dir else None, log))
    if build:
        if output_dir:
            log("sdr book: --output-dir given: the book's own notebooks are unchanged; building the HTML from them")
        secs = build_html(root, log=log)
        log(f"sdr book: HTML built in {secs:.0f} s -> {root / '_build' / 'html' / 'index.html'}", flush=True)
    return runs


# ----------------------------------------------------------------------------- the HTML build

def jupyter_book_executable() -> str:
    """The jupyter-book command next to this Python (the venv's bin), else the one on PATH."""
    here = Path(sys.executable).parent / "jupyter-book"
    if here.is_file():
        return str(here)
    found = shutil.which("jupyter-book")
    if found is None:
        raise FileNotFoundError("jupyter-book is not installed (pip install -r requirements.txt)")
    return found


def _integrity_ok(data: bytes, integrity: str) -> bool:
    """Whether ``data`` matches an npm ``sha512-<base64>`` integrity string."""
    algo, _, digest = integrity.partition("-")
    return base64.b64encode(hashlib.new(algo, data).digest()).decode() == digest


def _kept(member: str) -> str | None:
    """The path under mathjax/ of a file of the npm tarball that the book ships (None: not shipped)."""
    if member == "package/LICENSE":
        return "LICENSE"
    rel = member.removeprefix("package/es5/")
    if rel != member and any(rel == k or (k.endswith("/") and rel.startswith(k)) for k in MATHJAX_KEEP):
        return rel
    return None


def vendor_mathjax(root: Path, log: Callable = print) -> Path:
    """MathJax (npm ``mathjax@MATHJAX_VERSION``, integrity-checked) under .vendor/static/mathjax; fetched once.

    _config.yml copies .vendor/static into the build's _static and points mathjax_path at it, so the
    published pages render formulas without a network."""
    static = root / VENDOR_STATIC
    dest, stamp = static / "mathjax", root / VENDOR_STATIC.parent / "mathjax.version"
    if stamp.is_file() and stamp.read_text().strip() == MATHJAX_INTEGRITY and (dest / "tex-chtml.js").is_file():
        return dest
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
    url = f"{registry}/mathjax/-/mathjax-{MATHJAX_VERSION}.tgz"
    log(f"sdr book: fetching MathJax {MATHJAX_VERSION} from {url} (once; kept in {VENDOR_STATIC.parent}/)",
        flush=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
    except OSError as e:
        raise BuildFailed(f"could not fetch MathJax from {url} ({e}); the book ships it so that formulas "
                          "render offline: connect once, or set NPM_CONFIG_REGISTRY to a reachable npm registry")
    if not _integrity_ok(data, MATHJAX_INTEGRITY):
        raise BuildFailed(f"{url} does not match the pinned integrity {MATHJAX_INTEGRITY[:20]}...")
    tmp = Path(tempfile.mkdtemp(prefix="mathjax-", dir=static.parent if static.parent.exists() else None))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            rel = _kept(m.name) if m.isfile() else None
            if rel:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(tar.extractfile(m).read())
    static.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    stamp.write_text(MATHJAX_INTEGRITY + "\n")
    return dest


def build_html(root: Path, log: Callable = print) -> float:
    """MathJax in place, then ``jupyter-book build ROOT -W -n --keep-going``; seconds taken.

    Raises BuildFailed on a non-zero exit."""
    t0 = time.perf_counter()
    vendor_mathjax(root, log=log)
    write_verdicts(root)
    proc = subprocess.run([jupyter_book_executable(), "build", str(root), *BUILD_ARGS], cwd=root, check=False)
    if proc.returncode != 0:
        raise BuildFailed(f"jupyter-book build {' '.join(BUILD_ARGS)} failed with exit status {proc.returncode} "
                          "(its warnings are printed above)")
    return time.perf_counter() - t0


def write_verdicts(root: Path) -> Path:
    """``book/verdicts.md`` for the references of the cpu profile (checkpoints/references.yaml)."""
    from . import checkpoints, verdicts
    return verdicts.write_page(root, checkpoints.reference_names(DEFAULT_PROFILE))


# ----------------------------------------------------------------------------- notebook sources (jupytext)

def repository_url(root: Path) -> str:
    """``repository.url`` of the book's _config.yml (the one place the repository address is written)."""
    import yaml
    cfg = yaml.safe_load((root / "_config.yml").read_text())
    url = (cfg.get("repository") or {}).get("url")
    if not url:
        raise ValueError(f"{root / '_config.yml'} sets no repository.url")
    return url


INSTALL_CELL = '''\
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
              " run `make setup` and pick its .venv kernel (or pip install -e)")'''


def install_cell(root: Path) -> str:
    """The first cell of every chapter: installs sdrlib and the data in Colab, from _config.yml's repository."""
    url = repository_url(root)
    name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    debs = textwrap.fill(", ".join(f'"{d}"' for d in DATA_DEBS), width=78, initial_indent="    DEBS = [",
                         subsequent_indent=" " * 12, break_long_words=False,
                         break_on_hyphens=False) + "]"
    return INSTALL_CELL.format(url=url, name=name, debs=debs)


def sources(root: Path) -> dict[Path, Path]:
    """Each chapter script book/src/NN_*.py and the notebook it is paired with."""
    return {s: root / "book" / (s.stem + ".ipynb") for s in sorted((root / "book" / "src").glob("[0-9][0-9]_*.py"))}


def with_install_cell(text: str, cell: str) -> str:
    """A chapter script whose first cell (tagged remove-cell) is replaced by ``cell``."""
    lines = text.split("\n")
    starts = [i for i, ln in enumerate(lines) if ln.startswith("# %%")]
    if not starts or "remove-cell" not in lines[starts[0]]:
        raise ValueError("a chapter script must start with its install cell (# %% tags=[\"remove-cell\"])")
    end = starts[1] if len(starts) > 1 else len(lines)
    return "\n".join(lines[:starts[0] + 1] + cell.split("\n") + [""] + lines[end:])


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
    return [(c.cell_type, c.source, tuple(c.get("metadata", {}).get("tags", []))) for c in nb.cells
            if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
