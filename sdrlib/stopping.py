"""The references' stopping rule, read from a training log alone: a run has trained long enough when its held-out
PSNR at sigma 0.1 gains less than ``STOP_SLOPE`` dB per 1,000 steps over its last 1,000 steps. Pure functions over
the log's records (``{"step", "eval" or "eval_ema": [{"sigma", "psnr_denoised"}, ...]}``): training writes the log,
the checkpoint READMEs and the appendix chapter read the rule from here."""

from __future__ import annotations

STOP_SLOPE = 0.05  # dB per 1,000 steps of held-out PSNR at sigma 0.1: below it, the run has stopped improving


def eval_key(log: list[dict]) -> str:
    """The evaluations that score the weights a checkpoint loads by default: the EMA's ("eval_ema") when the log
    has them, else "eval"."""
    return "eval_ema" if any("eval_ema" in r for r in log) else "eval"


def psnr_slope(
    log: list[dict], sigma: float = 0.1, window: int = 1000, key: str | None = None, end: int | None = None
) -> float | None:
    """Least-squares slope of held-out denoised PSNR at ``sigma`` over the last ``window`` steps of a training
    log (or the ``window`` steps up to step ``end``), in dB per 1,000 steps (the references' stopping rule:
    below STOP_SLOPE); the EMA weights' evaluations when the log has them. None when fewer than two evaluations
    fall in the window."""
    key = key or eval_key(log)
    pts = [
        (r["step"], row["psnr_denoised"])
        for r in log
        if key in r and (end is None or r["step"] <= end)
        for row in r[key]
        if abs(row["sigma"] - sigma) < 1e-9
    ]
    if not pts:
        return None
    last = pts[-1][0]
    pts = [(s, v) for s, v in pts if s >= last - window]
    if len(pts) < 2:
        return None
    ms = sum(s for s, _ in pts) / len(pts)
    mv = sum(v for _, v in pts) / len(pts)
    var = sum((s - ms) ** 2 for s, _ in pts)
    return 1000.0 * sum((s - ms) * (v - mv) for s, v in pts) / var


def rule_met(slope: float) -> str:
    """Whether a final PSNR slope meets the references' stopping rule, as the READMEs and the appendix say it."""
    return "met" if slope < STOP_SLOPE else "**not met**"


def full_rate_slope(log: list[dict], tc: dict) -> tuple[int, float] | None:
    """The decay's first step and the PSNR slope over the 1,000 steps before it: how fast the run still improved
    at its full learning rate (the stopping rule read at the final rate alone can flatter a run). ``tc``: the
    run's training config as a dict (``config.json``'s "train")."""
    if tc.get("decay", "none") == "none":
        return None
    start = tc["steps"] - tc.get("hold_steps", 0) - tc["decay_steps"]
    slope = psnr_slope(log, end=start)
    return None if slope is None else (start, slope)
