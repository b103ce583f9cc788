"""The references' stopping rule (sdrlib.stopping), read from a training log alone."""

from __future__ import annotations

import pytest

from sdrlib import stopping


def _log(values: dict[int, float], key: str = "eval") -> list[dict]:
    return [
        {"step": s, key: [{"sigma": 0.1, "psnr_denoised": v}, {"sigma": 0.4, "psnr_denoised": 0.0}]}
        for s, v in values.items()
    ]


def test_the_rule_is_met_below_the_stop_slope() -> None:
    assert stopping.rule_met(stopping.STOP_SLOPE - 1e-6) == "met"
    assert stopping.rule_met(stopping.STOP_SLOPE) == "**not met**"


def test_the_slope_is_in_db_per_1000_steps_over_the_last_window() -> None:
    log = _log({0: 25.0, 1000: 26.0, 1500: 26.5, 2000: 27.0})
    assert stopping.psnr_slope(log) == pytest.approx(1.0)
    assert stopping.psnr_slope(log, window=100) is None  # one evaluation in the window
    assert stopping.psnr_slope([]) is None


def test_the_ema_evaluations_are_preferred() -> None:
    log = _log({0: 25.0, 1000: 26.0})
    assert stopping.eval_key(log) == "eval"
    for r, v in zip(log, (30.0, 30.0)):
        r.update(_log({r["step"]: v}, "eval_ema")[0])
    assert stopping.eval_key(log) == "eval_ema"
    assert stopping.psnr_slope(log) == pytest.approx(0.0)


def test_the_full_rate_slope_is_read_before_the_decay() -> None:
    log = _log({s: 20.0 + 0.002 * min(s, 1000) for s in range(0, 3001, 500)})
    tc = {"steps": 3000, "hold_steps": 1000, "decay_steps": 1000, "decay": "cosine"}
    assert stopping.full_rate_slope(log, tc) == (1000, pytest.approx(2.0))
    assert stopping.full_rate_slope(log, {**tc, "decay": "none"}) is None


def test_the_rule_needs_no_training_code() -> None:
    """Pure functions over a log: the module imports nothing of sdrlib (train.py writes the log, not this)."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(stopping.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert [m for m in imported if m != "__future__"] == []
