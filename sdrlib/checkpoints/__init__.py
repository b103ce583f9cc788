"""Checkpoints: the storage format (``store``: a folder of safetensors weights, a JSON config holding their
sha256 and the data fingerprint, and the training log; save, verified load, resolve a shipped name), a
checkpoint's own data set (``training_data``), and its README (``readme``).

The book's reference list lives in :mod:`sdrlib.references` and the stopping rule in :mod:`sdrlib.stopping`;
the names re-exported from them at the end are those the chapters call as ``checkpoints.NAME``.
"""

from ..references import expected_verdict, recipe_twins, reference_names, references, seeds_of, trained_networks
from ..stopping import STOP_SLOPE, rule_met
from .readme import NOTES, files_text, history_table, readme_text, recipe_text, run_summary
from .store import (
    COMMIT,
    CONFIG,
    EMA,
    FILES,
    FORMAT,
    LOG,
    PENDING,
    REPO_CHECKPOINTS,
    STATE,
    WEIGHT_CHOICES,
    WEIGHTS,
    Checkpoint,
    CheckpointError,
    default_weights,
    exists,
    finish_pending,
    load,
    load_model,
    read_config,
    read_log,
    resolve,
    save,
    sha256_file,
    training_snapshots,
    weights_sha256,
)
from .training_data import load_data, training_data_kwargs

__all__ = [
    # the storage format (store)
    "COMMIT",
    "CONFIG",
    "EMA",
    "FILES",
    "FORMAT",
    "LOG",
    "PENDING",
    "REPO_CHECKPOINTS",
    "STATE",
    "WEIGHT_CHOICES",
    "WEIGHTS",
    "Checkpoint",
    "CheckpointError",
    "default_weights",
    "exists",
    "finish_pending",
    "load",
    "load_model",
    "read_config",
    "read_log",
    "resolve",
    "save",
    "sha256_file",
    "training_snapshots",
    "weights_sha256",
    # a checkpoint's own data (training_data) and its README (readme)
    "load_data",
    "training_data_kwargs",
    "NOTES",
    "files_text",
    "history_table",
    "readme_text",
    "recipe_text",
    "run_summary",
    # for the chapters, which call them as checkpoints.NAME: sdrlib.references and sdrlib.stopping own them
    "expected_verdict",
    "reference_names",
    "references",
    "seeds_of",
    "trained_networks",
    "recipe_twins",
    "STOP_SLOPE",
    "rule_met",
]
