"""The explorers of chapter 5 (sdrlib.explore): each view function computes what it shows, checked against the
library functions it stands on (the measures of sdrlib.claims, the masked sampler of sdrlib.sampling)."""

import pytest
import torch
from matplotlib.figure import Figure

from sdrlib import analysis, explore, noise, representation, sampling, sparsity, targets
from sdrlib.claims import channels, neighbours

# ------------------------------------------------------------------ noise level


def test_noise_view_psnr_is_that_of_the_returned_images(model, images):
    res, fig = explore.noise_view(model, images[3], 0.2, seed=5, n_noise=3)
    x, y, d = res["clean"][None], res["noisy"][None], res["denoised"][None]
    assert isinstance(fig, Figure)
    assert torch.equal(x, images[3:4])
    assert res["psnr_noisy"] == noise.psnr(y, x).item()
    assert res["psnr_denoised"] == noise.psnr(d, x).item()
    assert torch.equal(y, noise.add_noise(images[3:4], 0.2, torch.Generator().manual_seed(5)))
    with torch.no_grad():
        assert torch.equal(d, model(y))
    assert torch.allclose(res["phi"], representation.phi(model, images[3:4], 0.2, 3, seed=5)[0])
    assert torch.allclose(res["phi_clean"], representation.phi(model, images[3:4], 0.0)[0])


def test_noise_view_at_sigma_zero_shows_the_clean_image_as_the_noisy_one(model, images):
    res, _ = explore.noise_view(model, images[0], 0.0)
    assert torch.equal(res["noisy"], images[0])
    assert torch.equal(res["phi"], res["phi_clean"])
    a, _ = explore.noise_view(model, images[0], 0.3, seed=1)
    b, _ = explore.noise_view(model, images[0], 0.3, seed=1)
    c, _ = explore.noise_view(model, images[0], 0.3, seed=2)
    assert torch.equal(a["noisy"], b["noisy"])
    assert not torch.equal(a["noisy"], c["noisy"])


def test_noise_view_refuses_bad_input(model, images):
    with pytest.raises(ValueError, match="sigma"):
        explore.noise_view(model, images[0], -0.1)
    with pytest.raises(ValueError, match="one image"):
        explore.noise_view(model, images[:2], 0.1)


# ------------------------------------------------------------------ channel


def test_channel_view_top_images_are_the_argmax_sorted_ones_and_maps_the_block_maps(model, images, feats, labels):
    p = feats["phi mid"]
    c = int(p.std(0).argmax())
    res, fig = explore.channel_view(model, images, p, c, k=6, labels=labels)
    assert isinstance(fig, Figure)
    assert torch.equal(res["top"], p[:, c].argsort(descending=True)[:6])
    assert torch.equal(res["phi"], p[res["top"], c])
    assert (res["phi"].diff() <= 0).all()
    with torch.no_grad():
        want = model.features(images[res["top"]], ["mid"])["mid"][:, c]
    assert torch.equal(res["maps"], want)
    f = images.shape[-1] // want.shape[-1]
    assert torch.equal(res["upsampled"], want.repeat_interleave(f, 1).repeat_interleave(f, 2))
    assert res["frequency"] == sparsity.channel_frequency(p)[c].item()
    lab = labels[res["top"]]
    same = sum(int(lab[i] == lab[j]) for i in range(6) for j in range(6) if i != j)
    assert res["pair_agreement"] == pytest.approx(same / 30)
    assert res["pair_chance"] == pytest.approx(0.25)


def test_channel_maps_at_phis_noise_level_average_to_phi(model, images):
    p = representation.phi(model, images, 0.3, n_noise=3, seed=2)
    c = int(p.std(0).argmax())
    res, _ = explore.channel_view(model, images, p, c, k=5, sigma=0.3, n_noise=3, seed=2)
    assert torch.allclose(res["maps"].mean(dim=(1, 2)), res["phi"], rtol=1e-5, atol=1e-7)
    sub = torch.arange(10, 30)  # a subset, named by its rows in the set phi was computed on
    res, _ = explore.channel_view(model, images[sub], p[sub], c, k=4, sigma=0.3, n_noise=3, seed=2, index=sub)
    assert torch.allclose(res["maps"].mean(dim=(1, 2)), res["phi"], rtol=1e-5, atol=1e-7)


def test_channel_views_pair_agreement_is_claims_top_label_agreement(model, images, feats, labels):
    p = feats["phi mid"]
    chans = [0, 5, int(p.std(0).argmax())]
    got = channels.top_label_agreement(p, labels, chans, 5)
    want = [explore.channel_view(model, images, p, c, 5, labels)[0]["pair_agreement"] for c in chans]
    assert got.tolist() == pytest.approx(want)


def test_channel_view_of_another_block(model, images):
    p = representation.phi(model, images, 0.0, block="enc2")
    res, _ = explore.channel_view(model, images, p, 3, k=4, block="enc2")
    with torch.no_grad():
        assert torch.equal(res["maps"], model.features(images[res["top"]], ["enc2"])["enc2"][:, 3])
    assert res["upsampled"].shape == (4, 16, 16)


def test_channel_view_refuses_bad_values(model, images, feats):
    p = feats["phi mid"]
    for bad in (-1, p.shape[1]):
        with pytest.raises(ValueError, match="channel must be"):
            explore.channel_view(model, images, p, bad)
    with pytest.raises(ValueError, match="phi must be"):
        explore.channel_view(model, images[:5], p, 0)


def test_channel_order_lists_live_channels_by_frequency_then_dead_ones():
    p = torch.zeros(10, 4)
    p[:, 0] = 1.0  # active on every image
    p[:3, 1] = 1.0  # on 3 of 10
    p[:1, 3] = 1.0  # on 1 of 10; channel 2 is dead
    order = explore.channel_order(p)
    assert [c for _, c in order] == [3, 1, 0, 2]
    assert "10.0%" in order[0][0]
    assert "dead" in order[-1][0]


# ------------------------------------------------------------------ neighbours


def test_neighbour_view_starts_with_the_query_and_ranks_by_standardised_distance(model, images, feats, labels):
    res, fig = explore.neighbour_view(feats, images, 7, "mid", k=5, labels=labels)
    assert isinstance(fig, Figure)
    for space, key in (("φ mid", "phi mid"), ("pixels", "pixels")):
        idx, dist = res[space], res[f"{space} distance"]
        assert int(idx[0]) == 7
        assert dist[0] == 0
        z = analysis.standardize(feats[key].double())[0]
        d = torch.cdist(z[7:8], z, compute_mode="donot_use_mm_for_euclid_dist")[0]  # exact: 0 to itself
        assert torch.equal(idx[1:], d.argsort()[1:6])
        assert torch.allclose(dist, d[idx])
        assert res[f"{space} same label"] == (labels[idx[1:]] == labels[7]).double().mean().item()


def test_neighbour_view_keeps_the_query_first_beside_an_exact_copy(images):
    base = torch.cat([images[:5], images[2:3]])  # image 5 is a copy of image 2
    feats = {
        "phi mid": torch.rand(6, 3, generator=torch.Generator().manual_seed(0)),
        "pixels": representation.pixels(base),
    }
    feats["phi mid"][5] = feats["phi mid"][2]
    res, _ = explore.neighbour_view(feats, base, 5, "mid", k=3)
    assert res["φ mid"][:2].tolist() == [5, 2]
    assert res["pixels"][:2].tolist() == [5, 2]
    res, _ = explore.neighbour_view(feats, base, 2, "mid", k=3)
    assert res["φ mid"][:2].tolist() == [2, 5]


def test_neighbour_view_reads_every_block(model, images, feats):
    for b in model.block_names:
        res, _ = explore.neighbour_view(feats, images, 0, b, k=3)
        order, _ = neighbours.ranking(feats[f"phi {b}"], 0)
        assert torch.equal(res[f"φ {b}"], order[:4])
    with pytest.raises(ValueError, match="no features 'phi out'"):
        explore.neighbour_view(feats, images, 0, "out")
    with pytest.raises(ValueError, match="query must be"):
        explore.neighbour_view(feats, images, 40, "mid")


def test_feature_key_names_a_blocks_phi_and_keeps_other_spaces():
    assert explore.feature_key("mid") == "phi mid"
    assert explore.feature_key("phi enc1") == "phi enc1"
    assert explore.feature_key("pixels") == "pixels"


# ------------------------------------------------------------------ masked reconstruction


@pytest.fixture(scope="module")
def target(model, images) -> targets.Target:
    return sampling.image_target_on_schedule(model, images[0], n_samples=2, steps=3, n_noise=2)


def test_masked_view_shows_the_masked_samplers_guided_and_unguided_runs(model, images, target):
    mean = sampling.mean_image(images)
    mask = targets.channel_mask_for("all", target.table[0, 0])
    res, fig = explore.masked_view(model, images[0], mean, mask, 2, steps=3, match_iter=3, target=target)
    assert isinstance(fig, Figure)
    guided, _ = sampling.masked_sample(model, target, mean, mask, steps=3, match_iter=3)
    free, _ = sampling.masked_sample(model, target, mean, mask, steps=3, match_iter=0)
    assert torch.equal(res["samples"], guided)
    assert torch.equal(res["unguided"], free)
    assert not torch.equal(res["samples"], free)
    assert torch.isnan(res["free_error"]).all()
    assert res["kept"] == target.table.shape[-1]


def test_masked_view_errors_on_kept_and_free_channels(model, images, target):
    mean = sampling.mean_image(images)
    tp = representation.phi(model, images[:1], 0.0)[0]
    mask = targets.channel_mask_for("top-k of the target", tp, k=4)
    res, _ = explore.masked_view(model, images[0], mean, mask, 2, steps=3, match_iter=3, target=target)
    p = representation.phi(model, res["samples"], 0.0)
    for part, m in (("kept_error", mask), ("free_error", ~mask)):
        want = (p - tp)[:, m].norm(dim=1) / tp[m].norm()
        assert torch.allclose(res[part], want)
    with pytest.raises(ValueError, match="mask must have"):
        explore.masked_view(model, images[0], mean, mask[:3], 2, steps=3, target=target)
    with pytest.raises(ValueError, match="n_samples"):
        explore.masked_view(model, images[0], mean, mask, 3, steps=3, target=target)
