"""The recipe study's health measures (sdrlib.health): dead channels by both rules and the 10-NN score."""

import pytest
import torch

from sdrlib import health
from sdrlib.unet import build


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes that a middle block can tell apart: dark and bright noise images."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    x = (0.2 + 0.6 * labels.view(-1, 1, 1, 1) + 0.1 * torch.randn(n, 1, 16, 16, generator=g)).clamp(0, 1)
    return x, labels


def test_middle_health_counts_and_per_query_scores():
    torch.manual_seed(0)
    m = build("tiny", gain_init="ones").eval()
    (xb, lb), (xq, lq) = _data(40, 0), _data(20, 1)
    h = health.middle_health(m, xb, lb, xq, lq, k=5, per_query=True)
    assert h["channels"] == m.cfg.mid_width
    assert 0 <= h["dead_zero"] <= h["dead_relative"] <= h["channels"]  # an exact zero is also relatively dead
    per = torch.tensor(h["knn_per_query"])
    assert per.shape == (20,)
    assert ((per * 5).round() - per * 5).abs().max() < 0.001  # multiples of 1/k
    assert abs(per.mean().item() - h["knn_agreement"]) < 1e-3
    assert "knn_per_query" not in health.middle_health(m, xb, lb, xq, lq, k=5)


def test_middle_health_sees_a_dead_middle_block():
    """A middle block whose last layer's norm gains are zero outputs only zeros: every channel dead by both rules."""
    torch.manual_seed(0)
    m = build("tiny").eval()
    with torch.no_grad():
        m.mid[-1][1].gain.zero_()
    (xb, lb), (xq, lq) = _data(20, 0), _data(10, 1)
    h = health.middle_health(m, xb, lb, xq, lq, k=3)
    assert h["dead_zero"] == h["dead_relative"] == m.cfg.mid_width


def _arm(knn: float, dead: int, channels: int = 100, size: int | None = None) -> dict:
    """One arm of the recipe study as scripts/health_study.py writes it: its config and its snapshots' rows."""
    last = {"step": 800, "cpu_min": 5.0, "dead_zero": 0, "dead_relative": dead, "channels": channels}
    return {
        "config": {"preset": "small", "size": size},
        "query_split": "val",
        "rows": [{**last, "knn_agreement": 0.1}, {**last, "knn_agreement": knn}],
    }


def test_pick_arm_refuses_arms_measured_on_the_test_split():
    """A report without "query_split" was written before the study kept a validation split: its queries were test
    crops, so it cannot choose, except to replay the first choice with split="test"."""
    old = {a: {k: v for k, v in _arm(knn, 0).items() if k != "query_split"} for a, knn in (("a", 0.5), ("b", 0.6))}
    with pytest.raises(ValueError, match="another split than 'val'"):
        health.pick_arm(old, dead_bar=0.05)
    with pytest.raises(ValueError, match="'a': 'test'"):
        health.pick_arm({**old, "b": _arm(0.6, 0)}, dead_bar=0.05)
    assert health.pick_arm(old, dead_bar=0.05, split="test") == "b"


def test_pick_arm_takes_the_best_10nn_among_healthy_arms_only():
    """The healthiest-looking arm with the best 10-NN wins only if it meets the bar; the last snapshot decides."""
    arms = {"sick but sharp": _arm(0.90, dead=30), "healthy": _arm(0.70, dead=2), "healthier": _arm(0.60, dead=0)}
    assert health.pick_arm(arms, dead_bar=0.05) == "healthy"
    assert health.pick_arm(arms, dead_bar=0.5) == "sick but sharp"


def test_pick_arm_without_a_healthy_arm_takes_the_fewest_dead_by_fraction():
    """Nobody meets the bar: the smallest dead fraction wins (10 of 400 beats 5 of 50), whatever its 10-NN."""
    arms = {"a": _arm(0.9, dead=5, channels=50), "b": _arm(0.1, dead=10, channels=400)}
    assert health.pick_arm(arms, dead_bar=0.01) == "b"


def test_pick_arm_compares_only_arms_of_the_minimum_size():
    """At stage 2 a 32-pixel arm cannot become the 64-pixel textures reference, however good it looks."""
    arms = {"32 px": _arm(0.95, dead=0), "64 px": _arm(0.5, dead=0, size=64)}
    assert health.pick_arm(arms, 0.05, min_size=64) == "64 px"
    assert health.pick_arm(arms, 0.05) == "32 px"
    with pytest.raises(ValueError, match="at least 128"):
        health.pick_arm(arms, 0.05, min_size=128)


def test_stage_rows_mark_the_chosen_arm_and_list_references():
    stage = {"arms": {"a": _arm(0.7, 1), "b": _arm(0.6, 0)}, "references": {"ref": _arm(0.8, 0, size=64)}}
    rows = health.stage_rows(stage, chosen="b")
    assert [r["run"] for r in rows] == ["a", "b ✔ chosen", "reference `ref`"]
    assert [r["size"] for r in rows] == [32, 32, 64]
    assert rows[0]["10-NN"] == 0.7
    assert rows[0]["10-NN 95 % CI"] == "not stored"


def test_stopping_line_reads_the_rule_against_the_slope():
    assert health.stopping_line({"psnr_slope": None}) == ""
    met = health.stopping_line({"psnr_slope": 0.01, "cpu_hours": 4.0})
    assert "+0.010 dB" in met
    assert "met" in met
    assert "not met" not in met
    assert "**not met**" in health.stopping_line({"psnr_slope": 0.2, "cpu_hours": 4.0})
    gpu = health.stopping_line(
        {"psnr_slope": None, "cpu_hours": 0.34, "elapsed_min": 3.7, "config": {"device": "cuda"}}
    )
    assert "trained on a GPU, 3.7 minutes of wall time" in gpu
    assert "cannot be read" in gpu
    assert "CPU-hours" not in gpu


def test_claims_reading_reads_a_finished_run_whole_when_healthy_and_on_its_healthy_fraction_otherwise(
    tmp_path, monkeypatch
):
    """Planted runs: a finished healthy one (4 of 128 dead, under a 5 % bar), a finished unhealthy one (115 of 128,
    as the authors' recipe on textures mid-course), one still training, one not measured yet, and one whose health
    was measured on earlier weights."""
    import json

    from sdrlib import checkpoints

    def run(name, step, dead=None, sha=None):
        (tmp_path / name).mkdir()
        cfg = {"format": checkpoints.FORMAT, "train": {"steps": 100}, "step": step,
               "sha256": {checkpoints.WEIGHTS: f"{name}-final"}}  # fmt: skip
        (tmp_path / name / "config.json").write_text(json.dumps(cfg))
        if dead is not None:
            h = {"channels": 128, "dead_relative": dead, "sha256": sha or f"{name}-final"}
            (tmp_path / name / "health.json").write_text(json.dumps(h))

    monkeypatch.setenv("SDR_CHECKPOINTS", str(tmp_path))
    run("healthy", 100, 4), run("sick", 100, 115), run("training", 40, 115), run("unmeasured", 100)
    run("stale", 100, 4, sha="weights-at-step-60")  # measured mid-course, then trained on
    assert health.claims_reading("healthy", dead_bar=0.05) == 0.0
    assert health.claims_reading("sick", dead_bar=0.05) == 0.01
    assert health.claims_reading("sick", dead_bar=0.05, rel=0.02) == 0.02
    assert health.claims_reading("sick", dead_bar=0.95) == 0.0  # 115 of 128 is under a 95 % bar
    with pytest.raises(ValueError, match="still training .step 40 of 100"):
        health.claims_reading("training", dead_bar=0.05)
    with pytest.raises(ValueError, match="no health.json: measure it first"):
        health.claims_reading("unmeasured", dead_bar=0.05)
    with pytest.raises(ValueError, match="measured other weights than its final ones"):
        health.claims_reading("stale", dead_bar=0.05)
