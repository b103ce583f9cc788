"""Data larger than memory: a uint8 NCHW ``.npy`` store under the cache, read by index as float32 in [0,1].

The rule (``load(..., in_memory=None)``): a set whose float32 images fit in :func:`memory_budget` (2 GiB, or
``$SDR_DATA_BUDGET_GB``) is built as an in-memory tensor; a larger one is written once, chunk by chunk, to a uint8
store beside the cache record and returned as :class:`U8Images`. ``in_memory=True`` / ``False`` forces either.
Both give the same numbers: every large reader makes uint8 chunks, and both paths convert them as ``u8 / 255``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from ..utils import atomic_write

BUDGET_GB = 2.0  # default memory budget for the float32 images of one in-memory set
BUDGET_ENV = "SDR_DATA_BUDGET_GB"


def memory_budget() -> int:
    """Bytes of float32 images one set may hold in memory: ``$SDR_DATA_BUDGET_GB`` GiB (default 2)."""
    raw = os.environ.get(BUDGET_ENV) or str(BUDGET_GB)
    try:
        gb = float(raw)
    except ValueError:
        raise ValueError(f"{BUDGET_ENV} must be a number of GiB, got {raw!r}") from None
    if not gb > 0:
        raise ValueError(f"{BUDGET_ENV} must be positive, got {raw!r}")
    return int(gb * 2**30)


def use_memory(n: int, chw: tuple[int, ...], in_memory: bool | None) -> bool:
    """Whether n images of shape chw are held in memory: ``in_memory`` if given, else the budget rule."""
    if in_memory is not None:
        return bool(in_memory)
    return n * math.prod(chw) * 4 <= memory_budget()


def write_store(path: Path, n: int, chw: tuple[int, int, int], chunks: Iterable[np.ndarray]) -> Path:
    """Write a uint8 (n, C, H, W) ``.npy`` at ``path`` from NCHW chunks, all-or-nothing (temp name, then rename)."""

    def fill(tmp: Path) -> None:
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, *chw))  # header + sparse body
        offset, row = mm.offset, math.prod(chw)
        del mm
        done = 0
        with open(tmp, "r+b") as f:  # positioned writes: no mapping, so memory stays at one chunk
            for c in chunks:
                if c.dtype != np.uint8 or c.shape[1:] != tuple(chw) or done + len(c) > n:
                    raise ValueError(
                        f"store {path.name}: chunk of {c.dtype} {c.shape} does not fit "
                        f"uint8 (N, {', '.join(map(str, chw))}) at row {done} of {n}"
                    )
                f.seek(offset + done * row)
                f.write(np.ascontiguousarray(c).data)
                done += len(c)
        if done != n:
            raise ValueError(f"store {path.name}: expected {n} images, the source gave {done}")

    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, fill)


def from_chunks(
    n: int, chw: tuple[int, int, int], chunks: Iterable[np.ndarray], in_memory: bool | None, store: Path | None
) -> "torch.Tensor | U8Images":
    """Images from uint8 NCHW chunks: a float32 tensor when they fit (see module rule), else a store at ``store``."""
    if n == 0 or use_memory(n, chw, in_memory) or store is None:
        if in_memory is False and n:
            raise ValueError("in_memory=False needs a store path: load the set through sdrlib.data.load")
        x, done = torch.empty((n, *chw), dtype=torch.float32), 0
        for c in chunks:
            x[done : done + len(c)] = torch.from_numpy(np.ascontiguousarray(c)).float().div_(255)
            done += len(c)
        if done != n:
            raise ValueError(f"expected {n} images, the source gave {done}")
        return x
    return U8Images(write_store(store, n, chw, chunks))


def _rows(index: object, n: int) -> np.ndarray:
    """Row numbers (int64, 1-D) selected by an int, slice, bool mask or integer array/tensor/list."""
    if isinstance(index, slice):
        return np.arange(n, dtype=np.int64)[index]
    a = index.cpu().numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
    if a.dtype == np.bool_:
        if a.shape != (n,):
            raise ValueError(f"boolean index of shape {a.shape} does not match {n} images")
        return np.flatnonzero(a)
    if a.ndim > 1 or not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"index images with an int, a slice, a bool mask or 1-D integers, got {a.dtype} {a.shape}")
    a = a.astype(np.int64).reshape(-1)
    if a.size and (a.min() < -n or a.max() >= n):
        raise IndexError(f"image index out of range for {n} images: {int(a.min())}..{int(a.max())}")
    return np.where(a < 0, a + n, a)


class U8Images:
    """uint8 NCHW images in a ``.npy`` store, used where ``ImageSet.images`` is: ``shape``, ``len``, ``dtype``
    (float32) and indexing, which reads only the rows asked for (positioned reads: the process holds the batch,
    the OS page cache the rest) and returns them as a float32 tensor in [0,1] on ``device``."""

    dtype = torch.float32
    ndim = 4

    def __init__(self, path: str | Path, rows: np.ndarray | None = None, device: str | torch.device = "cpu"):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"image store {self.path} does not exist")
        mm = np.load(self.path, mmap_mode="r")
        if mm.dtype != np.uint8 or mm.ndim != 4:
            raise ValueError(f"image store {self.path}: expected uint8 NCHW, found {mm.dtype} {mm.shape}")
        self._offset, self._n, self.chw = int(mm.offset), int(mm.shape[0]), tuple(int(s) for s in mm.shape[1:])
        del mm
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.device = torch.device(device)

    def __len__(self) -> int:
        return self._n if self.rows is None else len(self.rows)

    @property
    def shape(self) -> torch.Size:
        """(N, C, H, W), as for a tensor."""
        return torch.Size((len(self), *self.chw))

    def __repr__(self) -> str:
        return f"U8Images({self.path.name}, shape={tuple(self.shape)}, device={self.device})"

    def _file_rows(self, index: object) -> np.ndarray:
        """The store rows behind an index of this view."""
        r = _rows(index, len(self))
        return r if self.rows is None else self.rows[r]

    def take(self, index: object) -> "U8Images":
        """A lazy view of the selected images (nothing is read)."""
        return U8Images.__new__(U8Images)._copy_of(self, self._file_rows(index), self.device)

    def to(self, device: str | torch.device, *args: object, **kwargs: object) -> "U8Images":
        """The same view, returning its batches on ``device`` (nothing is read or moved now)."""
        return U8Images.__new__(U8Images)._copy_of(self, self.rows, torch.device(device))

    def _copy_of(self, other: "U8Images", rows: np.ndarray | None, device: torch.device) -> "U8Images":
        self.__dict__.update(other.__dict__)
        self.rows, self.device = rows, device
        return self

    def __getitem__(self, index: object) -> torch.Tensor:
        if isinstance(index, (int, np.integer)):
            return self[[int(index)]][0]
        if isinstance(index, tuple):
            return self[index[0]][(slice(None), *index[1:])]
        return self.read_u8(self._file_rows(index)).to(self.device).float().div_(255)

    def read_u8(self, rows: np.ndarray) -> torch.Tensor:
        """The store rows ``rows`` (any order, repeats allowed) as a uint8 NCHW tensor."""
        out = np.empty((len(rows), *self.chw), dtype=np.uint8)
        if not len(rows):
            return torch.from_numpy(out)
        order = np.argsort(rows, kind="stable")
        srt, row = rows[order], out[0].nbytes
        breaks = np.flatnonzero(np.diff(srt) != 1) + 1
        with open(self.path, "rb", buffering=0) as f:
            for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(srt)]):
                dest = order[a:b]
                f.seek(self._offset + int(srt[a]) * row)
                direct = dest[-1] - dest[0] == b - a - 1 and (b - a == 1 or bool(np.all(np.diff(dest) == 1)))
                buf = out[dest[0] : dest[-1] + 1] if direct else np.empty((b - a, *self.chw), dtype=np.uint8)
                if f.readinto(memoryview(buf).cast("B")) != buf.nbytes:
                    raise ValueError(f"image store {self.path} is truncated")
                if not direct:
                    out[dest] = buf
        return torch.from_numpy(out)

    def batches(self, batch_size: int = 256) -> Iterable[torch.Tensor]:
        """Consecutive float32 batches over the whole view."""
        for i in range(0, len(self), batch_size):
            yield self[i : i + batch_size]
