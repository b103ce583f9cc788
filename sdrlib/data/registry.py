"""The registry of data sets: each family module registers its builders with :func:`register` (name, one-line
description, how to get its sources, the Debian packages that hold them), and every module of this package is
imported the first time the registry is asked (:func:`names`, :func:`resolve`...), so a new module is found
without being listed anywhere. Everything said about the sets (``sdr data``, ``how_to_get``, the error for an
unknown name) is read from the registrations."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .imageset import ImageSet

Builder = Callable[..., "ImageSet"]


@dataclass(frozen=True)
class Registration:
    """One data set: its ``builder(split=, size=, seed=, **kwargs)``; ``description``, one line for ``sdr data``;
    ``how_to_get``, one sentence saying how to get its sources on this machine; ``debian``, the Debian packages that
    hold them (each must be listed in ``debian-packages.txt``); ``stamp(**kwargs)``, which of its source files are
    present (cheap, part of the cache key); ``large``, whether the builder takes ``in_memory`` and ``store`` and
    may return a uint8 store."""

    name: str
    builder: Builder
    description: str
    how_to_get: str
    debian: tuple[str, ...] = ()
    stamp: Callable[..., str] | None = None
    large: bool = False


_SETS: dict[str, Registration] = {}


def register(
    name: str,
    description: str,
    how_to_get: str,
    debian: tuple[str, ...] = (),
    stamp: Callable[..., str] | None = None,
    large: bool = False,
) -> Callable[[Builder], Builder]:
    """Decorator: register a data-set builder under ``name`` (see :class:`Registration` for the arguments)."""

    def deco(fn: Builder) -> Builder:
        old = _SETS.get(name)
        if old is not None and (old.builder.__module__, old.builder.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(
                f"data set {name!r} is registered twice: by {old.builder.__module__}.{old.builder.__qualname__} "
                f"and by {fn.__module__}.{fn.__qualname__}"
            )
        _SETS[name] = Registration(name, fn, description, how_to_get, tuple(debian), stamp, large)
        return fn

    return deco


@functools.cache
def _discover() -> None:
    """Import every module of this package once, so that each family module registers its builders."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"{__package__}.{module.name}")


def registrations() -> dict[str, Registration]:
    """Every registered data set, by name, in alphabetical order."""
    _discover()
    return {k: _SETS[k] for k in sorted(_SETS)}


def names() -> dict[str, str]:
    """All registered data sets with a one-line description (``folder:PATH`` is also accepted)."""
    return {k: r.description for k, r in registrations().items()}


def large_sets() -> list[str]:
    """The data sets whose builders can stream into a uint8 store (``load(..., in_memory=False)``)."""
    return [k for k, r in registrations().items() if r.large]


def resolve(name: str, kwargs: dict) -> tuple[Registration, dict]:
    """(registration, builder kwargs) of a data-set name; ``folder:PATH`` becomes folder with path=PATH."""
    if not isinstance(name, str):
        raise TypeError(f"data-set name must be a string, got {type(name).__name__}")
    sets = registrations()
    if name.startswith("folder:"):
        return sets["folder"], {**kwargs, "path": name[len("folder:") :]}
    if name in sets and name != "folder":
        return sets[name], dict(kwargs)
    raise ValueError(
        f"unknown data set {name!r}; expected one of {sorted(n for n in sets if n != 'folder')} or 'folder:PATH'"
    )


def how_to_get(name: str) -> str:
    """One sentence saying how to get the sources of data set ``name`` (or ``folder:PATH``) on this machine."""
    found = registrations().get(name.split(":", 1)[0])
    return found.how_to_get if found else "see book/data_sources.md for where its files come from"


def source_stamp(name: str, **kwargs) -> str:
    """Which source files of data set ``name`` are on this machine (paths and sizes), without building it;
    part of the cache key, so that installing a missing source rebuilds the set."""
    reg, kwargs = resolve(name, kwargs)
    return reg.stamp(**kwargs) if reg.stamp else "generated"
