"""The learning-rate schedule of training: a linear warm-up, halving at a fixed period (the authors', SPEC 1),
and a final cosine or linear decay held at its end rate. The rate depends on the step alone, so a resumed
run follows the schedule of an uninterrupted one."""

from __future__ import annotations

import math

DECAYS = ("none", "cosine", "linear")  # shapes of the final decay phase


def lr_at(cfg, step: int) -> float:
    """Learning rate at a step (``cfg`` a TrainConfig): linear warm-up, halving every lr_halve_every steps (the
    authors halve every 100 epochs), then a final cosine or linear decay to lr * lr_final over decay_steps steps,
    held there for the last hold_steps steps."""
    lr = cfg.lr * 0.5 ** (step // cfg.lr_halve_every) if cfg.lr_halve_every else cfg.lr
    if step < cfg.warmup:
        lr *= (step + 1) / cfg.warmup
    start = cfg.steps - cfg.hold_steps - cfg.decay_steps
    if cfg.decay != "none" and step >= start:
        p = min((step - start) / cfg.decay_steps, 1.0)
        shape = 0.5 * (1 + math.cos(math.pi * p)) if cfg.decay == "cosine" else 1 - p
        lr *= cfg.lr_final + (1 - cfg.lr_final) * shape
    return lr
