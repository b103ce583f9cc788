"""``load(name, split)``: a registered data set built once, checked against the contract, and cached under
``$SDR_CACHE`` (default ``~/.cache/sdrlib``) with a key that holds the arguments and the source files found, so
that installing a missing source rebuilds it."""

from __future__ import annotations

import hashlib
import inspect

import torch

from ..utils import atomic_write, cache_dir
from . import registry
from .common import SPLITS, VALIDATION, stratified_split
from .imageset import ImageSet, check_contract
from .store import U8Images, memory_budget

CACHE_VERSION = 3  # bump when a builder changes, to invalidate caches


def load(
    name: str,
    split: str = "train",
    size: int | None = None,
    seed: int = 0,
    cache: bool = True,
    in_memory: bool | None = None,
    val: float = 0.0,
    **kwargs,
) -> ImageSet:
    """Load data set ``name`` (one of :func:`registry.names`, which ``sdr data`` lists, or ``folder:PATH``) as an
    ImageSet.

    ``in_memory``: None keeps a set in memory when its float32 images fit ``store.memory_budget()`` (2 GiB, or
    ``$SDR_DATA_BUDGET_GB``) and memory-maps a larger one from a uint8 store in the cache; True or False forces
    either (False only for the readers that can store: :func:`registry.large_sets`).

    ``val`` > 0 carves a validation split out of the training side, never trained on, for the choices of recipes
    and settings: "train" is then what is left of it and "val" the rest (a builder that takes ``val`` carves it
    itself, e.g. textures as a band of each photograph; any other set keeps ``val`` of each class's training images,
    drawn with ``seed``). "test" is the same whatever ``val`` is.
    """
    if split not in (*SPLITS, VALIDATION):
        raise ValueError(f"split must be one of {(*SPLITS, VALIDATION)}, got {split!r}")
    if size is not None and (not isinstance(size, int) or size < 8):
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    if not 0 <= val < 1 or (split == VALIDATION and not val):
        raise ValueError(f"val must be in [0, 1), and > 0 for the {VALIDATION!r} split; got {val!r} ({split!r})")
    reg, kwargs = registry.resolve(name, kwargs)
    if val and split != "test":
        if "val" in inspect.signature(reg.builder).parameters:
            kwargs["val"] = val
        else:  # carved here: val of each class's training images, drawn with the data seed
            full = load(name, "train", size, seed, cache, in_memory, **kwargs)
            rows = stratified_split(full.labels, val, seed)["test" if split == VALIDATION else "train"]
            ds = full.take(rows)
            ds.meta.update(split=split, val=f"{val:g} of each class's training images")
            return ds
    if reg.large:
        mode = in_memory if in_memory is not None else f"budget {memory_budget()}"
    elif in_memory is False:
        raise ValueError(f"{name!r} is always built in memory; in_memory=False is for {registry.large_sets()}")
    else:
        mode = None
    stamp = registry.source_stamp(name, **kwargs)
    key = repr((name, split, size, seed, sorted(kwargs.items()), CACHE_VERSION, stamp, mode))
    key = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = cache_dir() / f"{name.replace('/', '_').replace(':', '_')[:60]}-{split}-{key}.pt"
    if cache and path.is_file():
        ds = _from_record(torch.load(path, weights_only=True))
        if ds is not None:
            return ds
    extra = {"in_memory": in_memory, "store": path.with_suffix(".u8.npy")} if reg.large else {}
    ds = reg.builder(split=split, size=size, seed=seed, **kwargs, **extra)
    ds.meta["split"] = split
    check_contract(ds)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda p: torch.save(_to_record(ds), p))
    return ds


def _to_record(ds: ImageSet) -> dict:
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


def _from_record(d: dict) -> ImageSet | None:
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
        dict(zip(d.get("meta_keys", []), d.get("meta_vals", []))),
        d.get("groups"),
        list(d.get("group_names", [])),
        dict(zip(d.get("extra_keys", []), d.get("extra_vals", []))),
    )
