"""Known-answer tests of claim 4 (sdrlib.claims.distances): a planted sparse code and its dense rotated twin carry
the same class information, so both beat controls that carry none; a control that carries the classes as well as
the code does is not beaten."""

import math

import pytest
import torch

from sdrlib.claims import distances, planted


@pytest.fixture(scope="module")
def split():
    labels = planted.labels_for(800, 10, seed=0)
    code = planted.sparse_code(labels, seed=1)
    dense = planted.dense_twin(code, seed=2)
    noise = [planted.control_code(800, seed=s) for s in (10, 11, 12)]
    tr, te = torch.arange(600), torch.arange(600, 800)

    def agree(x):
        return distances.knn_agreement(x[tr], labels[tr], x[te], labels[te], k=10)

    return agree, code, dense, noise


def test_claim_4_holds_on_the_sparse_code_and_on_its_dense_twin(split):
    agree, code, dense, noise = split
    controls = {"untrained": [agree(n) for n in noise], "pixels-like": [agree(noise[0] * 2 + 1)]}
    for x in (code, dense):
        res = distances.distances_claim([agree(x)], controls, n_boot=300)
        assert res.verdict == "holds"
        assert res.n_control == 3


def test_claim_4_fails_against_a_control_as_good_as_the_code(split):
    agree, code, _, noise = split
    res = distances.distances_claim([agree(code)], {"the code itself": [agree(code)]}, n_boot=200)
    assert res.parts[0].effect.value == pytest.approx(0.0)
    assert res.verdict == "fails"  # confidently below the smallest effect that counts


def test_the_best_control_is_chosen_per_resample(split):
    agree, code, _, noise = split
    a = agree(code)
    res = distances.distances_claim([a], {"weak": [a * 0.5], "strong": [a * 0.9]}, n_boot=200)
    assert res.parts[0].effect.value == pytest.approx(0.1 * a.mean().item())


def test_controls_with_several_networks_must_match(split):
    agree, code, _, noise = split
    a = agree(code)
    with pytest.raises(ValueError, match="as many each"):
        distances.distances_claim([a], {"x": [a, a], "y": [a, a, a]})
    with pytest.raises(ValueError, match="same 200 queries"):
        distances.distances_claim([a], {"x": [a[:10]]})


# ------------------------------------------------------------------ across training seeds and along training

# six training images on a line and two held-out queries (tests/test_analysis.py works them out): with k = 3, "x"
# gives each query 2 of 3 neighbours of its label, the line read backwards (12 - x) 1 of 3
SIX = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
SIX_LABELS = torch.tensor([0, 0, 1, 1, 1, 0])
QUERIES, QUERY_LABELS = torch.tensor([[0.9], [11.2]]), torch.tensor([0, 1])


class Images:
    def __init__(self, labels):
        self.labels = labels


def six(mid_backwards: bool = False):
    mid = 12 - SIX if mid_backwards else SIX
    train = {"phi mid": mid, "untrained phi mid": 12 - SIX, "pixels": 12 - SIX, "colour stats": SIX}
    test = {key: QUERIES for key in train}
    return train, test


def test_margin_over_controls_by_hand():
    train, test = six()
    mid, margin = distances.margin_over_controls(train, SIX_LABELS, test, QUERY_LABELS, k=3)
    assert (mid, margin) == pytest.approx((2 / 3, 1 / 3))  # colour stats (as good as phi) is not a control here
    assert distances.margin_over_controls(*six(True)[:1], SIX_LABELS, six(True)[1], QUERY_LABELS, 3)[1] == 0.0
    with pytest.raises(ValueError, match="not among"):
        distances.margin_over_controls({"phi mid": SIX}, SIX_LABELS, {"phi mid": QUERIES}, QUERY_LABELS, 3)


def test_spread():
    assert distances.spread([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    mean, sd = distances.spread([1.5])
    assert mean == 1.5 and math.isnan(sd)
    with pytest.raises(ValueError, match="at least one"):
        distances.spread([])


def test_seed_margins_reads_each_runs_middle_block_features(monkeypatch):
    from sdrlib import feature_cache

    calls = []

    class Run:
        def __init__(self, step, backwards):
            self.config, self.backwards = {"step": step}, backwards

    def features(ck, split, n, sigma, n_noise, blocks=None, seed=0, cache_in="user", **kw):
        calls.append((split, n, sigma, n_noise, blocks, seed, cache_in))
        train, test = six(ck.backwards)
        return (train, Images(SIX_LABELS)) if split == "train" else (test, Images(QUERY_LABELS))

    monkeypatch.setattr(feature_cache, "checkpoint_features", features)
    runs = {"ref": Run(100, False), "seed1": Run(40, True)}
    rows = distances.seed_margins(runs, distances.Study(6, 2, 0.2, 4, k=3, seed=5, cache_in="reference"))
    assert rows == [
        {"run": "ref", "steps": 100, "phi mid": pytest.approx(2 / 3), "margin": pytest.approx(1 / 3)},
        {"run": "seed1", "steps": 40, "phi mid": pytest.approx(1 / 3), "margin": 0.0},
    ]
    # the middle block's cache of each run: train with the seed, test with seed + 1
    assert calls[:2] == [("train", 6, 0.2, 4, ["mid"], 5, "reference"), ("test", 2, 0.2, 4, ["mid"], 6, "reference")]


def test_training_curve_scores_each_snapshot(monkeypatch):
    from sdrlib import feature_cache

    calls = []

    def runs_phi(runs, split, n, sigma, n_noise, block="mid", seed=0, cache_in="user", device="cpu", control=False):
        calls.append((split, seed, cache_in))
        pick = {"train": {"a": SIX, "b": 12 - SIX}, "test": {"a": QUERIES, "b": QUERIES}}[split]
        return {step: pick[path] for step, path in runs.items()}

    monkeypatch.setattr(feature_cache, "runs_phi", runs_phi)
    study = distances.Study(6, 2, 0.2, 4, k=3, seed=2)
    curve = distances.training_curve([(10, "a"), (20, "b")], (SIX_LABELS, QUERY_LABELS), study)
    assert curve == [(10, pytest.approx(2 / 3)), (20, pytest.approx(1 / 3))]
    assert calls == [("train", 2, "user"), ("test", 3, "user")]


def test_untrained_agreements_read_each_control_on_the_studys_images(monkeypatch):
    from sdrlib import feature_cache

    calls = []

    def control_phi(ck, seeds, split, n, sigma, n_noise, block="mid", seed=0, cache_in="user"):
        calls.append((seeds, split, n, seed, cache_in))
        return [{"train": 12 - SIX, "test": QUERIES}[split]]

    monkeypatch.setattr(feature_cache, "control_phi", control_phi)
    study = distances.Study(6, 2, 0.2, 4, k=3, seed=7, cache_in="reference")
    got = distances.untrained_agreements("ck", [0, 4], (SIX_LABELS, QUERY_LABELS), study, seed0=(SIX, QUERIES))
    # seed 0 is the features' own twin (not recomputed); seed 4 on the train images (seed 7) and queries (seed 8)
    assert calls == [([4], "train", 6, 7, "reference"), ([4], "test", 2, 8, "reference")]
    assert [a.mean().item() for a in got] == [pytest.approx(2 / 3), pytest.approx(1 / 3)]


# ------------------------------------------------------------------ the healthy fraction (#24)


@pytest.fixture(scope="module")
def unhealthy():
    """A planted code with 12 live channels (2 shared, one selective per class) and 116 nearly silent ones appended:
    the middle block of an unhealthy network (the authors' recipe on textures: 115 of 128 channels dead)."""
    labels = planted.labels_for(800, 10, seed=0)
    code = planted.sparse_code(labels, n_channels=12, n_shared=2, per_class=1, p_on=0.9, seed=1)
    sick = planted.with_dead_channels(code, 116, seed=3)
    return labels, code, sick, torch.arange(600), torch.arange(600, 800)


def test_dead_channels_z_scored_drown_the_code_and_its_healthy_fraction_recovers_it(unhealthy):
    labels, code, sick, tr, te = unhealthy
    assert distances.live_columns(sick[tr], 0.01).tolist() == [True] * 12 + [False] * 116
    every = distances.knn_agreement(sick[tr], labels[tr], sick[te], labels[te], live=0.0).mean().item()
    healthy = distances.knn_agreement(sick[tr], labels[tr], sick[te], labels[te], live=0.01)
    own = distances.knn_agreement(code[tr], labels[tr], code[te], labels[te])
    assert torch.equal(healthy, own)  # exactly the code's own channels
    assert own.mean().item() > 0.85 and every < 0.5  # chance is 0.1


def test_the_healthy_fraction_of_a_healthy_code_is_the_whole_code():
    labels = planted.labels_for(400, 8, seed=4)
    dense = planted.dense_twin(planted.sparse_code(labels, seed=5), seed=6)
    tr, te = torch.arange(300), torch.arange(300, 400)
    assert bool(distances.live_columns(dense[tr], 0.01).all())
    a = distances.knn_agreement(dense[tr], labels[tr], dense[te], labels[te], live=0.01)
    assert torch.equal(a, distances.knn_agreement(dense[tr], labels[tr], dense[te], labels[te]))


def test_the_healthy_fraction_is_chosen_on_the_training_images_only(unhealthy):
    labels, code, sick, tr, te = unhealthy
    loud = sick[te].clone()
    loud[:, -1] = 100.0 * torch.rand(len(te), generator=torch.Generator().manual_seed(0))  # alive on queries only
    a = distances.knn_agreement(sick[tr], labels[tr], loud, labels[te], live=0.01)
    assert torch.equal(a, distances.knn_agreement(sick[tr], labels[tr], sick[te], labels[te], live=0.01))


def test_claim_4_on_an_unhealthy_code_fails_whole_and_holds_on_its_healthy_fraction(unhealthy):
    labels, code, sick, tr, te = unhealthy
    blurred = code + 0.3 * torch.randn(code.shape, generator=torch.Generator().manual_seed(9))  # a fixed statistic
    control = distances.knn_agreement(blurred[tr], labels[tr], blurred[te], labels[te])

    def claim(live):
        agree = distances.knn_agreement(sick[tr], labels[tr], sick[te], labels[te], live=live)
        return distances.distances_claim([agree], {"blurred code": [control]}, n_boot=300).verdict

    assert claim(0.0) == "fails"
    assert claim(0.01) == "holds"


def test_live_features_restrict_every_networks_phi_and_nothing_else(unhealthy):
    labels, code, sick, tr, te = unhealthy
    train = {"phi mid": sick[tr], "untrained phi enc1": sick[tr], "pixels": sick[tr]}
    test = {k: sick[te] for k in train}
    a, b = distances.live_features(train, test, 0.01)
    assert [v.shape[1] for v in a.values()] == [12, 12, 128]
    assert [v.shape[1] for v in b.values()] == [12, 12, 128]
    assert torch.equal(a["phi mid"], code[tr]) and torch.equal(b["phi mid"], code[te])
    assert train["phi mid"].shape[1] == 128  # the caller's dicts are left as they were


def test_a_study_with_live_reads_every_run_on_its_healthy_fraction(monkeypatch):
    from sdrlib import feature_cache

    g = torch.Generator().manual_seed(1)

    def with_dead(x):  # three columns dead by the relative rule at 0.01, varying at random
        return torch.cat([x, 1e-4 * torch.rand(len(x), 3, generator=g)], dim=1)

    def runs_phi(runs, split, n, sigma, n_noise, block="mid", seed=0, cache_in="user", device="cpu", control=False):
        return {r: with_dead(SIX if split == "train" else QUERIES) for r in runs}

    monkeypatch.setattr(feature_cache, "runs_phi", runs_phi)
    study = distances.Study(6, 2, 0.2, 4, k=3, live=0.01)
    (got,) = distances.run_agreements({"a": "a"}, (SIX_LABELS, QUERY_LABELS), study)
    assert got.tolist() == pytest.approx([2 / 3, 2 / 3])  # the line alone, as worked out above


def test_block_agreements_score_every_block_of_each_run(monkeypatch):
    from sdrlib import feature_cache

    calls = []

    class Run:
        def __init__(self, backwards):
            self.backwards = backwards

    def features(ck, split, n, sigma, n_noise, blocks=None, seed=0, control=True, cache_in="user", **kw):
        calls.append((split, n, blocks, seed, control, cache_in))
        mid = 12 - SIX if ck.backwards else SIX
        if split == "train":
            return {"phi mid": mid, "phi enc1": 12 - mid, "pixels": SIX}, Images(SIX_LABELS)
        return {"phi mid": QUERIES, "phi enc1": QUERIES, "pixels": QUERIES}, Images(QUERY_LABELS)

    monkeypatch.setattr(feature_cache, "checkpoint_features", features)
    study = distances.Study(6, 2, 0.2, 4, k=3, seed=5, cache_in="reference")
    got = distances.block_agreements({"s1": Run(False), "s2": Run(True)}, (SIX_LABELS, QUERY_LABELS), study)
    assert [sorted(g) for g in got] == [["phi enc1", "phi mid"]] * 2  # every block, no baseline
    assert [g["phi mid"].mean().item() for g in got] == [pytest.approx(2 / 3), pytest.approx(1 / 3)]
    assert [g["phi enc1"].mean().item() for g in got] == [pytest.approx(1 / 3), pytest.approx(2 / 3)]
    # every block of each run (blocks=None), without the untrained twin, on the study's images
    assert calls[:2] == [("train", 6, None, 5, False, "reference"), ("test", 2, None, 6, False, "reference")]
