"""Shared image I/O of the data sets: resizing, padding, decoding, seeds, splits and IDX files."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import math
import os
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SPLITS = ("train", "test")
VALIDATION = "val"  # the split carved out of the training side for choices (data.load's ``val``)


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
    t, left = (size - h) // 2, (size - w) // 2
    return F.pad(x, (left, size - w - left, t, size - h - t))


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
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
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


def source_counts(counts: dict[str, tuple[int, int]]) -> str:
    """``meta["source_counts"]``: JSON of {source: {"images": n, "classes": k}} for the sources a set was built from."""
    return json.dumps({k: {"images": int(n), "classes": int(c)} for k, (n, c) in counts.items()})


def n_classes(labels: torch.Tensor | np.ndarray) -> int:
    """How many distinct labels occur."""
    return len(np.unique(np.asarray(labels)))


def file_stamp(*paths: str | Path | None) -> str:
    """``path=size`` for each file that exists (``path=absent`` otherwise): a cheap picture of a source."""
    out = []
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        out.append(f"{p}={p.stat().st_size if p.is_file() else 'absent'}")
    return "; ".join(out)


def data_root(root: str | Path | None, env: str, what: str) -> Path:
    """A reader's folder: ``root`` if given, else ``$env``; FileNotFoundError naming both when neither is set/there."""
    where = root or os.environ.get(env)
    if not where:
        raise FileNotFoundError(f"{what}: no location given; pass root=FOLDER or set the environment variable {env}")
    path = Path(where).expanduser()
    if not path.is_dir():
        src = "root=" if root else f"${env}"
        raise FileNotFoundError(f"{what}: {path} (from {src}) is not a folder; point root= or {env} at the data")
    return path


def require_files(root: Path, files: list[str], env: str, what: str) -> list[Path]:
    """The paths of ``files`` under ``root``; FileNotFoundError listing every missing one and the variable to set."""
    missing = [f for f in files if not (root / f).exists()]
    if missing:
        raise FileNotFoundError(
            f"{what}: missing in {root}: {', '.join(missing)}; put the files there or point "
            f"root= or {env} at the folder that holds them (nothing is downloaded)"
        )
    return [root / f for f in files]


def u8_resize(x: np.ndarray, size: int | None) -> np.ndarray:
    """Resize uint8 NCHW images like :func:`resize` and round back to uint8 (identity when already that size)."""
    if size is None or x.shape[-2:] == (size, size):
        return x
    t = resize(torch.from_numpy(np.ascontiguousarray(x)).float().div_(255), size)
    return t.mul_(255).round_().to(torch.uint8).numpy()


def dir_stamp(root: str | Path | None, env: str, files: tuple[str, ...]) -> str:
    """A reader's source stamp: its folder and the size of each expected file there (or ``absent``)."""
    try:
        d = data_root(root, env, env)
    except FileNotFoundError:
        return "absent"
    sizes = [f"{f}={(d / f).stat().st_size if (d / f).is_file() else 'absent'}" for f in files]
    return f"{d}: " + "; ".join(sizes)
