"""CIFAR-10 from its python pickle batches on disk, unpickled by a restricted unpickler that builds numpy arrays,
lists and bytes only (the project never unpickles arbitrary code).

Layout: ``cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and ``batches.meta``,
found under ``root=`` or ``$SDR_DATA_CIFAR10`` (either the folder itself or the one that holds it).
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

import numpy as np
import torch

from .common import data_root, dir_stamp, n_classes, require_files, source_counts, u8_resize
from .imageset import ImageSet
from .registry import register
from .store import from_chunks

CIFAR10_ENV = "SDR_DATA_CIFAR10"
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = ("test_batch",)
CIFAR10_META = "batches.meta"
# The only globals a CIFAR batch may name: numpy array and dtype reconstruction (numpy 1 and 2 module names,
# pickle protocols 2-5) and the codec Python 3 uses for bytes under protocol 2.
SAFE_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only SAFE_GLOBALS and refuses every other global with a ValueError."""

    def __init__(self, file: object, source: str):
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str) -> object:
        """Resolve an allowed global; refuse the rest (os.system, builtins.eval, ...) naming it."""
        if (module, name) not in SAFE_GLOBALS:
            raise ValueError(
                f"{self.source}: refusing to unpickle the global {module}.{name}; a CIFAR batch holds "
                "only numpy arrays, lists and bytes (allowed: numpy array reconstruction)"
            )
        for mod in (module.replace("numpy.core.", "numpy._core."), module):
            try:
                return getattr(importlib.import_module(mod), name)
            except (ImportError, AttributeError):
                continue
        raise ValueError(f"{self.source}: cannot resolve {module}.{name} with this numpy")


def safe_unpickle(path: Path) -> object:
    """Unpickle a file with :class:`RestrictedUnpickler` (bytes keys, as written by Python 2)."""
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, str(path)).load()
        except (pickle.UnpicklingError, EOFError) as e:
            raise ValueError(f"{path}: not a readable CIFAR pickle ({e})") from e


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 N,3,32,32 images, int64 labels) of one batch, checked."""
    d = safe_unpickle(path)
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise ValueError(
            f"{path}: expected a dict with keys b'data' and b'labels', got {type(d).__name__} "
            f"with keys {sorted(d)[:6] if isinstance(d, dict) else '-'}"
        )
    x, y = d[b"data"], np.asarray(d[b"labels"], dtype=np.int64).reshape(-1)
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        raise ValueError(
            f"{path}: b'data' must be uint8 (N, 3072), got {getattr(x, 'dtype', type(x).__name__)} "
            f"{getattr(x, 'shape', '')}"
        )
    if len(y) != len(x) or (len(y) and (y.min() < 0 or y.max() > 9)):
        raise ValueError(f"{path}: expected {len(x)} labels in 0..9, got {len(y)} in {y.min()}..{y.max()}")
    return x.reshape(-1, 3, 32, 32), y


def _folder(root: str | None) -> Path:
    """The cifar-10-batches-py folder: ``root`` (or $SDR_DATA_CIFAR10) itself or its sub-folder of that name."""
    d = data_root(root, CIFAR10_ENV, "CIFAR-10")
    return d / CIFAR10_DIR if (d / CIFAR10_DIR).is_dir() else d


def cifar10_stamp(root: str | None = None, **_: object) -> str:
    """Which CIFAR-10 batch files are present, with their sizes."""
    try:
        root = str(_folder(root))
    except FileNotFoundError:
        return "absent"
    return dir_stamp(root, CIFAR10_ENV, CIFAR10_TRAIN + CIFAR10_TEST + (CIFAR10_META,))


@register(
    "cifar10",
    "CIFAR-10 python batches from $SDR_DATA_CIFAR10, 60k colour 32x32 images, 10 classes",
    how_to_get=f"download the CIFAR-10 python version yourself and point {CIFAR10_ENV} (or root=) at the folder "
    "that holds cifar-10-batches-py/; see book/data_sources.md",
    stamp=cifar10_stamp,
    large=True,
)
def cifar10(
    split: str,
    size: int | None,
    seed: int,
    root: str | None = None,
    in_memory: bool | None = None,
    store: Path | None = None,
) -> ImageSet:
    """CIFAR-10: train = data_batch_1..5 (50k), test = test_batch (10k); class names from batches.meta."""
    d = _folder(root)
    names = list(CIFAR10_TRAIN if split == "train" else CIFAR10_TEST)
    paths = require_files(d, names + [CIFAR10_META], CIFAR10_ENV, f"CIFAR-10 ({CIFAR10_DIR})")
    meta_d = safe_unpickle(paths[-1])
    raw = meta_d.get(b"label_names", []) if isinstance(meta_d, dict) else []
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in raw]
    if len(classes) != 10:
        raise ValueError(f"{paths[-1]}: expected 10 b'label_names', found {len(classes)}")
    batches = [_batch(p) for p in paths[:-1]]
    out = size or 32
    x = from_chunks(
        sum(len(b[0]) for b in batches), (3, out, out), (u8_resize(b[0], size) for b in batches), in_memory, store
    )
    meta = {
        "root": str(d),
        "licence": "CIFAR-10 (Krizhevsky 2009): cite the tech report; no explicit licence",
        "source_counts": source_counts({p.name: (len(b[1]), n_classes(b[1])) for p, b in zip(paths, batches)}),
    }
    return ImageSet("cifar10", x, torch.from_numpy(np.concatenate([b[1] for b in batches])), classes, meta)
