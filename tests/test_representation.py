"""phi (SPEC section 2) and the analyses of SPEC section 3 on inputs with known answers."""

import pytest
import torch

from sdrlib import representation
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
    assert (p >= 0).all()
    assert p.shape == (5, 16)
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


def test_phi_change_is_the_mean_relative_distance_to_the_clean_phi(model):
    x = torch.rand(4, 1, 16, 16)
    got = representation.phi_change(model, x, [0.0, 0.3], n_noise=3, seed=2)
    clean, noisy = representation.phi(model, x, 0.0), representation.phi(model, x, 0.3, 3, seed=2)
    by_hand = [((noisy[i] - clean[i]).norm() / clean[i].norm()).item() for i in range(4)]
    assert got[0] == pytest.approx(0.0, abs=1e-6)
    assert got[1] == pytest.approx(sum(by_hand) / 4, rel=1e-6)
    assert got[1] > 0


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
    assert a["mid"].shape == (3, 3, 16)
    assert a["enc1"].shape == (3, 3, 8)
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


# ------------------------------------------------------------------ analyses with known answers


def test_features_include_controls_and_baselines(model):
    x = torch.rand(6, 1, 16, 16)
    control = representation.untrained_like(model, seed=1)
    f = representation.features(model, x, 0.2, 2, blocks=("mid",), control=control)
    assert list(f) == ["phi mid", "untrained phi mid", "pixels", "colour stats"]
    torch.testing.assert_close(f["phi mid"], representation.phi(model, x, 0.2, 2, seed=0))
    assert not torch.equal(f["phi mid"], f["untrained phi mid"])
    assert control.cfg == model.cfg
