"""The data-set registry (sdrlib.data.registry) and what adding a data set takes. A new set is at most three edits,
and these tests fail when one is missed:

1. its module in ``sdrlib/data/`` with a builder decorated by ``@register(name, description, how_to_get=...,
   debian=...)`` (found without being listed anywhere: every module of the package is imported);
2. a row for it in ``book/data_sources.md``;
3. when its sources come from Debian, those packages in ``sdrlib/data/debian-packages.txt``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from sdrlib import data
from sdrlib.data import registry

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sdrlib" / "data"
SOURCES_PAGE = ROOT / "book" / "data_sources.md"
REGISTERED = sorted(data.registrations())


def _builders(path: Path) -> list[tuple[str, bool]]:
    """(function name, decorated with @register) of every function in a module that looks like a data-set builder:
    it returns an ImageSet and takes ``split``, ``size`` and ``seed`` first."""
    out = []
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.FunctionDef) or node.returns is None:
            continue
        args = [a.arg for a in node.args.args[:3]]
        if ast.unparse(node.returns).strip("'\"") == "ImageSet" and args == ["split", "size", "seed"]:
            registered = any(
                isinstance(d, ast.Call) and getattr(d.func, "id", getattr(d.func, "attr", None)) == "register"
                for d in node.decorator_list
            )
            out.append((node.name, registered))
    return out


def test_every_builder_in_the_package_is_registered() -> None:
    builders = {f"{p.stem}.{name}": ok for p in sorted(PACKAGE.glob("*.py")) for name, ok in _builders(p)}
    assert builders, "no builder found: the rule that finds them is out of date"
    assert [k for k, ok in builders.items() if not ok] == [], "builders without @register(...)"
    registered = {
        f"{r.builder.__module__.rsplit('.', 1)[-1]}.{r.builder.__name__}" for r in data.registrations().values()
    }
    assert set(builders) == registered


@pytest.mark.parametrize("name", REGISTERED)
def test_every_set_says_what_it_is_and_how_to_get_it(name: str) -> None:
    reg = data.registrations()[name]
    assert reg.description.strip(), "one line for `sdr data`"
    assert "\n" not in reg.description, "one line for `sdr data`"
    assert reg.how_to_get.strip(), "how_to_get: one sentence saying how to get its sources"
    assert data.how_to_get(name) == reg.how_to_get
    for package in reg.debian:
        assert package in reg.how_to_get, f"its how_to_get text should name the Debian package {package}"


@pytest.mark.parametrize("name", REGISTERED)
def test_every_set_has_a_row_in_data_sources(name: str) -> None:
    """book/data_sources.md has a table row whose first cell is the set's name (``folder:PATH`` for folder)."""
    shown = "folder:PATH" if name == "folder" else name
    rows = re.findall(r"^\| `([^`]+)` \|", SOURCES_PAGE.read_text(), re.MULTILINE)
    assert shown in rows, f"add a row for `{shown}` to book/data_sources.md"


@pytest.mark.parametrize("name", REGISTERED)
def test_every_debian_package_of_a_set_is_in_the_one_list(name: str) -> None:
    missing = [p for p in data.registrations()[name].debian if p not in data.DEBIAN_PACKAGES]
    assert not missing, f"add {missing} to sdrlib/data/debian-packages.txt"


def test_every_listed_debian_package_serves_a_set() -> None:
    used = {p for r in data.registrations().values() for p in r.debian}
    assert set(data.DEBIAN_PACKAGES) == used


def test_names_are_alphabetical_and_descriptions_come_from_the_registrations() -> None:
    names = data.names()
    assert list(names) == sorted(names)
    assert names == {k: r.description for k, r in data.registrations().items()}


def test_unknown_names_list_the_registered_ones() -> None:
    with pytest.raises(ValueError, match="expected one of .*'ovals'.* or 'folder:PATH'"):
        data.load("no-such-set")
    with pytest.raises(ValueError, match=r"in_memory=False is for \['celeba', 'cifar10', 'folder'"):
        data.load("ovals", n_per_class=1, in_memory=False, cache=False)
    assert data.how_to_get("folder:/some/where") == data.registrations()["folder"].how_to_get


def test_a_name_registered_twice_by_two_builders_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_SETS", dict(registry._SETS))

    def ovals(split: str, size: int | None, seed: int) -> data.ImageSet:  # another builder, same name
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="'ovals' is registered twice"):
        data.register("ovals", "again", how_to_get="-")(ovals)
    data.register("ovals", "reloaded", how_to_get="-")(registry._SETS["ovals"].builder)  # a reload is fine


def test_the_load_docstring_lists_no_set_by_hand() -> None:
    """The sets are listed by names() and large_sets(), read from the registrations: the docstring names none."""
    doc = data.load.__doc__ or ""
    assert not [n for n in REGISTERED if f" {n}," in doc or f" {n})" in doc]
