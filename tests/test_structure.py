"""The shape of the library (DESIGN "sdrlib"): a package's ``__init__`` only re-exports, its core lives in named
modules, and no module imports a name from the ``__init__`` of a package it belongs to (an upward arrow: the
package then imports its submodules and they import it back)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SDRLIB = Path(__file__).resolve().parent.parent / "sdrlib"

# Packages not yet refactored; empty this list as each one's core moves out of its __init__.
NOT_YET: list[str] = []


def _rel(path: Path) -> str:
    return path.relative_to(SDRLIB.parent).as_posix()


def _modules() -> list[Path]:
    """Every module of sdrlib, outside the packages of NOT_YET."""
    return [
        p
        for p in sorted(SDRLIB.rglob("*.py"))
        if not any(_rel(p) == f"{n}/__init__.py" or _rel(p).startswith(f"{n}/") for n in NOT_YET)
    ]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SDRLIB.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: Path) -> str:
    """The package a module belongs to (a package's __init__ belongs to the package itself)."""
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def _is_module(package: str, name: str) -> bool:
    """Whether ``package.name`` is a module or a package on disk."""
    base = SDRLIB.parent.joinpath(*package.split("."))
    return (base / f"{name}.py").is_file() or (base / name / "__init__.py").is_file()


def _upward_imports(path: Path, source: str | None = None) -> list[str]:
    """``from PKG import NAME`` statements of a module (its ``source``, read from ``path`` by default) where PKG is
    a package the module belongs to and NAME is not one of its modules (dunder metadata such as ``__version__``
    aside)."""
    own = _package_of(path)
    ancestors = {".".join(own.split(".")[:i]) for i in range(1, own.count(".") + 2)}
    bad = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = own.split(".")[: len(own.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if target not in ancestors or (path.name == "__init__.py" and target == own):
            continue
        for alias in node.names:
            if not (alias.name.startswith("__") or _is_module(target, alias.name)):
                bad.append(f"line {node.lineno}: from {'.' * node.level}{node.module or ''} import {alias.name}")
    return bad


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_no_module_imports_a_name_from_its_own_package(path: Path) -> None:
    assert not _upward_imports(path), f"{_rel(path)} imports from its package's __init__: {_upward_imports(path)}"


def _packages() -> list[Path]:
    return [p for p in _modules() if p.name == "__init__.py" and p.parent != SDRLIB]


@pytest.mark.parametrize("init", _packages(), ids=_rel)
def test_a_package_init_only_re_exports(init: Path) -> None:
    """Its docstring, imports, and ``__all__``: no function, class, constant or statement with an effect."""
    tree = ast.parse(init.read_text())
    body = tree.body[1:] if ast.get_docstring(tree) is not None else tree.body
    other = [
        f"line {n.lineno}: {type(n).__name__}"
        for n in body
        if not isinstance(n, (ast.Import, ast.ImportFrom))
        and not (isinstance(n, ast.Assign) and [getattr(t, "id", None) for t in n.targets] == ["__all__"])
    ]
    assert not other, f"{_rel(init)} holds more than re-exports: {other}"


def test_the_rule_sees_an_upward_import(tmp_path: Path) -> None:
    """The check itself: ``from . import register`` in a submodule of sdrlib.data is caught; ``from . import
    registry`` (a module) and ``from .registry import register`` are not."""
    source = "from . import register\nfrom . import registry\nfrom .registry import register as r\n"
    probe = SDRLIB / "data" / "probe.py"  # never written: only its place in the package matters
    assert _upward_imports(probe, source) == ["line 1: from . import register"]
    source = "from .. import __version__\nfrom .. import data\nfrom ..checkpoints import load\nfrom .. import load\n"
    found = _upward_imports(SDRLIB / "checkpoints" / "probe.py", source)
    assert found == ["line 3: from ..checkpoints import load", "line 4: from .. import load"]
