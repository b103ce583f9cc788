"""Fashion-MNIST (Zalando Research): the four IDX files from Debian's dataset-fashion-mnist, a folder, or an
explicit opt-in download."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import torch

from ..utils import cache_dir
from .common import file_stamp, pad_to, read_idx, resize, source_counts
from .imageset import ImageSet
from .registry import register

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_FILES = {  # standard IDX files and their MD5 as published by Zalando Research
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


def _fashion_dir(root: str | None, download: bool) -> Path:
    """The folder holding the four IDX files: ``root``, $SDR_FASHION_MNIST, Debian's, the cache, or a download."""
    cands = [root] if root else [os.environ.get("SDR_FASHION_MNIST"), *FASHION_DIRS, str(cache_dir() / "fashion-mnist")]
    for c in cands:
        if c and all((Path(c) / f).is_file() or (Path(c) / f[:-3]).is_file() for f in FASHION_FILES):
            return Path(c)
    if download:
        return download_fashion_mnist(cache_dir() / "fashion-mnist")
    raise FileNotFoundError(
        "Fashion-MNIST not found (looked in " + ", ".join(str(c) for c in cands if c) + "). Get it with "
        "'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu), or point SDR_FASHION_MNIST (or root=) at a "
        "folder holding the four IDX files, or opt in to a download: sdr data fashion-mnist --download"
    )


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
                tmp.unlink(missing_ok=True)  # nothing half-downloaded is left behind
                raise FileNotFoundError(
                    f"could not download {FASHION_URL + fname} ({e}); are you offline? "
                    "Install 'dataset-fashion-mnist' or set SDR_FASHION_MNIST instead"
                ) from e
            got = hashlib.md5(tmp.read_bytes()).hexdigest()
            if got != md5:
                tmp.unlink()
                raise ValueError(f"checksum mismatch for {fname}: expected md5 {md5}, got {got}")
            os.replace(tmp, out)
    return dest


def _fashion_file(d: Path, split: str, stem: str) -> Path:
    """The IDX file of a split (gzipped or not) in folder ``d``."""
    p = d / f"{'train' if split == 'train' else 't10k'}-{stem}-ubyte.gz"
    return p if p.is_file() else p.with_suffix("")


def fashion_stamp(root: str | None = None, **_: object) -> str:
    """Which Fashion-MNIST folder would be read, and its files' sizes."""
    try:
        d = _fashion_dir(root, download=False)
    except FileNotFoundError:
        return "absent"
    return file_stamp(*(_fashion_file(d, s, k) for s in ("train", "test") for k in ("images-idx3", "labels-idx1")))


@register(
    "fashion-mnist",
    "Fashion-MNIST, 70k greyscale clothing images, 10 classes, zero-padded 28->32",
    how_to_get="install it with 'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu; in Colab the "
    "chapter's first cell does this) or 'sdr data fashion-mnist --download'",
    debian=("dataset-fashion-mnist",),
    stamp=fashion_stamp,
)
def fashion_mnist(split: str, size: int | None, seed: int, root: str | None = None, download: bool = False) -> ImageSet:
    """The real Fashion-MNIST (60k train / 10k test), padded to 32x32 (or resized to ``size``)."""
    d = _fashion_dir(root, download)
    x = torch.from_numpy(read_idx(_fashion_file(d, split, "images-idx3")).copy()).float().div_(255).unsqueeze(1)
    y = torch.from_numpy(read_idx(_fashion_file(d, split, "labels-idx1")).astype(np.int64))
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"Fashion-MNIST in {d}: {x.shape[0]} images but {y.shape[0]} labels")
    x = pad_to(x, 32)
    x = resize(x, size)
    meta = {
        "source": str(d),
        "licence": "MIT (Zalando Research)",
        "source_counts": source_counts({"fashion-mnist": (len(y), len(torch.unique(y)))}),
    }
    return ImageSet("fashion-mnist", x.contiguous(), y, list(FASHION_CLASSES), meta)
