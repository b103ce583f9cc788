"""Chapter 4's sample sets: drawn once, cached with their parameters, re-read identically; the no-copy floor."""

import pytest
import torch

from sdrlib import checkpoints, sample_runs
from sdrlib.train import TrainConfig, train


@pytest.fixture(scope="module")
def tiny_ck(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "run"
    train(
        TrainConfig(
            preset="tiny",
            data="fashion-mnist",
            batch=8,
            steps=3,
            max_train=200,
            n_eval=8,
            eval_every=3,
            progress=False,
            out=str(out),
        )
    )
    return checkpoints.load(out)


def test_guided_samples_are_cached_and_reread(tiny_ck, tmp_path, monkeypatch):
    monkeypatch.setenv("SDR_CACHE", str(tmp_path))
    rows = torch.tensor([3, 11])
    a = sample_runs.guided(tiny_ck, rows, 2, [1.0, 0.3, 0.05], max_iter=3, n_noise_target=1)
    assert a["samples"].shape == (4, 1, 32, 32) and a["loss_before"].shape == (3, 4) and a["sigma"].shape == (3, 4)
    assert (a["loss_after"] <= a["loss_before"]).all() and a["seconds_per_sample"].item() > 0
    b = sample_runs.guided(tiny_ck, rows, 2, [1.0, 0.3, 0.05], max_iter=3, n_noise_target=1)
    assert torch.equal(a["samples"], b["samples"]) and torch.equal(a["seconds_per_sample"], b["seconds_per_sample"])
    c = sample_runs.guided(tiny_ck, torch.tensor([3, 12]), 2, [1.0, 0.3, 0.05], max_iter=3, n_noise_target=1)
    assert not torch.equal(a["samples"], c["samples"])  # other targets: another entry of the cache


def test_unconditional_and_adaptive_shapes(tiny_ck, tmp_path, monkeypatch):
    monkeypatch.setenv("SDR_CACHE", str(tmp_path))
    asc = {"h0": 0.2, "beta": 0.5, "sigma0": 1.0, "sigma_L": 0.3, "max_iter": 5}
    u = sample_runs.unconditional(tiny_ck, 3, asc)
    assert u["samples"].shape == (3, 1, 32, 32) and u["iterations"].max() <= 5
    ad = sample_runs.adaptive(tiny_ck, torch.tensor([0]), 2, {**asc, "match_iter": 2}, n_noise_target=1)
    assert ad["samples"].shape == (2, 1, 32, 32)


def test_no_copy_floor_known_values():
    train = torch.zeros(3, 1, 4, 4)
    train[1] += 1.0
    s = torch.stack([train[1], torch.full((1, 4, 4), 0.5)])
    r = sample_runs.no_copy(s, train, torch.full((2, 1, 4, 4), 0.25))
    assert r["samples"].tolist() == [0.0, 0.5] and r["nearest"].tolist()[0] == 1
    assert r["held_out"].tolist() == [0.25, 0.25]


def test_no_copy_class_floor_is_the_median_of_its_own_class():
    train = torch.zeros(2, 1, 4, 4)
    train[1] += 1.0
    held = torch.stack([torch.full((1, 4, 4), v) for v in (0.1, 0.2, 0.3, 0.6, 0.8)])  # class 0: 0.1-0.3; 1: 0.4, 0.2
    labels = torch.tensor([0, 0, 0, 1, 1])
    s = torch.stack([torch.full((1, 4, 4), 0.05), torch.full((1, 4, 4), 0.9)])
    r = sample_runs.no_copy(s, train, held, torch.tensor([0, 1]), labels)
    assert torch.allclose(r["held_out"], torch.tensor([0.1, 0.2, 0.3, 0.4, 0.2], dtype=torch.float64))
    # torch's median of an even count is the lower middle value: class 1 -> 0.2
    assert torch.allclose(r["class_floor"], torch.tensor([0.2, 0.2], dtype=torch.float64))
    assert torch.allclose(r["ratio"], torch.tensor([0.25, 0.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="class 2"):
        sample_runs.no_copy(s, train, held, torch.tensor([0, 2]), labels)


def test_floor_rows_draw_the_targets_classes_without_the_targets():
    labels = torch.tensor([0, 1, 0, 2, 0, 1, 0, 2])
    r = sample_runs.floor_rows(labels, torch.tensor([0, 5]), 2, seed=0)
    assert len(r) == 3 and set(labels[r].tolist()) == {0, 1}
    assert 0 not in r.tolist() and 5 not in r.tolist() and r.tolist() == sorted(r.tolist())
    assert (labels[r] == 0).sum() == 2 and r[labels[r] == 1].tolist() == [1]


# ------------------------------------------------------------------ claim 5's control guides


def _todays_guided_params(ck, rows, n_per, schedule, lr, max_iter, n_noise_target, seed) -> dict:
    """The parameters ``guided`` cached its runs under before control guides existed (written out by hand)."""
    return {
        "kind": "samples-guided",
        "checkpoint": ck.sha256,
        "weights": ck.weights,
        "rows": rows.tolist(),
        "n_per": n_per,
        "schedule": [float(s) for s in schedule],
        "lr": lr,
        "max_iter": max_iter,
        "n_noise_target": n_noise_target,
        "seed": seed,
    }


def test_the_default_guide_keeps_the_cache_key_of_todays_runs(tiny_ck):
    from sdrlib import feature_cache

    rows, sched = torch.tensor([3, 11]), [1.0, 0.3, 0.05]
    data = tiny_ck.config["train"]["data"]
    old = feature_cache.cache_key(tiny_ck.sha256, data, **_todays_guided_params(tiny_ck, rows, 2, sched, 0.01, 3, 1, 0))
    for guide_kw in ({}, {"guide": "phi"}, {"guide": "phi", "control_seed": 5, "pca_images": 7}):
        p = sample_runs.guided_params(tiny_ck, rows, 2, sched, 0.01, 3, 1, 0, **guide_kw)
        assert feature_cache.cache_key(tiny_ck.sha256, data, **p) == old
    keys = {
        feature_cache.cache_key(tiny_ck.sha256, data, **sample_runs.guided_params(tiny_ck, rows, 2, sched, **kw))
        for kw in ({}, {"guide": "untrained phi"}, {"guide": "untrained phi", "control_seed": 1},
                   {"guide": "pixel pca"}, {"guide": "pixel pca", "pca_images": 100})
    }  # fmt: skip
    assert len(keys) == 5  # every control guide (and its settings) has its own entry
    with pytest.raises(ValueError, match="unknown guide"):
        sample_runs.guided_params(tiny_ck, rows, 2, sched, guide="pixels")


def test_committed_guided_runs_keep_their_keys():
    """Every guided run cached beside a reference is found again under the parameters of its call: a default call
    for the phi-guided runs cached before control guides existed, the guide's settings for a control guide's."""
    import json
    from pathlib import Path
    from types import SimpleNamespace

    from sdrlib import feature_cache

    found = 0
    for f in sorted(Path("checkpoints").glob("*/features/*.safetensors")):
        meta = feature_cache.cache_meta(f)
        if meta.get("kind") != "samples-guided":
            continue
        config = json.loads((f.parent.parent / "config.json").read_text())
        ck = SimpleNamespace(sha256=meta["checkpoint"], weights=meta["weights"], config=config)
        guide = {k: meta[k] for k in ("guide", "control_seed", "pca_images", "channels", "pca_k") if k in meta}
        p = sample_runs.guided_params(
            ck, torch.tensor(meta["rows"]), meta["n_per"], meta["schedule"], meta["lr"], meta["max_iter"],
            meta["n_noise_target"], meta["seed"], **guide,
        )  # fmt: skip
        assert p == meta, f
        assert feature_cache.cache_key(ck.sha256, config["train"]["data"], **p) == f.stem, f
        found += 1
    assert found > 0


def test_control_guides_draw_their_own_seeded_samples(tiny_ck, tmp_path, monkeypatch):
    """Each control guide lowers the loss of what it matches and differs from the phi guide; the same seeds draw
    the same samples again (recomputed in a fresh cache)."""
    rows, sched, kw = torch.tensor([3, 11]), [1.0, 0.05], dict(max_iter=3, n_noise_target=1, pca_images=100)
    monkeypatch.setenv("SDR_CACHE", str(tmp_path / "a"))
    runs = {g: sample_runs.guided(tiny_ck, rows, 1, sched, guide=g, **kw) for g in sample_runs.GUIDES}
    for g in ("untrained phi", "pixel pca"):
        r = runs[g]
        assert r["samples"].shape == (2, 1, 32, 32) and r["loss_before"].shape == (2, 2)
        assert (r["loss_after"] <= r["loss_before"]).all() and (r["loss_after"] < r["loss_before"]).any()
        assert not torch.equal(r["samples"], runs["phi"]["samples"])
    monkeypatch.setenv("SDR_CACHE", str(tmp_path / "b"))
    again = sample_runs.guided(tiny_ck, rows, 1, sched, guide="untrained phi", **kw)
    assert torch.equal(again["samples"], runs["untrained phi"]["samples"])


def test_guide_for_gives_each_guide_its_statistic(tiny_ck):
    from sdrlib import matching

    images = sample_runs.target_images(tiny_ck, torch.tensor([0, 1]))
    mid = tiny_ck.model.cfg.mid_width
    t, fn = sample_runs.guide_for(tiny_ck, images, 3, "phi", n_noise_target=1)
    assert fn is None and t.table.shape == (len(sample_runs.TARGET_SIGMAS), 6, mid)
    t, fn = sample_runs.guide_for(tiny_ck, images, 3, "untrained phi", n_noise_target=1)
    assert t.table.shape == (len(sample_runs.TARGET_SIGMAS), 6, mid)
    torch.testing.assert_close(fn(tiny_ck.model, images, "mid"), matching.phi_one_pass(
        sample_runs.representation.untrained_like(tiny_ck.model, 0), images))  # fmt: skip
    t, pca = sample_runs.guide_for(tiny_ck, images, 3, "pixel pca", pca_images=100)
    assert len(pca) == mid and t.table.shape == (len(sample_runs.TARGET_SIGMAS), 6, mid)
    torch.testing.assert_close(t(torch.zeros(6)), pca.coefficients(images).repeat_interleave(3, 0))
    assert len(sample_runs.pixel_pca(tiny_ck, pca_images=10)) == 9  # clamped to the rank of 10 centred images
    with pytest.raises(ValueError, match="unknown guide"):
        sample_runs.guide_for(tiny_ck, images, 1, "pixels")


def test_claims_5_and_6_take_thirty_targets_spread_over_the_classes():
    """sample_runs.target_rows (the targets of scripts/reconstruction_samples.py and of chapter 4) takes 30 held-out
    targets: three from each Fashion-MNIST class, one from each of 30 texture photographs; and asked for 10, one per
    class among the same (the rows chapter 4 shows figures on)."""
    for name, per_class in (("fashion-mnist-small-32", 3), ("textures-paper-small-64", 1)):
        ck = checkpoints.load(name)
        rows = sample_runs.target_rows(ck, 30, seed=0)
        labels = checkpoints.load_data(ck, "test").labels[rows]
        assert len(rows) == 30
        assert set(torch.bincount(labels)[labels.unique()].tolist()) == {per_class}
        ten = sample_runs.target_rows(ck, 10, seed=0)
        assert len(ten) == 10
        assert set(ten.tolist()) <= set(rows.tolist())
        assert len(checkpoints.load_data(ck, "test").labels[ten].unique()) == 10


# ------------------------------------------------------------------ a run read on its healthy fraction (#24)

DEAD = [0, 3, 4, 9, 12]  # planted: middle channels whose last layer's norm outputs zero, so phi is exactly 0 there


@pytest.fixture(scope="module")
def sick_ck(tiny_ck):
    """tiny_ck with planted dead middle channels: the last middle convolution's weights and bias zeroed on ``DEAD``
    (the scale norm keeps a zero channel at zero, the ReLU too)."""
    import copy

    ck = copy.deepcopy(tiny_ck)
    with torch.no_grad():
        for p in ck.model.mid[-1][0].parameters():
            p[DEAD] = 0.0
    return ck


def test_live_channels_find_the_planted_dead_ones(sick_ck, tmp_path, monkeypatch):
    monkeypatch.setenv("SDR_CACHE", str(tmp_path))
    assert sample_runs.live_channels(sick_ck, 0.0) is None  # every channel
    live = sample_runs.live_channels(sick_ck, 0.01)
    assert live.shape == (sick_ck.model.cfg.mid_width,) and not live[DEAD].any()
    healthy = sample_runs.live_channels(sick_ck, 0.01, control_seed=0)  # its untrained twin has its own channels
    assert healthy[DEAD].all()
    with pytest.raises(ValueError, match="live must be >= 0"):
        sample_runs.live_channels(sick_ck, -0.1)


def test_a_healthy_fraction_reading_restricts_every_guide(sick_ck, tmp_path, monkeypatch):
    """Known answer: on the planted sick network the phi guide matches exactly its live channels, and the pixel-PCA
    control gets as many coefficients as there are, never more dimensions than the phi it faces; with live 0, or on
    a network whose channels are all live, nothing changes (the same cache keys)."""
    monkeypatch.setenv("SDR_CACHE", str(tmp_path))
    live = sample_runs.live_channels(sick_ck, 0.01)
    channels, k = sample_runs.guide_restriction(sick_ck, "phi", 0.01)
    assert k is None and channels == live.nonzero().squeeze(1).tolist() and not set(channels) & set(DEAD)
    assert sample_runs.guide_restriction(sick_ck, "pixel pca", 0.01) == (None, int(live.sum()))
    assert sample_runs.guide_restriction(sick_ck, "phi", 0.0) == (None, None)
    untrained = sample_runs.live_channels(sick_ck, 0.01, control_seed=1)
    got = sample_runs.guide_restriction(sick_ck, "untrained phi", 0.01, control_seed=1)
    assert got == ((None, None) if untrained.all() else (untrained.nonzero().squeeze(1).tolist(), None))
    images = sample_runs.target_images(sick_ck, torch.tensor([0, 1]))
    t, _ = sample_runs.guide_for(sick_ck, images, 2, "phi", n_noise_target=1, channels=channels)
    assert t.mask.tolist() == live.float().tolist()
    t, pca = sample_runs.guide_for(sick_ck, images, 2, "pixel pca", pca_images=100, pca_k=int(live.sum()))
    assert len(pca) == int(live.sum()) and t.table.shape[-1] == int(live.sum())
    rows, sched, kw = torch.tensor([3, 11]), [1.0, 0.05], dict(max_iter=2, n_noise_target=1, pca_images=100)
    run = sample_runs.guided(sick_ck, rows, 1, sched, guide="pixel pca", live=0.01, **kw)
    whole = sample_runs.guided(sick_ck, rows, 1, sched, guide="pixel pca", **kw)
    assert not torch.equal(run["samples"], whole["samples"])  # fewer coefficients matched: other samples
    p = sample_runs.guided_params(sick_ck, rows, 1, sched, guide="pixel pca", pca_k=int(live.sum()), **{
        k: v for k, v in kw.items() if k == "pca_images"})  # fmt: skip
    assert p["pca_k"] == int(live.sum()) and "channels" not in p
    assert "pca_k" not in sample_runs.guided_params(sick_ck, rows, 1, sched, guide="phi", pca_k=3)


def test_control_guided_draws_each_control_guide_once(tiny_ck, tmp_path, monkeypatch):
    """Claim 5's controls of one network: one untrained-phi run per control seed and one pixel-PCA run, the very runs
    ``guided`` gives with the same settings; a network's live masks are its own and its untrained twins'."""
    monkeypatch.setenv("SDR_CACHE", str(tmp_path))
    rows, sched = torch.tensor([3, 11]), [1.0, 0.05]
    runs = sample_runs.control_guided(tiny_ck, rows, 1, sched, 0.01, 2, 1, 0, [0, 4])
    assert [len(runs["untrained phi"]), len(runs["pixel pca"])] == [2, 1]
    for got, (guide, cs) in zip([*runs["untrained phi"], *runs["pixel pca"]],
                                [("untrained phi", 0), ("untrained phi", 4), ("pixel pca", 0)]):  # fmt: skip
        want = sample_runs.guided(tiny_ck, rows, 1, sched, 0.01, 2, 1, 0, guide=guide, control_seed=cs)
        assert torch.equal(got["samples"], want["samples"])
    assert not torch.equal(runs["untrained phi"][0]["samples"], runs["untrained phi"][1]["samples"])
    assert sample_runs.live_masks(tiny_ck, 0.0, [0, 4]) == (None, [None, None])
    m, ms = sample_runs.live_masks(tiny_ck, 0.01, [4])
    assert torch.equal(m, sample_runs.live_channels(tiny_ck, 0.01))
    assert torch.equal(ms[0], sample_runs.live_channels(tiny_ck, 0.01, 4))
