"""Named training recipes: `sdr train --recipe NAME` gives a reference's exact training config, options given beside
it override it, each recipe's results are its references' logs, and each reference's README names its recipe."""

import argparse
import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from sdrlib import checkpoints, cli, data, health, recipes
from sdrlib.references import references
from sdrlib.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]
DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def shipped(name: str) -> dict:
    """The config.json of a shipped reference."""
    return checkpoints.read_config(ROOT / "checkpoints" / name)


def reference_folders() -> list[str]:
    """Every reference of references.yaml and its extra training seeds."""
    return [n for name, info in references().items() for n in (name, *info["seeds"], *info["full_seeds"])]


@pytest.mark.parametrize(
    "argv, reference",
    [
        (["--recipe", "fashion-mnist-small-32"], "fashion-mnist-small-32"),
        (["--recipe", "textures-paper-small-64"], "textures-paper-small-64"),
        (["--recipe", "fashion-mnist-paper-32"], "fashion-mnist-paper-32"),
        (["--recipe", "fashion-mnist-small-32-short", "--seed", "1"], "fashion-mnist-small-32-seed1"),
        (["--recipe", "fashion-mnist-small-32-short", "--seed", "2"], "fashion-mnist-small-32-seed2"),
        (["--recipe", "fashion-mnist-small-32-short", "--seed", "3"], "fashion-mnist-small-32-seed3"),
    ],
)
def test_sdr_train_recipe_gives_the_references_training_config(argv, reference):
    """Every field of the TrainConfig of `sdr train --recipe NAME` is the reference's config.json's, but the run
    folder (runs/NAME)."""
    cfg, recipe = cli.train_config(["train", *argv])
    assert recipe == argv[1]
    saved = shipped(reference)["train"]
    assert set(saved) <= set(FIELDS)
    for k in FIELDS:
        if k == "out":
            assert cfg.out == f"runs/{recipe}"
            continue
        want = saved.get(k, DEFAULTS[k])
        got = getattr(cfg, k)
        assert (list(got) if isinstance(got, tuple) else got) == want, f"{reference}: {k}"


def test_options_beside_a_recipe_override_it():
    cfg, _ = cli.train_config(["train", "--recipe", "healthy", "--steps", "4000"])
    assert (cfg.steps, cfg.warmup, cfg.decay_steps) == (4000, 400, 1200)  # fractions of the run's steps
    cfg, _ = cli.train_config(["train", "--recipe", "healthy", "--ste", "4000", "--warmup", "50", "--ema", "0"])
    assert (cfg.steps, cfg.warmup, cfg.decay_steps, cfg.ema) == (4000, 50, 1200, 0.0)  # abbreviated: counted too
    ref, _ = cli.train_config(["train", "--recipe", "fashion-mnist-small-32"])
    cfg, _ = cli.train_config(["train", "--recipe", "fashion-mnist-small-32", "--lr", "1e-3", "--snapshots"])
    assert cfg.lr == 0.001
    assert cfg.snapshots == ()
    assert dataclasses.replace(cfg, lr=ref.lr, snapshots=ref.snapshots) == ref
    cfg, recipe = cli.train_config(["train", "--steps", "5", "--no-progress"])
    assert recipe is None
    assert cfg == TrainConfig(steps=5, progress=False)  # no recipe: the defaults


def test_options_override_a_recipe_in_the_library_too():
    cfg = recipes.config("healthy", steps=2000, hold_steps=500, warmup=0)
    assert (cfg.warmup, cfg.decay_steps, cfg.out) == (0, 450, "runs/healthy")  # 30 % of the steps before the hold
    assert recipes.config("healthy", decay="none").decay_steps == 0
    assert recipes.config("healthy", steps=30_000).warmup == recipes.WARMUP_CAP


def test_authors_recipe_is_the_spec():
    """SPEC 1: loss weighted by 1/sigma^2, sigma in [1, 765]/255, batch 4096, Adam 1e-3 halved every 100 of about
    1,000 epochs, the paper's small gains."""
    cfg = recipes.config("authors", steps=20_000)
    assert cfg.weighted
    assert cfg.sigma_min == pytest.approx(1 / 255)
    assert cfg.sigma_max == pytest.approx(765 / 255)
    assert (cfg.batch, cfg.lr, cfg.lr_halve_every, cfg.gain_init) == (4096, 1e-3, 2000, "paper")
    assert not recipes.results("authors")


@pytest.mark.parametrize("reference", ["fashion-mnist-small-32", "textures-paper-small-64"])
def test_authors_recipe_at_a_references_budget_sees_the_same_images(reference):
    """#24 item 3: the authors' recipe at equal budget keeps the reference's network, data, batch and steps (the same
    images seen), and takes every training choice of the authors' (gains, loss weighting, noise range, schedule)."""
    ours, theirs = recipes.config(reference), recipes.config(f"{reference}-authors")
    kept = ("preset", "data", "size", "crop", "hflip", "holdout_every", "batch", "steps", "snapshots", "n_eval")
    assert {k: getattr(theirs, k) for k in kept} == {k: getattr(ours, k) for k in kept}
    assert theirs.data_load_kwargs() == ours.data_load_kwargs()
    authors = recipes.config("authors", steps=ours.steps, batch=ours.batch)
    taken = ("weighted", "sigma_min", "sigma_max", "lr", "lr_halve_every", "gain_init", "ema", "warmup", "decay")
    assert {k: getattr(theirs, k) for k in taken} == {k: getattr(authors, k) for k in taken}
    assert [k for k in taken if getattr(theirs, k) == getattr(ours, k)] == []  # each is a choice of the recipe


def test_unknown_recipe_and_a_recipe_on_resume_are_one_line_errors(capsys):
    assert cli.main(["train", "--recipe", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sdr train: error: unknown recipe 'nope'")
    assert "'healthy'" in err
    assert "\n" not in err
    assert cli.main(["train", "--recipe", "healthy", "--resume", "--out", "runs/x"]) == 2
    assert "--resume continues runs/x with its saved config" in capsys.readouterr().err


@pytest.mark.parametrize("name", recipes.names())
def test_results_are_the_references_logs(name):
    """Each result is the last held-out evaluation at sigma 0.1 in its reference's log (EMA when kept), at the
    step, seed and recipe it says."""
    for r in recipes.get(name).results:
        log = checkpoints.read_log(ROOT / "checkpoints" / r.reference)
        key = "eval_ema" if r.weights == "ema" else "eval"
        last = [e for e in log if key in e][-1]
        assert last["step"] == r.step
        assert not (r.weights == "raw" and any("eval_ema" in e for e in log))
        psnr = next(row["psnr_denoised"] for row in last[key] if row["sigma"] == 0.1)
        assert psnr == pytest.approx(r.psnr, abs=0.005), r
        config = shipped(r.reference)
        assert config["train"]["seed"] == r.seed
        assert recipes.match(config["train"])[0] == name
    assert set(recipes.get(name).results) <= set(recipes.results(name))


def test_results_of_a_recipe_include_those_built_on_it():
    got = [r.reference for r in recipes.results("healthy")]
    assert {"fashion-mnist-small-32", "textures-paper-small-64", "fashion-mnist-small-32-seed1"} <= set(got)
    assert [r.reference for r in recipes.results("fashion-mnist-small-32")] == ["fashion-mnist-small-32"]


@pytest.mark.parametrize("name", reference_folders())
def test_each_reference_names_its_recipe(name):
    """references.yaml's every reference follows a named recipe, and its README (sdr info NAME --readme) names it."""
    config = shipped(name)
    assert recipes.match(config["train"]) is not None, name
    readme = ROOT / "checkpoints" / name / "README.md"
    if readme.is_file():
        assert f"- named recipe: {recipes.describe(config)}" in readme.read_text(), (
            f"{readme} is stale: sdr info {name} --readme"
        )


def test_a_run_records_its_recipe_and_keeps_it_on_resume(tmp_path):
    """config.json gains `recipe` when trained with --recipe (and keeps it on resume); without, it has none."""
    tiny = ["--preset", "tiny", "--data", "digits", "--batch", "8", "--max-train", "64", "--n-eval", "8"]
    tiny += ["--eval-sigmas", "0.2", "--threads", "1", "--no-progress"]
    out = tmp_path / "r"
    assert cli.main(["train", "--recipe", "healthy", *tiny, "--steps", "4", "--out", str(out)]) == 0
    config = checkpoints.read_config(out)
    assert config["recipe"] == "healthy"
    assert config["train"]["warmup"] == 0
    assert config["train"]["decay_steps"] == 1
    assert recipes.describe(config).startswith("`healthy`, with the other options")
    assert cli.main(["train", "--out", str(out), "--resume", "--steps", "6", "--decay-steps", "2"]) == 0
    assert checkpoints.read_config(out)["recipe"] == "healthy"
    plain = tmp_path / "plain"
    assert cli.main(["train", *tiny, "--steps", "2", "--out", str(plain)]) == 0
    assert "recipe" not in checkpoints.read_config(plain)


def _health_study():
    spec = importlib.util.spec_from_file_location("health_study", ROOT / "scripts" / "health_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("stage", ["screen", "budget"])
def test_health_study_arms_are_the_configs_it_recorded(stage):
    """The study's arms, built from sdrlib.recipes, are the configs its runs recorded (book/health/STAGE.json)."""
    study = _health_study()
    recorded = json.loads((ROOT / "book" / "health" / f"{stage}.json").read_text())["arms"]
    assert list(recorded) == list(study.STAGES[stage]["arms"])
    for arm, r in recorded.items():
        cfg = study.arm_config(stage, arm, Path("runs/health"), r["config"]["steps"]).to_dict()
        assert {k: cfg[k] for k in r["config"]} == r["config"], arm


@pytest.mark.parametrize("stage", ["screen", "budget"])
def test_health_study_val_stages_differ_from_the_first_study_only_in_the_split(stage, monkeypatch):
    """An arm of a -val stage is its first-study twin (same recipe, steps included) with a validation band."""
    study = _health_study()
    monkeypatch.chdir(ROOT)  # the recorded steps are read from book/health/
    recorded = json.loads((ROOT / "book" / "health" / f"{stage}.json").read_text())["arms"]
    assert list(study.STAGES[f"{stage}-val"]["arms"]) == list(recorded)
    for arm, r in recorded.items():
        steps = study.steps_for(f"{stage}-val", arm, Path("runs/health"))
        assert steps == r["config"]["steps"], arm
        first = study.arm_config(stage, arm, Path("runs/health"), steps).to_dict()
        val = study.arm_config(f"{stage}-val", arm, Path("runs/health"), steps).to_dict()
        assert {k for k in first if first[k] != val[k]} == {"val", "out"}, arm
        assert val["val"] == study.VAL > 0


def test_health_study_choice_reads_only_training_side_rows(tmp_path, monkeypatch):
    """No choice reads the test split: an arm that keeps a validation split never trains on it and logs its PSNR on
    it, and the report that the study's choice reads measures it with queries from that split only (none from the
    test split) against a base of its own training images."""
    study = _health_study()
    out = tmp_path / "arm"
    tiny = ["--preset", "tiny", "--data", "shapes", "--size", "16", "--val", "0.25", "--batch", "8", "--n-eval", "8"]
    tiny += ["--eval-sigmas", "0.2", "--threads", "1", "--no-progress", "--steps", "2", "--snapshot-every", "2"]
    assert cli.main(["train", *tiny, "--out", str(out)]) == 0
    config = checkpoints.read_config(out)
    assert config["eval_split"] == "val" and set(config["data_fingerprint"]) == {"train", "val", "test"}
    kw = checkpoints.training_data_kwargs(config)
    assert kw == {"size": 16, "val": 0.25}
    rows = {s: {x.numpy().tobytes() for x in data.load("shapes", s, **kw).images} for s in ("train", "val", "test")}
    assert len(rows["val"]) == 1500 and not rows["val"] & rows["train"] and not rows["val"] & rows["test"]
    read: list[tuple[torch.Tensor, torch.Tensor]] = []
    measured = health.middle_health

    def spy(model, base, base_labels, query, query_labels, **kwargs):
        read.append((base, query))
        return measured(model, base, base_labels, query, query_labels, **kwargs)

    monkeypatch.setattr(study.health, "middle_health", spy)
    report = study.report_run(out, argparse.Namespace(n_base=40, n_query=30, n_noise=1))
    assert len(read) == 2  # the untrained network and the one snapshot
    for base, query in read:
        assert {x.numpy().tobytes() for x in query} <= rows["val"]
        assert {x.numpy().tobytes() for x in base} <= rows["train"]
    assert report["query_split"] == "val"
    assert health.pick_arm({"arm": report}, dead_bar=1.0) == "arm"
    with pytest.raises(ValueError, match="validation"):
        health.pick_arm({"arm": report, "first study": {**report, "query_split": "test"}}, dead_bar=1.0)
