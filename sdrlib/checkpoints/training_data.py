"""A checkpoint's own data set: the ``data.load`` arguments its config records, and the set rebuilt on this
machine, refused when the sources found here differ from those it was trained on (the fingerprint its config
records; the check itself is ``data.check_fingerprint``)."""

from __future__ import annotations

from pathlib import Path

from .. import data
from .store import Checkpoint, read_config


def training_data_kwargs(config: dict) -> dict:
    """The ``data.load`` arguments (size, crop) of the data a checkpoint was trained on, from its config dict."""
    tc = config.get("train", {})
    return config.get("data_kwargs") or {"size": tc.get("size")}


def load_data(checkpoint: Checkpoint | str | Path, split: str = "test", check: bool = True, **kwargs) -> data.ImageSet:
    """The checkpoint's own data set (same name, size and crop), refused with one ``data.DataMismatch`` saying how
    to get the right data when the sources found here differ from those it was trained on (fingerprint)."""
    config = checkpoint.config if isinstance(checkpoint, Checkpoint) else read_config(checkpoint)
    ds = data.load(config["train"]["data"], split, **{**training_data_kwargs(config), **kwargs})
    want = (config.get("data_fingerprint") or {}).get(split)
    if check and want and not kwargs:
        data.check_fingerprint(ds, want, trained=str(getattr(checkpoint, "path", None) or checkpoint))
    return ds
