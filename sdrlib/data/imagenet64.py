"""Downsampled ImageNet (64x64, also the 32x32 and 16x16 variants) from its official ``.npz`` batches on disk.

Layout: ``train_data_batch_1.npz`` .. ``train_data_batch_10.npz`` and ``val_data.npz`` in one folder (``root=`` or
``$SDR_DATA_IMAGENET64``); each holds ``data``, uint8 (N, 3*S*S) in C,H,W-flattened order, and ``labels`` 1..1000.
The train split is 1.28 M images (15 GB of uint8 at 64x64): it is streamed batch by batch into a uint8 store.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .common import data_root, dir_stamp, n_classes, require_files, source_counts, u8_resize
from .imageset import ImageSet
from .registry import register
from .store import from_chunks

IMAGENET64_ENV = "SDR_DATA_IMAGENET64"
IMAGENET64_TRAIN = tuple(f"train_data_batch_{i}.npz" for i in range(1, 11))
IMAGENET64_TEST = ("val_data.npz",)
IMAGENET64_CLASSES = 1000
ROWS = 512  # rows streamed per chunk (6 MB at 64x64)


def _batch_files(split: str, batches: tuple[int, ...] | None) -> list[str]:
    """The .npz files of a split; ``batches`` picks train batches (1..10)."""
    if split == "test":
        return list(IMAGENET64_TEST)
    chosen = tuple(batches) if batches else tuple(range(1, 11))
    bad = [b for b in chosen if b not in range(1, 11)]
    if bad:
        raise ValueError(f"imagenet64 batches must be in 1..10, got {bad}")
    return [IMAGENET64_TRAIN[b - 1] for b in chosen]


def _open_member(z: zipfile.ZipFile, key: str, path: Path) -> tuple[object, tuple[int, ...], np.dtype]:
    """An array of an .npz opened as a stream, positioned at its data, with its shape and dtype."""
    if f"{key}.npy" not in z.namelist():
        raise ValueError(
            f"{path}: no array {key!r}; expected keys 'data' and 'labels', found {sorted(n[:-4] for n in z.namelist())}"
        )
    f = z.open(f"{key}.npy")
    version = np.lib.format.read_magic(f)
    read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read is None:
        raise ValueError(f"{path}: unsupported .npy version {version} for {key!r}")
    shape, fortran, dtype = read(f)
    if fortran:
        raise ValueError(f"{path}: {key!r} is stored in Fortran order; expected C order")
    return f, shape, dtype


def _header(path: Path) -> tuple[int, int]:
    """(rows, width) of a batch's ``data``, read from its header only."""
    with zipfile.ZipFile(path) as z:
        f, shape, dtype = _open_member(z, "data", path)
        f.close()
    if dtype != np.uint8 or len(shape) != 2:
        raise ValueError(f"{path}: 'data' must be uint8 (N, 3*S*S), found {dtype} {shape}")
    return int(shape[0]), int(shape[1])


def _side(width: int, path: Path) -> int:
    """The image side S of rows of width 3*S*S (64 for 12288, 32 for 3072)."""
    side = math.isqrt(width // 3)
    if 3 * side * side != width:
        raise ValueError(f"{path}: rows of {width} values are not 3xSxS images (12288 for 64x64, 3072 for 32x32)")
    return side


def _chunks(path: Path, side: int) -> Iterator[np.ndarray]:
    """The images of one batch as uint8 (k,3,S,S) chunks, streamed from the archive."""
    with zipfile.ZipFile(path) as z:
        f, shape, _ = _open_member(z, "data", path)
        with f:
            for i in range(0, shape[0], ROWS):
                out = np.empty((min(ROWS, shape[0] - i), 3, side, side), dtype=np.uint8)
                if f.readinto(memoryview(out).cast("B")) != out.size:
                    raise ValueError(f"{path}: 'data' is truncated at row {i}")
                yield out


def _labels(path: Path, n: int) -> np.ndarray:
    """A batch's labels 1..1000 as int64 0..999."""
    with np.load(path) as z:
        y = np.asarray(z["labels"]).astype(np.int64).reshape(-1)
    if len(y) != n:
        raise ValueError(f"{path}: {n} images but {len(y)} labels")
    if len(y) and (y.min() < 1 or y.max() > IMAGENET64_CLASSES):
        raise ValueError(f"{path}: labels must be 1..{IMAGENET64_CLASSES}, found {y.min()}..{y.max()}")
    return y - 1


def _class_names(d: Path) -> list[str]:
    """Class names: WordNet ids and names from ``map_clsloc.txt`` when it is in the folder, else "class 1".."""
    names = [f"class {i}" for i in range(1, IMAGENET64_CLASSES + 1)]
    f = d / "map_clsloc.txt"  # "n02119789 1 kit_fox" per line, as in the ILSVRC devkit
    if f.is_file():
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit() and 1 <= int(parts[1]) <= IMAGENET64_CLASSES:
                names[int(parts[1]) - 1] = f"{parts[0]} {parts[2]}"
    return names


def imagenet64_stamp(root: str | None = None, **_: object) -> str:
    """Which ImageNet64 batch files are present, with their sizes."""
    return dir_stamp(root, IMAGENET64_ENV, IMAGENET64_TRAIN + IMAGENET64_TEST)


@register(
    "imagenet64",
    "Downsampled ImageNet 64x64 (or 32x32) .npz batches from $SDR_DATA_IMAGENET64, 1000 classes",
    how_to_get=f"download the downsampled ImageNet .npz batches yourself (ImageNet terms of access) and point "
    f"{IMAGENET64_ENV} (or root=) at their folder; see book/data_sources.md",
    stamp=imagenet64_stamp,
    large=True,
)
def imagenet64(
    split: str,
    size: int | None,
    seed: int,
    root: str | None = None,
    batches: tuple[int, ...] | None = None,
    in_memory: bool | None = None,
    store: Path | None = None,
) -> ImageSet:
    """Downsampled ImageNet: train = ``train_data_batch_*.npz`` (``batches`` picks some of 1..10), test =
    ``val_data.npz``; labels 0..999 (the files' 1..1000 minus one); native size inferred from the rows
    (64 or 32), or resized to ``size``. Larger than the memory budget: a uint8 store (see ``store``)."""
    what = "ImageNet64 (downsampled ImageNet .npz batches)"
    d = data_root(root, IMAGENET64_ENV, what)
    paths = require_files(d, _batch_files(split, batches), IMAGENET64_ENV, what)
    headers = [_header(p) for p in paths]
    widths = sorted({w for _, w in headers})
    if len(widths) != 1:
        raise ValueError(f"{what} in {d}: batches of different image sizes (row widths {widths}); use one variant")
    side = _side(widths[0], paths[0])
    ys = [_labels(p, n) for p, (n, _) in zip(paths, headers)]
    out = size or side
    chunks = (u8_resize(c, size) for p in paths for c in _chunks(p, side))
    x = from_chunks(sum(n for n, _ in headers), (3, out, out), chunks, in_memory, store)
    meta = {
        "root": str(d),
        "native_size": str(side),
        "licence": "ImageNet terms of access (non-commercial research)",
        "source_counts": source_counts({p.name: (len(y), n_classes(y)) for p, y in zip(paths, ys)}),
    }
    return ImageSet("imagenet64", x, torch.from_numpy(np.concatenate(ys)), _class_names(d), meta)
