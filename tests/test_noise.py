"""Noise-level laws and the noisy-pair maker (SPEC section 1)."""

import math

import pytest
import torch
from scipy import stats

from sdrlib import noise


@pytest.mark.parametrize(
    "law, lo, hi",
    [("uniform", 0.0, 1.0), ("sqrt-uniform", 0.0, 1.0), ("uniform", 0.05, 3.0), ("sqrt-uniform", 0.01, 0.5)],
)
def test_sigma_laws_match_their_cdf(law, lo, hi):
    g = torch.Generator().manual_seed(0)
    s = noise.sample_sigma(20_000, law, lo, hi, g)
    assert s.min() >= lo
    assert s.max() <= hi
    ks = stats.kstest(s.double().numpy(), lambda v: noise.law_cdf(torch.as_tensor(v), law, lo, hi).numpy())
    assert ks.pvalue > 1e-3, ks


def test_sqrt_uniform_favours_small_sigma():
    g = torch.Generator().manual_seed(0)
    s = noise.sample_sigma(50_000, "sqrt-uniform", 0.0, 1.0, g)
    # E[sigma] = E[u^2] = 1/3 for sqrt(sigma) ~ U[0,1]; P(sigma < 1/4) = P(u < 1/2) = 1/2
    assert abs(s.mean().item() - 1 / 3) < 0.005
    assert abs((s < 0.25).float().mean().item() - 0.5) < 0.01


def test_add_noise_has_the_right_std_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 64, 64)
    sig = torch.tensor([0.0, 0.1, 0.5])
    y = noise.add_noise(x, sig, g)
    std = (y - x).flatten(1).std(1)
    torch.testing.assert_close(std, sig, atol=0.01, rtol=0.03)
    assert torch.equal(y[0], x[0])


def test_noisy_pair_is_seeded():
    x = torch.rand(4, 1, 8, 8)
    a = noise.noisy_pair(x, generator=torch.Generator().manual_seed(3))
    b = noise.noisy_pair(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0])
    assert torch.equal(a[1], b[1])


def test_loss_weights_and_psnr():
    s = torch.tensor([0.0, 0.1, 0.5])
    torch.testing.assert_close(noise.loss_weights(s, True), torch.tensor([1e4, 100.0, 4.0]))
    assert torch.equal(noise.loss_weights(s, False), torch.ones(3))
    x = torch.zeros(1, 1, 4, 4)
    assert math.isclose(noise.psnr(x + 0.1, x).item(), 20.0, rel_tol=1e-5)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_bad_sigma(bad):
    with pytest.raises(ValueError, match="sigma"):
        noise.add_noise(torch.zeros(1, 1, 4, 4), bad)
    with pytest.raises(ValueError, match="sigma"):
        noise.sample_sigma(4, "uniform", 0.0, bad)


def test_unknown_law():
    with pytest.raises(ValueError, match="unknown sigma law 'log'"):
        noise.sample_sigma(4, "log")
