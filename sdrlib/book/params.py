"""Chapter parameters: the ``parameters`` cell of a notebook or source, ``-p`` values, typed coercion of
papermill's text values (the cell each chapter runs after its parameters), and folding papermill's
``injected-parameters`` cell back into the ``parameters`` cell so that edits take effect."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from .chapters import profile_file

_PARAMS_MARK = re.compile(r"^# %%.*\btags=\[[^\]]*\"parameters\"")


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
    """The parameters papermill injects into a chapter: its profile file's, then the -p overrides it declares.

    A chapter with no file under the profile runs with its own defaults, except that a chapter declaring
    ``profile`` is told the profile's name (it picks the reference checkpoints by it)."""
    f = profile_file(root, profile, notebook)
    params = read_parameter_file(f) if f else {}
    unknown = set(params) - set(declared)
    if unknown:
        raise ValueError(f"{f} sets {sorted(unknown)}, which {notebook.name} does not declare")
    if f is None and "profile" in declared and declared["profile"] != profile:
        params["profile"] = profile
    params.update({k: v for k, v in overrides.items() if k in declared})
    return params


def chapter_defaults(chapter: str) -> dict[str, Any]:
    """The parameters cell of chapter ``chapter`` ("02"), read from its source book/src/02_*.py.

    Looked for under the working directory (a chapter runs in book/) and then next to this package."""
    key = chapter.split("_")[0].zfill(2)
    here = Path(__file__).resolve().parent.parent.parent / "book" / "src"
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
        raise ValueError(
            f"parameter {name!r}: got {value!r}, expected a value of type {want.__name__} like its "
            f"default {default!r}{hint}"
        )
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
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in values
        ):
            v = node.value
            edits.append(
                (v.lineno - 1, v.col_offset, v.end_lineno - 1, v.end_col_offset, literal(values[node.targets[0].id]))
            )
    for l0, c0, l1, c1, text in sorted(edits, reverse=True):  # ast offsets are in UTF-8 bytes
        head = lines[l0].encode()[:c0].decode()
        tail = lines[l1].encode()[c1:].decode()
        lines[l0 : l1 + 1] = [head + text + tail]
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
