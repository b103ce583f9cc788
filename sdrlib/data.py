"""Data sets of the book: every loader is offline, deterministic for a seed, and returns
float images in [0, 1], NCHW, with integer labels (SPEC section 5, DESIGN "Offline data").

Use :func:`load` (``load("fashion-mnist", split="test")``) or :func:`names` to list them.
Built tensors are cached under ``$SDR_CACHE`` (default ``~/.cache/sdrlib``) after the first build.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

SPLITS = ("train", "test")


@dataclass
class ImageSet:
    """A labelled image set: ``images`` float32 NCHW in [0,1]; ``labels`` int64 N."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.images.shape[0]

    def counts(self) -> dict[str, int]:
        """Number of images per class name."""
        c = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return {k: int(v) for k, v in zip(self.classes, c)}

    def subset(self, n: int, seed: int = 0) -> "ImageSet":
        """A random subset of n images (all of them if n >= len), deterministic in seed."""
        if n >= len(self):
            return self
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=g)[:n].sort().values
        return ImageSet(self.name, self.images[idx], self.labels[idx], self.classes, dict(self.meta))


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


def cache_dir() -> Path:
    """Where built data sets are cached ($SDR_CACHE or ~/.cache/sdrlib)."""
    return Path(os.environ.get("SDR_CACHE", Path.home() / ".cache" / "sdrlib"))


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
    key = hashlib.sha256(repr((name, split, size, seed, sorted(kwargs.items()), _VERSION)).encode()).hexdigest()[:16]
    path = cache_dir() / f"{name.replace('/', '_').replace(':', '_')[:60]}-{split}-{key}.pt"
    if cache and path.is_file():
        d = torch.load(path, weights_only=True)
        return ImageSet(d["name"], d["images"], d["labels"], list(d["classes"]), _meta_from(d))
    ds = builder(split=split, size=size, seed=seed, **kwargs)
    _check(ds)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"name": ds.name, "images": ds.images, "labels": ds.labels, "classes": ds.classes,
                    "meta_keys": list(ds.meta), "meta_vals": [str(v) for v in ds.meta.values()]}, tmp)
        os.replace(tmp, path)
    return ds


_VERSION = 1  # bump when a builder changes, to invalidate caches


def _meta_from(d: dict) -> dict:
    return dict(zip(d.get("meta_keys", []), d.get("meta_vals", [])))


def _check(ds: ImageSet) -> None:
    """Enforce the data-set contract: float32 NCHW in [0,1], finite, labelled."""
    x, y = ds.images, ds.labels
    assert x.dtype == torch.float32 and x.ndim == 4, (x.dtype, x.shape)
    assert y.dtype == torch.int64 and y.shape == (x.shape[0],), (y.dtype, y.shape)
    assert torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    assert len(ds.classes) > int(y.max()) if len(y) else True


def resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize NCHW images to size x size (area for shrinking, bilinear for growing), clamped to [0,1]."""
    if size is None or x.shape[-1] == size and x.shape[-2] == size:
        return x
    mode = "area" if size < min(x.shape[-2:]) else "bilinear"
    kw = {} if mode == "area" else {"align_corners": False, "antialias": True}
    return F.interpolate(x, size=(size, size), mode=mode, **kw).clamp(0, 1)


def pad_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad NCHW images symmetrically to size x size (28 -> 32 for MNIST-like sets)."""
    h, w = x.shape[-2:]
    if h > size or w > size:
        raise ValueError(f"cannot pad {h}x{w} images to {size}x{size}")
    t, l = (size - h) // 2, (size - w) // 2
    return F.pad(x, (l, size - w - l, t, size - h - t))


# --------------------------------------------------------------------------- fashion-mnist

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_FILES = {  # standard IDX files and their MD5 as published by Zalando Research
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {arr.size}")
    return arr.reshape(shape)


def _fashion_dir(root: str | None, download: bool) -> Path:
    cands = [root] if root else [os.environ.get("SDR_FASHION_MNIST"), *FASHION_DIRS, str(cache_dir() / "fashion-mnist")]
    for c in cands:
        if c and all((Path(c) / f).is_file() or (Path(c) / f[:-3]).is_file() for f in FASHION_FILES):
            return Path(c)
    if download:
        return download_fashion_mnist(cache_dir() / "fashion-mnist")
    raise FileNotFoundError(
        "Fashion-MNIST not found (looked in " + ", ".join(str(c) for c in cands if c) + "). Get it with "
        "'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu), or point SDR_FASHION_MNIST (or root=) at a "
        "folder holding the four IDX files, or opt in to a download: sdr data fashion-mnist --download")


def download_fashion_mnist(dest: Path) -> Path:
    """Explicit opt-in: download the four IDX files and check their MD5 sums."""
    dest.mkdir(parents=True, exist_ok=True)
    for fname, md5 in FASHION_FILES.items():
        out = dest / fname
        if not out.is_file():
            tmp = out.with_suffix(".part")
            try:
                with urllib.request.urlopen(FASHION_URL + fname, timeout=30) as r, open(tmp, "wb") as f:
                    shutil.copyfileobj(r, f)
            except OSError as e:
                raise FileNotFoundError(f"could not download {FASHION_URL + fname} ({e}); are you offline? "
                                        "Install 'dataset-fashion-mnist' or set SDR_FASHION_MNIST instead") from e
            got = hashlib.md5(tmp.read_bytes()).hexdigest()
            if got != md5:
                tmp.unlink()
                raise ValueError(f"checksum mismatch for {fname}: expected md5 {md5}, got {got}")
            os.replace(tmp, out)
    return dest


@register("fashion-mnist", "Fashion-MNIST, 70k greyscale clothing images, 10 classes, zero-padded 28->32")
def fashion_mnist(split: str, size: int | None, seed: int, root: str | None = None,
                  download: bool = False) -> ImageSet:
    """The real Fashion-MNIST (60k train / 10k test), padded to 32x32 (or resized to ``size``)."""
    d = _fashion_dir(root, download)
    pre = "train" if split == "train" else "t10k"

    def find(stem: str) -> Path:
        p = d / f"{pre}-{stem}-ubyte.gz"
        return p if p.is_file() else d / f"{pre}-{stem}-ubyte"

    x = torch.from_numpy(read_idx(find("images-idx3")).copy()).float().div_(255).unsqueeze(1)
    y = torch.from_numpy(read_idx(find("labels-idx1")).astype(np.int64))
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"Fashion-MNIST in {d}: {x.shape[0]} images but {y.shape[0]} labels")
    x = pad_to(x, 32)
    x = resize(x, size)
    return ImageSet("fashion-mnist", x.contiguous(), y, list(FASHION_CLASSES),
                    {"source": str(d), "licence": "MIT (Zalando Research)"})
