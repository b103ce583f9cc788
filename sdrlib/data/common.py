"""Shared image I/O of the data sets: resizing, padding, decoding, seeds, splits and IDX files."""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import math
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SPLITS = ("train", "test")


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


def _seed(*parts) -> int:
    """A stable 63-bit seed derived from any printable parts (seed, split, class name...)."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:15], 16)


def _torch_rng(*parts) -> torch.Generator:
    """A torch generator seeded from ``_seed(*parts)``."""
    return torch.Generator().manual_seed(_seed(*parts))


def stratified_split(strata: torch.Tensor, test_fraction: float, seed: int) -> dict[str, torch.Tensor]:
    """Deterministic per-stratum train/test split: sorted indices for each of ``SPLITS``.

    Every stratum with n >= 2 items gives round(test_fraction * n) of them, clipped to [1, n-1], to test;
    a stratum of one item goes to train.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    train, test = [], []
    for s in torch.unique(strata).tolist():
        idx = torch.nonzero(strata == s).flatten()
        idx = idx[torch.randperm(len(idx), generator=_torch_rng(seed, "split", s))]
        k = min(max(round(test_fraction * len(idx)), 1), len(idx) - 1)
        test.append(idx[:k])
        train.append(idx[k:])
    return {"train": torch.cat(train).sort().values, "test": torch.cat(test).sort().values}


def _to_float(a: np.ndarray) -> torch.Tensor:
    """uint8 HxWxC (or HxW) array -> float32 CxHxW tensor in [0,1]."""
    t = torch.from_numpy(np.array(a, dtype=np.float32)).div_(255)
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def _open_rgb(src: str | Path | bytes, short_side: int | None = None) -> tuple[np.ndarray, float]:
    """Decode an image to RGB uint8 HxWx3 (palettes, grey and alpha flattened), shrunk so that its
    shorter side is at most ``short_side``; also returns the fraction of non-opaque pixels."""
    im = Image.open(io.BytesIO(src) if isinstance(src, bytes) else src)
    if short_side and im.format == "JPEG" and min(im.size) > short_side:
        s = short_side / min(im.size)
        im.draft("RGB", (math.ceil(im.size[0] * s), math.ceil(im.size[1] * s)))
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    transparent = 0.0
    if im.mode in ("RGBA", "LA", "PA"):
        transparent = float((np.asarray(im.getchannel("A")) < 250).mean())
    return _shrink(np.asarray(im.convert("RGB")), short_side), transparent


def _shrink(img: np.ndarray, short_side: int | None) -> np.ndarray:
    """Resize an RGB uint8 image (Lanczos) so that its shorter side is at most ``short_side``."""
    h, w = img.shape[:2]
    if not short_side or min(h, w) <= short_side:
        return img
    s = short_side / min(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0))


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


def _wheel_dir(package: str, *sub: str) -> str | None:
    """A data path inside an installed package (found without importing it), or None."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(spec.submodule_search_locations[0], *sub))
