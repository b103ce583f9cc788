"""LSUN bedroom exported as an image folder (the LSUN tools' export writes one .webp per image, nested by key,
or flat): one class, a deterministic train/test split, read with the folder reader's loading."""

from __future__ import annotations

from pathlib import Path

import torch

from .common import data_root, source_counts, stratified_split
from .folder import _folder_files, _folder_stamp, read_squares
from .imageset import ImageSet
from .registry import register

LSUN_ENV = "SDR_DATA_LSUN_BEDROOM"


def lsun_stamp(root: str | None = None, **_: object) -> str:
    """The image tree's stamp (names, sizes, times): it follows added or removed images."""
    try:
        return _folder_stamp(str(data_root(root, LSUN_ENV, "LSUN bedroom")))
    except FileNotFoundError:
        return "absent"


@register(
    "lsun-bedroom",
    "LSUN bedroom exported as images under $SDR_DATA_LSUN_BEDROOM, one class, 64x64",
    how_to_get=f"export the LSUN bedroom category to image files with the LSUN tools and point {LSUN_ENV} (or "
    "root=) at their folder; see book/data_sources.md",
    stamp=lsun_stamp,
    large=True,
)
def lsun_bedroom(
    split: str,
    size: int | None,
    seed: int,
    root: str | None = None,
    test_fraction: float = 0.01,
    in_memory: bool | None = None,
    store: Path | None = None,
) -> ImageSet:
    """Every image under the folder (any depth) is a bedroom; ``test_fraction`` of them (chosen by ``seed``,
    at least one) form the test split; centre square resized to ``size`` (default 64)."""
    d = data_root(root, LSUN_ENV, "LSUN bedroom")
    files = [f for fs in _folder_files(d).values() for f in fs]
    idx = stratified_split(torch.zeros(len(files), dtype=torch.int64), test_fraction, seed)[split]
    chosen = [files[i] for i in idx.tolist()]
    x, ok = read_squares(chosen, size or 64, in_memory, store)
    if chosen and not len(ok):
        raise ValueError(f"LSUN bedroom in {d}: none of the {len(chosen)} images of the {split} split could be read")
    meta = {
        "root": str(d),
        "skipped": str(len(chosen) - len(ok)),
        "files": str(len(files)),
        "licence": "LSUN: research use, see the LSUN terms; images are from the web (their owners' rights)",
        "source_counts": source_counts({"lsun-bedroom": (len(ok), 1)}),
    }
    return ImageSet("lsun-bedroom", x, torch.zeros(len(ok), dtype=torch.int64), ["bedroom"], meta)
