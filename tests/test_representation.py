"""phi (SPEC section 2) and the analyses of SPEC section 3 on inputs with known answers."""

import pytest
import torch

from sdrlib import analysis, feature_cache, representation, sparsity
from sdrlib.unet import build


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build("tiny").eval()


def test_phi_clean_is_the_spatial_mean_of_the_block(model):
    x = torch.rand(5, 1, 16, 16)
    p = representation.phi(model, x, sigma=0.0)
    _, blocks = model.blocks(x)
    torch.testing.assert_close(p, blocks["mid"].mean(dim=(2, 3)))
    assert (p >= 0).all() and p.shape == (5, 16)
    every = representation.phi_blocks(model, x, 0.0, blocks=model.block_names)
    for b in model.block_names:
        torch.testing.assert_close(every[b], blocks[b].mean(dim=(2, 3)))


def test_phi_noisy_is_the_average_over_draws(model):
    x = torch.rand(3, 1, 16, 16)
    p = representation.phi(model, x, sigma=0.3, n_noise=4, seed=5, batch=2)
    z = representation.noise_for(torch.arange(3), x.shape[1:], 4, seed=5)  # (draws, N, C, H, W)
    ref = torch.stack([model.encode(x + 0.3 * z[d]).mean(dim=(2, 3)) for d in range(4)]).mean(0)
    torch.testing.assert_close(p, ref)
    assert (p >= 0).all()


def test_any_subset_of_phi_can_be_recomputed(model):
    """An image's noise draws depend only on its index: a subset, recomputed alone, gives the same rows."""
    x = torch.rand(10, 1, 16, 16)
    full = representation.phi(model, x, 0.4, 3, seed=2, batch=4)
    rows = torch.tensor([7, 2, 9])
    part = representation.phi_blocks(model, x[rows], 0.4, 3, ("mid",), seed=2, index=rows)["mid"]
    torch.testing.assert_close(part, full[rows])


def test_phi_average_converges_as_n_grows(model):
    """The estimate's spread over seeds shrinks like 1/sqrt(n)."""
    x = torch.rand(4, 1, 16, 16)

    def spread(n):
        est = torch.stack([representation.phi(model, x, 0.5, n, seed=s) for s in range(12)])
        return est.std(0).mean().item()

    s1, s16 = spread(1), spread(16)
    assert s16 < s1 / 2.5  # ideal ratio is 4


def test_phi_is_seeded_and_grid_shapes(model):
    x = torch.rand(3, 1, 16, 16)
    a = representation.phi_grid(model, x, [0.0, 0.1, 0.5], n_noise=2, blocks=("mid", "enc1"), seed=3)
    b = representation.phi_grid(model, x, [0.0, 0.1, 0.5], n_noise=2, blocks=("mid", "enc1"), seed=3)
    assert a["mid"].shape == (3, 3, 16) and a["enc1"].shape == (3, 3, 8)
    assert torch.equal(a["mid"], b["mid"])
    with pytest.raises(ValueError, match="unknown block"):
        representation.phi(model, x, block="mid2")
    with pytest.raises(ValueError, match="sigma"):
        representation.phi(model, x, sigma=-1)


def test_baseline_features():
    x = torch.rand(2, 3, 8, 8)
    c = representation.colour_stats(x)
    torch.testing.assert_close(c[:, :3], x.mean(dim=(2, 3)))
    torch.testing.assert_close(c[:, 3:], x.std(dim=(2, 3)))
    assert representation.pixels(x).shape == (2, 192)


def test_cache_round_trip(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"phi": torch.arange(6.0).view(2, 3)}

    k = feature_cache.cache_key("abc", "fashion-mnist", sigma=0.1, n=2)
    a = feature_cache.cached(k, compute, tmp_path)
    b = feature_cache.cached(k, compute, tmp_path)
    assert torch.equal(a["phi"], b["phi"]) and len(calls) == 1
    assert k != feature_cache.cache_key("abc", "fashion-mnist", sigma=0.2, n=2)


# ------------------------------------------------------------------ analyses with known answers


def clustered(n_per=20, n_cls=3, dim=6, spread=0.01, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(dim)[:n_cls] * 5
    labels = torch.arange(n_cls).repeat_interleave(n_per)
    return centres[labels] + spread * torch.randn(len(labels), dim, generator=g), labels


def test_sparsity_on_hand_built_phi():
    phi = torch.tensor([[1.0, 0.0, 0.05, 0.0], [0.5, 2.0, 0.00, 0.0], [0.0, 1.0, 1.00, 0.0]])
    m = sparsity.active_mask(phi, tau=0.1)
    assert m.tolist() == [[True, False, False, False], [True, True, False, False], [False, True, True, False]]
    assert sparsity.dead_channels(phi).tolist() == [False, False, False, True]
    torch.testing.assert_close(sparsity.active_fraction(phi, 0.1), torch.tensor([1 / 3, 2 / 3, 2 / 3]))
    torch.testing.assert_close(sparsity.channel_frequency(phi, 0.1), torch.tensor([2 / 3, 2 / 3, 1 / 3, 0.0]))
    split = sparsity.selectivity_split(sparsity.channel_frequency(phi, 0.1), sparsity.dead_channels(phi), 0.5, 0.9)
    assert split["selective"].tolist() == [False, False, True, False] and split["dead"][3]


def test_jaccard_within_across():
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 1, 1, 1]], dtype=torch.bool)
    labels = torch.tensor([0, 0, 1, 1])
    o = sparsity.overlap_within_across(mask, labels)
    assert o["within"] == pytest.approx((1 + 1 + 2 / 3 + 2 / 3) / 4)
    assert o["across"] == pytest.approx((0 + 1 / 4 + 0 + 1 / 4) * 2 / 8)


def test_knn_on_clusters_and_on_noise():
    f, y = clustered()
    s = analysis.knn_scores(f, y, k=5)
    assert s["agreement"] == 1.0 and s["accuracy"] == 1.0
    g = torch.Generator().manual_seed(1)
    r = analysis.knn_scores(torch.randn(600, 4, generator=g), torch.randint(0, 3, (600,), generator=g), k=10)
    assert abs(r["agreement"] - 1 / 3) < 0.05  # chance level for 3 balanced classes
    with pytest.raises(ValueError, match="k must be"):
        analysis.knn_scores(f, y, k=len(y))


def test_kmeans_perfect_clusters_give_nmi_1():
    f, y = clustered()
    s = analysis.kmeans_scores(f, y, restarts=3)
    assert s == {"nmi": pytest.approx(1.0), "ari": pytest.approx(1.0), "purity": pytest.approx(1.0)}


def test_linear_probe_separable_and_chance():
    f, y = clustered(spread=0.5)
    ft, yt = clustered(spread=0.5, seed=1)
    assert analysis.linear_probe(f, y, ft, yt, epochs=100)["test_accuracy"] == 1.0
    g = torch.Generator().manual_seed(0)
    noise = analysis.linear_probe(
        torch.randn(300, 5, generator=g),
        torch.randint(0, 2, (300,), generator=g),
        torch.randn(300, 5, generator=g),
        torch.randint(0, 2, (300,), generator=g),
    )
    assert abs(noise["test_accuracy"] - 0.5) < 0.1


def test_features_include_controls_and_baselines(model):
    x = torch.rand(6, 1, 16, 16)
    control = representation.untrained_like(model, seed=1)
    f = representation.features(model, x, 0.2, 2, blocks=("mid",), control=control)
    assert list(f) == ["phi mid", "untrained phi mid", "pixels", "colour stats"]
    torch.testing.assert_close(f["phi mid"], representation.phi(model, x, 0.2, 2, seed=0))
    assert not torch.equal(f["phi mid"], f["untrained phi mid"])
    assert control.cfg == model.cfg


def test_sparsity_summary_counts():
    phi = torch.zeros(10, 4)
    phi[:, 0] = 1.0  # non-selective: active everywhere
    phi[0, 1] = 1.0  # selective: active for one image in ten
    phi[:5, 2] = 1.0  # intermediate
    s = sparsity.sparsity_summary(phi)
    assert (s["dead"], s["selective"], s["non_selective"], s["intermediate"]) == (1, 1, 1, 1)
    assert s["active_frac_median"] == pytest.approx(0.5)  # five images at 1/3, four at 2/3, one at 1


def test_compare_ranks_a_clustered_feature_above_noise():
    f, y = clustered(n_per=30, spread=1.0)
    ft, yt = clustered(n_per=30, spread=1.0, seed=1)
    g = torch.Generator().manual_seed(0)
    rows = analysis.compare(
        {"good": f, "noise": torch.randn(f.shape, generator=g)},
        y,
        {"good": ft, "noise": torch.randn(ft.shape, generator=g)},
        yt,
        k=5,
        kmeans_restarts=2,
        probe_epochs=50,
    )
    good, noise = rows
    assert good["knn_agreement"] > 0.9 and good["nmi"] > 0.8 and good["probe_accuracy"] > 0.9
    assert noise["knn_agreement"] < 0.5 and noise["nmi"] < 0.2


def test_checkpoint_features_share_one_control_across_image_sets(tmp_path, monkeypatch):
    from sdrlib import checkpoints

    monkeypatch.setenv("SDR_CACHE", str(tmp_path))
    torch.manual_seed(0)
    path = checkpoints.save(tmp_path / "ck", build("tiny"), {"train": {"data": "fashion-mnist", "size": None}})
    a, ia = feature_cache.checkpoint_features(path, "test", 8, 0.0, 1, blocks=["mid"], seed=0)
    b, ib = feature_cache.checkpoint_features(path, "test", 8, 0.0, 1, blocks=["mid"], seed=1)
    ctrl = representation.untrained_like(checkpoints.load_model(path), 0)
    torch.testing.assert_close(a["untrained phi mid"], representation.phi(ctrl, ia.images, 0.0))
    torch.testing.assert_close(b["untrained phi mid"], representation.phi(ctrl, ib.images, 0.0))
    again, _ = feature_cache.checkpoint_features(path, "test", 8, 0.0, 1, blocks=["mid"], seed=0)  # from the cache
    assert torch.equal(again["phi mid"], a["phi mid"])


def test_control_phi_seed_0_is_the_features_control_and_seeds_differ(tmp_path, monkeypatch):
    """control_phi reads the same images and noise as checkpoint_features: its seed-0 network is the features'
    untrained control, and another seed is another network."""
    from sdrlib import checkpoints

    monkeypatch.setenv("SDR_CACHE", str(tmp_path))
    torch.manual_seed(0)
    path = checkpoints.save(tmp_path / "ck", build("tiny"), {"train": {"data": "fashion-mnist", "size": None}})
    f, _ = feature_cache.checkpoint_features(path, "test", 8, 0.1, 2, blocks=["mid"], seed=3)
    c0, c1 = feature_cache.control_phi(path, [0, 1], "test", 8, 0.1, 2, seed=3)
    torch.testing.assert_close(c0, f["untrained phi mid"])
    assert not torch.allclose(c0, c1)
    with pytest.raises(ValueError, match="block 'nope'"):
        feature_cache.control_phi(path, [0], "test", 8, block="nope")


def test_sample_distances_known_answers():
    a = torch.zeros(2, 1, 2, 2)
    b = torch.stack([torch.full((1, 2, 2), 0.5), torch.full((1, 2, 2), 1.0), torch.zeros(1, 2, 2)])
    d, i = analysis.nearest_image(a + 0.1, b, chunk=2)
    torch.testing.assert_close(d, torch.tensor([0.1, 0.1], dtype=torch.float64))
    assert i.tolist() == [2, 2]
    torch.testing.assert_close(analysis.rms_distance(a, b)[0], torch.tensor([0.5, 1.0, 0.0], dtype=torch.float64))
    assert analysis.mean_pairwise(b) == pytest.approx((0.5 + 0.5 + 1.0) * 2 / 6)
    assert analysis.energy_distance(b, b) == pytest.approx(0.0, abs=1e-12)
    assert analysis.energy_distance(a, b) > 0
