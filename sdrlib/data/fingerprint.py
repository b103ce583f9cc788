"""The data check of a checkpoint: is the set this machine builds the one the checkpoint was trained on (the
fingerprints of ``ImageSet.fingerprint`` compared, and how to get the right data when not)."""

from __future__ import annotations

from .imageset import ImageSet
from .registry import how_to_get


class DataMismatch(ValueError):
    """The data set built on this machine is not the one a checkpoint was trained on."""


def check_fingerprint(ds: ImageSet, want: dict, trained: str) -> None:
    """Refuse ``ds`` when its fingerprint differs from ``want`` (the one recorded when ``trained``, a checkpoint,
    was trained): one :class:`DataMismatch` naming both sets of sources and how to get the right data."""
    got = ds.fingerprint()
    if got["sha256"] != want["sha256"]:
        raise DataMismatch(
            f"{trained} was trained on {ds.name!r} built from {_sources(want)} ({want['classes']} classes), but this "
            f"machine builds it from {_sources(got)} ({got['classes']} classes); {how_to_get(ds.name)}"
        )


def _sources(fp: dict) -> str:
    """The sources of a fingerprint, as ``source=images`` pairs."""
    return (
        ", ".join(f"{k}={v['images'] if isinstance(v, dict) else v}" for k, v in fp.get("sources", {}).items())
        or "unknown sources"
    )
