"""scripts/recipe_twin.py, the one command that reads a finished twin of another recipe: it measures the twin's
health, draws its sample sets and executes chapters 1-4 on it, whole when healthy and on its healthy fraction
otherwise (``health.claims_reading``), and refuses a run that is still training or is not a twin. The steps are
recorded here, not run."""

import importlib.util
import json
from pathlib import Path

import pytest

from sdrlib import checkpoints

ROOT = Path(__file__).resolve().parent.parent


def script():
    spec = importlib.util.spec_from_file_location("recipe_twin", ROOT / "scripts" / "recipe_twin.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def planted(tmp_path, name: str, step: int, dead: int | None) -> None:
    """A run of 100 steps saved at ``step``, with ``dead`` of 128 middle channels dead by its final health."""
    (tmp_path / name).mkdir()
    cfg = {"format": checkpoints.FORMAT, "train": {"steps": 100}, "step": step,
           "sha256": {checkpoints.WEIGHTS: f"{name}-final"}}  # fmt: skip
    (tmp_path / name / "config.json").write_text(json.dumps(cfg))
    if dead is not None:
        h = {"channels": 128, "dead_relative": dead, "sha256": f"{name}-final"}
        (tmp_path / name / "health.json").write_text(json.dumps(h))


@pytest.fixture
def twin_script(tmp_path, monkeypatch):
    mod = script()
    monkeypatch.setenv("SDR_CHECKPOINTS", str(tmp_path))
    monkeypatch.setattr(mod, "ROOT", tmp_path)
    twins = {"sick": "ref", "healthy": "ref", "training": "ref"}
    monkeypatch.setattr(mod.checkpoints, "recipe_twins", lambda: twins)
    planted(tmp_path, "sick", 100, 115), planted(tmp_path, "healthy", 100, 2), planted(tmp_path, "training", 40, None)
    ran = []
    monkeypatch.setattr(mod, "step", ran.append)
    return mod, ran


def test_an_unhealthy_twin_is_read_on_its_healthy_fraction_and_a_healthy_one_whole(twin_script):
    mod, ran = twin_script
    mod.main(["sick"])
    health, samples, book = ran
    assert health[1:5] == ["scripts/health_study.py", "report", "--stage", "budget"] and health[-1] == "sick"
    assert samples[1:3] == ["scripts/reconstruction_samples.py", "sick"] and samples[-2:] == ["--live-only", "0.01"]
    assert book[1:7] == ["book", "--chapters", "01", "02", "03", "04"]
    assert book[book.index("references") + 1] == '["sick"]'
    assert book[book.index("live_only") + 1] == "0.01" and book[-3:] == ["--output-dir", "sick/chapters", "--no-build"]
    ran.clear()
    mod.main(["healthy"])
    assert "live_only" not in ran[-1] and ran[-2][-2:] == ["--live-only", "0.0"]


def test_a_run_still_training_or_not_a_twin_is_refused(twin_script):
    mod, ran = twin_script
    with pytest.raises(SystemExit, match="still training .step 40 of 100.: --wait"):
        mod.main(["training"])
    with pytest.raises(SystemExit, match="not a twin of another recipe"):
        mod.main(["ref"])
    assert ran == []
