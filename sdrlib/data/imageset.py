"""The labelled image set every loader returns (:class:`ImageSet`), its contract check, and its fingerprint: what
a set is (sources, counts, a short hash) and the check that refuses a set built here from other sources than a
checkpoint was trained on (:func:`check_fingerprint`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import torch

from .store import U8Images, use_memory


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
        the same sources; folder paths are left out). A checkpoint records it; :func:`check_fingerprint`
        compares it."""
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


def check_contract(ds: ImageSet) -> None:
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
