"""Data sets of the book: every loader is offline, deterministic for a seed, and returns float images in [0, 1],
NCHW, with integer labels (SPEC section 5, DESIGN "Offline data").

Use :func:`load` (``load("fashion-mnist", split="test")``) or :func:`names` to list them. Where things are:
``imageset`` (the ImageSet, its contract and fingerprint), ``fingerprint`` (the check that a checkpoint's data
are the ones built here), ``registry`` (register, names, how_to_get),
``loading`` (load and its cache), ``store`` (sets larger than memory), ``debian`` (the Debian packages of the
sources), ``common`` (shared image I/O), and one module per family, each registering its builders.
Sources and licences of every set: ``book/data_sources.md``.
"""

from ..utils import cache_dir
from .common import SPLITS, VALIDATION
from .debian import DEBIAN_PACKAGES
from .fashion_mnist import download_fashion_mnist
from .fingerprint import DataMismatch, check_fingerprint
from .imageset import ImageSet, check_contract
from .loading import load
from .registry import Registration, how_to_get, large_sets, names, register, registrations, source_stamp
from .store import U8Images

__all__ = [
    "DEBIAN_PACKAGES",
    "SPLITS",
    "VALIDATION",
    "DataMismatch",
    "ImageSet",
    "Registration",
    "U8Images",
    "cache_dir",
    "check_contract",
    "check_fingerprint",
    "download_fashion_mnist",
    "how_to_get",
    "large_sets",
    "load",
    "names",
    "register",
    "registrations",
    "source_stamp",
]
