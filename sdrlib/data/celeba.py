"""CelebA, aligned and cropped faces (``img_align_celeba``), with identities, the 40 attributes and the official
partition, from the files on disk (``root=`` or ``$SDR_DATA_CELEBA``).

Layout: ``img_align_celeba/000001.jpg`` .., ``identity_CelebA.txt``, ``list_attr_celeba.txt`` and
``list_eval_partition.txt``, either side by side in the folder or as distributed (text files in ``Anno/`` and
``Eval/``, images in ``Img/``). Partition 0 is our train split; test is partition 2 (the official test set) by
default, or partitions 1 and 2 with ``test_partitions=(1, 2)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .common import data_root, n_classes, source_counts
from .folder import read_squares
from .imageset import ImageSet
from .registry import register

CELEBA_ENV = "SDR_DATA_CELEBA"
CELEBA_IMAGES = "img_align_celeba"
CELEBA_TEXT = ("identity_CelebA.txt", "list_attr_celeba.txt", "list_eval_partition.txt")
CELEBA_SUBDIRS = ("", "Anno", "Eval", "Img")  # as distributed: Anno/*.txt, Eval/*.txt, Img/img_align_celeba


def _celeba_paths(d: Path) -> dict[str, Path]:
    """The image folder and the three text files, each looked for in ``d`` and its Anno/Eval/Img sub-folders."""
    out, missing = {}, []
    for name in (CELEBA_IMAGES, *CELEBA_TEXT):
        found = next((d / s / name for s in CELEBA_SUBDIRS if (d / s / name).exists()), None)
        if found is None:
            missing.append(name)
        else:
            out[name] = found
    if missing:
        raise FileNotFoundError(
            f"CelebA: missing in {d} (or its {'/, '.join(CELEBA_SUBDIRS[1:])}/ sub-folders): "
            f"{', '.join(missing)}; put the files there or point root= or {CELEBA_ENV} at the "
            "folder that holds them (nothing is downloaded)"
        )
    return out


def _pairs(path: Path) -> dict[str, int]:
    """``name value`` lines (identity or partition file) as {image file: int}."""
    out = {}
    for k, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise ValueError(f"{path}, line {k}: expected 'IMAGE.jpg NUMBER', got {line!r}")
        out[parts[0]] = int(parts[1])
    return out


def _attributes(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """list_attr_celeba.txt: a count line, the 40 attribute names, then ``IMAGE.jpg`` and 40 values of -1/1."""
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a count line and a line of attribute names, found {len(lines)} lines")
    names = lines[1].split()
    rows = {}
    for k, line in enumerate(lines[2:], 3):
        parts = line.split()
        if not parts:
            continue
        vals = np.array(parts[1:], dtype=np.int8) if len(parts) == len(names) + 1 else None
        if vals is None or not np.isin(vals, (-1, 1)).all():
            raise ValueError(f"{path}, line {k}: expected an image name and {len(names)} values of -1 or 1")
        rows[parts[0]] = vals == 1
    return names, rows


def celeba_stamp(root: str | None = None, **_: object) -> str:
    """Which CelebA files are present: the text files' sizes and the number of images."""
    try:
        paths = _celeba_paths(data_root(root, CELEBA_ENV, "CelebA"))
    except FileNotFoundError:
        return "absent"
    n = len(os.listdir(paths[CELEBA_IMAGES]))
    return "; ".join([f"{paths[CELEBA_IMAGES]}: {n} files"] + [f"{f}={paths[f].stat().st_size}" for f in CELEBA_TEXT])


def _labels(
    label: str, ident: dict[str, int], attr_names: list[str], attrs: dict[str, np.ndarray], files: list[str]
) -> tuple[np.ndarray, list[str]]:
    """(labels, class names) of the chosen images: identity (all identities are classes) or one attribute."""
    if label == "identity":
        ids = np.array(sorted(set(ident.values())))
        return np.searchsorted(ids, [ident[f] for f in files]).astype(np.int64), [str(i) for i in ids]
    if label not in attr_names:
        raise ValueError(f"CelebA label must be 'identity' or one of the attributes {attr_names}, got {label!r}")
    col = attr_names.index(label)
    return np.array([attrs[f][col] for f in files], dtype=np.int64), [f"not {label}", label]


@register(
    "celeba",
    "CelebA aligned faces from $SDR_DATA_CELEBA, centre square resized to 64; class = identity",
    how_to_get=f"download CelebA yourself (its agreement: non-commercial research) and point {CELEBA_ENV} (or "
    "root=) at the folder that holds img_align_celeba/ and the list files; see book/data_sources.md",
    stamp=celeba_stamp,
    large=True,
)
def celeba(
    split: str,
    size: int | None,
    seed: int,
    root: str | None = None,
    label: str = "identity",
    test_partitions: tuple[int, ...] = (2,),
    in_memory: bool | None = None,
    store: Path | None = None,
) -> ImageSet:
    """CelebA: train = partition 0, test = ``test_partitions`` (2, or (1, 2) to add validation); images are the
    centre square of the 178x218 aligned faces resized to ``size`` (default 64); label = identity, or an
    attribute name (two classes); ``extras["attributes"]`` holds the 40 attributes (bool, True for 1)."""
    if not set(test_partitions) or not set(test_partitions) <= {1, 2}:
        raise ValueError(f"test_partitions must be (2,) or (1, 2) (1 = validation, 2 = test), got {test_partitions}")
    d = data_root(root, CELEBA_ENV, "CelebA")
    paths = _celeba_paths(d)
    part, ident = _pairs(paths["list_eval_partition.txt"]), _pairs(paths["identity_CelebA.txt"])
    attr_names, attrs = _attributes(paths["list_attr_celeba.txt"])
    wanted = {0} if split == "train" else set(test_partitions)
    files = sorted(f for f, p in part.items() if p in wanted)
    unlisted = [f for f in files if f not in ident or f not in attrs]
    absent = sorted(set(files) - set(os.listdir(paths[CELEBA_IMAGES])))
    if unlisted or absent:
        raise FileNotFoundError(
            f"CelebA in {d}: {len(absent)} images of the partition file missing from "
            f"{CELEBA_IMAGES}/ (e.g. {absent[:3]}), {len(unlisted)} missing from the identity or "
            f"attribute lists (e.g. {unlisted[:3]})"
        )
    y, classes = _labels(label, ident, attr_names, attrs, files)
    x, ok = read_squares([paths[CELEBA_IMAGES] / f for f in files], size or 64, in_memory, store)
    if files and not len(ok):
        raise ValueError(f"CelebA in {d}: none of the {len(files)} images of the {split} split could be read")
    y = y[ok]
    a = torch.from_numpy(np.stack([attrs[files[i]] for i in ok]) if len(ok) else np.zeros((0, len(attr_names)), bool))
    meta = {
        "root": str(d),
        "attribute_names": ",".join(attr_names),
        "label": label,
        "skipped": str(len(files) - len(ok)),
        "partitions": "+".join(map(str, sorted(wanted))),
        "licence": "CelebA: non-commercial research only (see the CelebA agreement)",
        "source_counts": source_counts({CELEBA_IMAGES: (len(y), n_classes(y))}),
    }
    return ImageSet("celeba", x, torch.from_numpy(y), classes, meta, extras={"attributes": a})
