"""Any image tree on disk (``folder:PATH``): class = immediate sub-folder, RGB, resized and centre-cropped."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import ImageSet, register
from .common import _open_rgb, _to_float, stratified_split

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")


def _folder_files(root: Path) -> dict[str, list[Path]]:
    """Image files of a tree by class: immediate sub-folder name (recursive), or "." for files in root."""
    if not root.is_dir():
        raise FileNotFoundError(f"folder data set: {root} does not exist or is not a directory")
    out: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root)
        cls = rel.parts[0] if rel.parts else "."
        files = [Path(dirpath) / f for f in sorted(filenames)
                 if f.lower().endswith(IMAGE_EXTS) and not f.startswith(".")]
        if files:
            out.setdefault(cls, []).extend(files)
    if not out:
        raise FileNotFoundError(f"folder data set: no images ({', '.join(IMAGE_EXTS)}) under {root}")
    return dict(sorted(out.items()))


def _folder_stamp(path: str) -> str:
    """A fingerprint of an image tree (names, sizes, modification times), so caches follow its changes."""
    try:
        files = [f for fs in _folder_files(Path(path).expanduser()).values() for f in fs]
    except FileNotFoundError:
        return "missing"
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _load_square(path: Path, size: int) -> torch.Tensor:
    """An image file as RGB (3,size,size): shorter side resized to ``size``, then centre-cropped."""
    img = _open_rgb(path, size)[0]
    h, w = img.shape[:2]
    if min(h, w) < size:  # grow small images
        s = size / min(h, w)
        img = np.asarray(Image.fromarray(img).resize((max(size, round(w * s)), max(size, round(h * s))),
                                                     Image.Resampling.BICUBIC))
        h, w = img.shape[:2]
    t, l = (h - size) // 2, (w - size) // 2
    return _to_float(img[t:t + size, l:l + size])


@register("folder", "Any image tree: folder:PATH, class = sub-folder name, RGB, resized and centre-cropped")
def folder(split: str, size: int | None, seed: int, path: str, test_fraction: float = 0.2) -> ImageSet:
    """Images under ``path``; class = immediate sub-folder ("." for files directly in ``path``).

    Each class is split by ``seed``: ``test_fraction`` of its images (at least one when it has two) to test.
    Unreadable files are skipped and counted in ``meta["skipped"]``.
    """
    root = Path(path).expanduser()
    by_class = _folder_files(root)
    classes = list(by_class)
    files = [f for fs in by_class.values() for f in fs]
    labels = torch.cat([torch.full((len(fs),), k, dtype=torch.int64) for k, fs in enumerate(by_class.values())])
    size = size or 32
    xs, ok, skipped = [], [], 0
    for i in stratified_split(labels, test_fraction, seed)[split].tolist():
        try:
            xs.append(_load_square(files[i], size))
            ok.append(i)
        except (OSError, ValueError, Image.DecompressionBombError):
            skipped += 1
    x = torch.stack(xs) if xs else torch.zeros(0, 3, size, size)
    meta = {"root": str(root), "skipped": str(skipped), "files": str(len(files))}
    return ImageSet(f"folder:{path}", x, labels[torch.tensor(ok, dtype=torch.int64)], classes, meta)
