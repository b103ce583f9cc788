"""Any image tree on disk (``folder:PATH``): class = immediate sub-folder, RGB, resized and centre-cropped."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from .common import _open_rgb, n_classes, source_counts, stratified_split
from .imageset import ImageSet
from .registry import register
from .store import U8Images, from_chunks

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
CHUNK = 256  # images decoded per chunk


def _walk(root: Path) -> tuple[dict[str, list[Path]], int]:
    """Image files of a tree by class (immediate sub-folder, "." for root) and the number of other files."""
    out: dict[str, list[Path]] = {}
    others = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root)
        cls = rel.parts[0] if rel.parts else "."
        visible = [f for f in sorted(filenames) if not f.startswith(".")]
        files = [Path(dirpath) / f for f in visible if f.lower().endswith(IMAGE_EXTS)]
        others += len(visible) - len(files)
        if files:
            out.setdefault(cls, []).extend(files)
    return dict(sorted(out.items())), others


def _folder_files(root: Path) -> dict[str, list[Path]]:
    """Image files of a tree by class: immediate sub-folder name (recursive), or "." for files in root.

    FileNotFoundError when ``root`` is missing or holds no files; ValueError when it holds files but no images.
    """
    if not root.is_dir():
        raise FileNotFoundError(f"folder data set: {root} does not exist or is not a directory")
    out, others = _walk(root)
    if not out and not others:
        raise FileNotFoundError(f"folder data set: no images under {root}: it holds no files")
    if not out:
        raise ValueError(
            f"folder data set: no images under {root}: all {others} files were skipped (image files "
            f"end in {', '.join(IMAGE_EXTS)})"
        )
    return out


def _folder_stamp(path: str) -> str:
    """A fingerprint of an image tree (names, sizes, modification times), so caches follow its changes."""
    try:
        files = [f for fs in _folder_files(Path(path).expanduser()).values() for f in fs]
    except (FileNotFoundError, ValueError):
        return "missing"
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def folder_stamp(path: str = "", **_: object) -> str:
    """The source stamp of ``folder:PATH``: :func:`_folder_stamp` of its tree."""
    return _folder_stamp(path)


def _square_u8(path: Path, size: int) -> np.ndarray:
    """An image file as RGB uint8 (3,size,size): shorter side resized to ``size``, then centre-cropped."""
    img = _open_rgb(path, size)[0]
    h, w = img.shape[:2]
    if min(h, w) < size:  # grow small images
        s = size / min(h, w)
        img = np.asarray(
            Image.fromarray(img).resize((max(size, round(w * s)), max(size, round(h * s))), Image.Resampling.BICUBIC)
        )
        h, w = img.shape[:2]
    t, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(img[t : t + size, left : left + size].transpose(2, 0, 1))


def _square_chunks(files: list[Path], size: int, failed: list[int]) -> Iterator[np.ndarray]:
    """uint8 (n,3,size,size) chunks of the files in order; an unreadable file gives zeros and its index in failed."""
    for i in range(0, len(files), CHUNK):
        out = np.zeros((len(files[i : i + CHUNK]), 3, size, size), dtype=np.uint8)
        for j, f in enumerate(files[i : i + CHUNK]):
            try:
                out[j] = _square_u8(f, size)
            except (OSError, ValueError, Image.DecompressionBombError):
                failed.append(i + j)
        yield out


def read_squares(
    files: list[Path], size: int, in_memory: bool | None = None, store: Path | None = None
) -> tuple[torch.Tensor | U8Images, np.ndarray]:
    """The files as square RGB images (in memory or a store, see ``store``) and the indices of the readable ones."""
    failed: list[int] = []
    x = from_chunks(len(files), (3, size, size), _square_chunks(files, size, failed), in_memory, store)
    ok = np.setdiff1d(np.arange(len(files)), np.asarray(failed, dtype=np.int64))
    if failed:
        x = x.take(ok) if isinstance(x, U8Images) else x[torch.from_numpy(ok)]
    return x, ok


@register(
    "folder",
    "Any image tree: folder:PATH, class = sub-folder name, RGB, resized and centre-cropped",
    how_to_get="name a folder of your images as folder:PATH, one sub-folder per class",
    stamp=folder_stamp,
    large=True,
)
def folder(
    split: str,
    size: int | None,
    seed: int,
    path: str,
    test_fraction: float = 0.2,
    in_memory: bool | None = None,
    store: Path | None = None,
) -> ImageSet:
    """Images under ``path``; class = immediate sub-folder ("." for files directly in ``path``).

    Each class is split by ``seed``: ``test_fraction`` of its images (at least one when it has two) to test.
    Unreadable files are skipped and counted in ``meta["skipped"]``; a split none of whose files can be read is
    a ValueError naming the folder.
    """
    root = Path(path).expanduser()
    by_class = _folder_files(root)
    classes = list(by_class)
    files = [f for fs in by_class.values() for f in fs]
    labels = torch.cat([torch.full((len(fs),), k, dtype=torch.int64) for k, fs in enumerate(by_class.values())])
    idx = stratified_split(labels, test_fraction, seed)[split]
    chosen = [files[i] for i in idx.tolist()]
    x, ok = read_squares(chosen, size or 32, in_memory, store)
    skipped = len(chosen) - len(ok)
    if chosen and not len(ok):
        raise ValueError(
            f"folder data set {root}: none of the {len(chosen)} image files of the {split} split could "
            f"be read ({skipped} skipped, e.g. {chosen[0].name}); expected readable images"
        )
    y = labels[idx][torch.from_numpy(ok)]
    meta = {
        "root": str(root),
        "skipped": str(skipped),
        "files": str(len(files)),
        "source_counts": source_counts({"folder": (len(y), n_classes(y))}),
    }
    return ImageSet(f"folder:{path}", x, y, classes, meta)
