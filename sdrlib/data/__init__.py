"""Data sets of the book: every loader is offline, deterministic for a seed, and returns
float images in [0, 1], NCHW, with integer labels (SPEC section 5, DESIGN "Offline data").

Use :func:`load` (``load("fashion-mnist", split="test")``) or :func:`names` to list them.
Built tensors are cached under ``$SDR_CACHE`` (default ``~/.cache/sdrlib``) after the first build.
One module per family registers its builders when this package is imported; this module holds the
ImageSet, the registry, the cache and the contract check.
Sources and licences of every set: ``book/data_sources.md``.
"""
from __future__ import annotations

import hashlib
import sys
import types
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..utils import atomic_write, cache_dir
from .common import SPLITS


@dataclass
class ImageSet:
    """A labelled image set: ``images`` float32 NCHW in [0,1]; ``labels`` int64 N.

    Optional: ``groups`` (int64 N) is a second, coarser or orthogonal label per image, named by
    ``group_names`` (texture material, shape colour, digit source); ``extras`` holds other per-image
    tensors (first dimension N), e.g. the texture crop boxes.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    meta: dict = field(default_factory=dict)
    groups: torch.Tensor | None = None
    group_names: list[str] = field(default_factory=list)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.images.shape[0]

    def counts(self) -> dict[str, int]:
        """Number of images per class name."""
        c = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return {k: int(v) for k, v in zip(self.classes, c)}

    def take(self, idx: torch.Tensor) -> "ImageSet":
        """The images at indices ``idx``, with their labels, groups and extras."""
        return ImageSet(self.name, self.images[idx], self.labels[idx], self.classes, dict(self.meta),
                        None if self.groups is None else self.groups[idx], list(self.group_names),
                        {k: v[idx] for k, v in self.extras.items()})

    def split_classes(self, every: int) -> tuple["ImageSet", "ImageSet"]:
        """(kept, held out): every ``every``-th class (label % every == every - 1) is held out."""
        if every < 2:
            raise ValueError(f"holdout_every must be >= 2, got {every}")
        out = self.labels % every == every - 1
        return self.take(torch.nonzero(~out).squeeze(1)), self.take(torch.nonzero(out).squeeze(1))

    def subset(self, n: int, seed: int = 0) -> "ImageSet":
        """A random subset of n images (all of them if n >= len), deterministic in seed."""
        if n >= len(self):
            return self
        g = torch.Generator().manual_seed(seed)
        return self.take(torch.randperm(len(self), generator=g)[:n].sort().values)


Builder = Callable[..., ImageSet]
_REGISTRY: dict[str, Builder] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register(name: str, description: str) -> Callable[[Builder], Builder]:
    """Register a data-set builder under ``name``."""

    def deco(fn: Builder) -> Builder:
        _REGISTRY[name] = fn
        _DESCRIPTIONS[name] = description
        return fn

    return deco


def names() -> dict[str, str]:
    """All registered data sets with a one-line description (``folder:PATH`` is also accepted)."""
    return dict(_DESCRIPTIONS)


def load(name: str, split: str = "train", size: int | None = None, seed: int = 0,
         cache: bool = True, **kwargs) -> ImageSet:
    """Load data set ``name`` (a registered name or ``folder:PATH``) as an ImageSet."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if size is not None and (not isinstance(size, int) or size < 8):
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    if name.startswith("folder:"):
        builder, kwargs = _REGISTRY["folder"], {**kwargs, "path": name[len("folder:"):]}
    elif name in _REGISTRY and name != "folder":
        builder = _REGISTRY[name]
    else:
        raise ValueError(f"unknown data set {name!r}; expected one of {sorted(n for n in _REGISTRY if n != 'folder')} "
                         "or 'folder:PATH'")
    stamp = (_folder_stamp(kwargs["path"]),) if name.startswith("folder:") else ()  # re-build when files change
    key = repr((name, split, size, seed, sorted(kwargs.items()), _VERSION, *stamp))
    key = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = cache_dir() / f"{name.replace('/', '_').replace(':', '_')[:60]}-{split}-{key}.pt"
    if cache and path.is_file():
        return _from_dict(torch.load(path, weights_only=True))
    ds = builder(split=split, size=size, seed=seed, **kwargs)
    _check(ds)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda p: torch.save(_to_dict(ds), p))
    return ds


_VERSION = 2  # bump when a builder changes, to invalidate caches


def _to_dict(ds: ImageSet) -> dict:
    """The cache record of an ImageSet (tensors, strings and lists only)."""
    return {"name": ds.name, "images": ds.images, "labels": ds.labels, "classes": list(ds.classes),
            "meta_keys": list(ds.meta), "meta_vals": [str(v) for v in ds.meta.values()],
            "groups": ds.groups, "group_names": list(ds.group_names),
            "extra_keys": list(ds.extras), "extra_vals": list(ds.extras.values())}


def _from_dict(d: dict) -> ImageSet:
    """Rebuild an ImageSet from its cache record."""
    return ImageSet(d["name"], d["images"], d["labels"], list(d["classes"]), _meta_from(d), d.get("groups"),
                    list(d.get("group_names", [])), dict(zip(d.get("extra_keys", []), d.get("extra_vals", []))))


def _meta_from(d: dict) -> dict:
    return dict(zip(d.get("meta_keys", []), d.get("meta_vals", [])))


def _check(ds: ImageSet) -> None:
    """Enforce the data-set contract: float32 NCHW in [0,1], finite, labelled."""
    x, y = ds.images, ds.labels
    assert x.dtype == torch.float32 and x.ndim == 4, (x.dtype, x.shape)
    assert y.dtype == torch.int64 and y.shape == (x.shape[0],), (y.dtype, y.shape)
    assert torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    assert len(ds.classes) > int(y.max()) if len(y) else True
    if ds.groups is not None:
        g = ds.groups
        assert g.dtype == torch.int64 and g.shape == y.shape, (g.dtype, g.shape)
        assert len(ds.group_names) > int(g.max()) if len(g) else True
    assert all(v.shape[0] == x.shape[0] for v in ds.extras.values()), {k: v.shape for k, v in ds.extras.items()}


class _Package(types.ModuleType):
    """This package's module type: setting an upper-case constant that a family module defines (``data.UFOAI_PK3 =
    ...``, as tests do with monkeypatch) sets it in that module too, so that its functions see the new value."""

    def __setattr__(self, name: str, value: object) -> None:
        if name.isupper():
            for key, mod in list(sys.modules.items()):
                if key.startswith(__name__ + ".") and name in vars(mod):
                    setattr(mod, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

# The family modules register their builders on import (order = order of names()); re-exported names below
# keep ``data.<name>`` working for callers and tests.
from . import fashion_mnist, textures, synthetic, digits, folder  # noqa: E402,F401
from .common import _open_rgb, _seed, _shrink, _to_float, _torch_rng, _wheel_dir  # noqa: E402,F401
from .common import pad_to, read_idx, resize, stratified_split  # noqa: E402,F401
from .digits import DIGIT_SOURCES, OPENCV_DIGITS  # noqa: E402,F401
from .fashion_mnist import FASHION_CLASSES, FASHION_DIRS, FASHION_FILES, FASHION_URL  # noqa: E402,F401
from .fashion_mnist import download_fashion_mnist  # noqa: E402,F401
from .folder import IMAGE_EXTS, _folder_stamp  # noqa: E402,F401
from .synthetic import OVAL_PROBE_RATIOS, OVAL_RATIOS, SHAPE_CLASSES, SHAPE_COLOURS  # noqa: E402,F401
from .synthetic import _shape_mask, ovals, shapes  # noqa: E402,F401
from .textures import PHOTO_SOURCES, TEXTURE_PACKAGES, TEXTURE_SOURCES, UFOAI_PK3  # noqa: E402,F401
