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
