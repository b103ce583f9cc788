"""Samplers of SPEC section 4 on models with known answers."""
import math

import pytest
import torch

from sdrlib import sampling
from sdrlib.sampling import AscentConfig
from sdrlib.unet import build


class ConstantDenoiser(build("tiny").__class__):
    """The exact blind denoiser of a one-image data set: x_hat(y) = mu for every y."""

    def __init__(self, mu):
        super().__init__(build("tiny").cfg)
        self.register_buffer("mu", mu)

    def forward(self, y):
        return self.mu.expand_as(y)


def test_ascent_effective_sigma_decays_as_scheduled():
    """With x_hat(y) = mu, E sigma_{t+1}^2 = (1 - beta h)^2 sigma_t^2, so sigma_t = sigma0 (1 - beta h)^t."""
    mu = torch.full((1, 3, 64, 64), 0.4)
    model = ConstantDenoiser(mu)
    cfg = AscentConfig(sigma0=1.0, sigma_L=0.05, h0=0.05, beta=0.2, max_iter=2000)
    x, diag = sampling.unconditional(model, mu, 16, cfg, torch.Generator().manual_seed(0))
    sig = diag["sigma"]                                   # (T, N)
    t = torch.arange(sig.shape[0], dtype=torch.float64)
    pred = cfg.sigma0 * (1 - cfg.beta * cfg.h0) ** t
    ok = ~torch.isnan(sig)
    ratio = sig.double() / pred.unsqueeze(1)
    # each step multiplies sigma by (1 - beta h) up to a fluctuation of O(1/sqrt(D)) that random-walks in
    # log sigma: with D = 12288, up to ~12 % per image after ~300 steps, < 1 % for the geometric mean of 16
    assert (ratio[ok] - 1).abs().max() < 0.15
    geo = torch.nanmean(ratio.log(), dim=1).exp()
    assert (geo[ok.all(1)] - 1).abs().max() < 0.01
    expected_steps = math.ceil(math.log(cfg.sigma_L / cfg.sigma0) / math.log(1 - cfg.beta * cfg.h0))
    assert abs(diag["iterations"].float().mean().item() - expected_steps) <= 0.05 * expected_steps
    assert diag["converged"].all()
    torch.testing.assert_close(x, mu.expand_as(x))


def test_growing_step_schedule():
    cfg = AscentConfig(h0=0.1, growing_step=True)
    hs = [sampling.step_size(cfg, t) for t in (1, 2, 10, 1000)]
    assert hs[0] == pytest.approx(0.1) and hs[1] == pytest.approx(0.2 / 1.1)
    assert all(a < b for a, b in zip(hs, hs[1:])) and hs[-1] < 1


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    m = build("tiny").eval()
    for mod in m.modules():                      # unit gains: a responsive untrained network
        if isinstance(mod, torch.nn.Module) and hasattr(mod, "gain"):
            mod.gain.data.fill_(1.0)
    return m


def test_phi_match_lowers_its_loss(tiny):
    g = torch.Generator().manual_seed(0)
    target_img, y = torch.rand(2, 1, 1, 16, 16, generator=g)
    target = sampling.phi1(tiny, target_img).detach().repeat(3, 1)
    r = sampling.phi_match(tiny, y.repeat(3, 1, 1, 1) + 0.1 * torch.randn(3, 1, 16, 16, generator=g),
                           target, lr=0.02, max_iter=200)
    assert (r.loss_after < 0.2 * r.loss_before).all(), (r.loss_before, r.loss_after)
    assert (r.iterations > 0).all() and (r.iterations <= 200).all()
    # stopping rule: a sample that reached 1 % of its first loss stops there
    stopped = r.loss_after < 0.01 * r.loss_before
    assert (r.iterations[stopped] < 200).all()


def test_phi_match_leaves_model_frozen(tiny):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    sampling.phi_match(tiny, torch.rand(1, 1, 16, 16), torch.zeros(1, 16), max_iter=5)
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())
    assert all(p.requires_grad for p in tiny.parameters())
    with pytest.raises(ValueError, match="target phi"):
        sampling.phi_match(tiny, torch.rand(2, 1, 16, 16), torch.zeros(3, 16))


def test_fixed_schedule_is_seeded_and_matches(tiny):
    g = torch.Generator().manual_seed(1)
    cond = torch.rand(2, 1, 16, 16, generator=g)
    target = sampling.image_target(tiny, cond, n_per=2, n_noise=2, grid=[0.05, 0.2, 1.0])
    mean = torch.full((1, 1, 16, 16), 0.5)
    sched = [1.0, 0.5, 0.2, 0.05]
    a, da = sampling.fixed_schedule(tiny, mean, target, 4, sched, max_iter=30, generator=torch.Generator().manual_seed(3))
    b, _ = sampling.fixed_schedule(tiny, mean, target, 4, sched, max_iter=30, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (4, 1, 16, 16)
    assert da["loss_after"].shape == (4, 4) and (da["loss_after"] <= da["loss_before"]).all()


def test_image_target_interpolates_and_centroids(tiny):
    cond = torch.rand(4, 1, 16, 16)
    t = sampling.image_target(tiny, cond, n_noise=1, grid=[0.0001, 0.5], seed=0)
    lo, hi = t(torch.full((4,), 0.0001)), t(torch.full((4,), 0.5))
    mid = t(torch.full((4,), math.sqrt(0.0001 * 0.5)))      # halfway in log sigma
    torch.testing.assert_close(mid, (lo + hi) / 2)
    c = sampling.image_target(tiny, cond, n_noise=1, fixed_sigma=0.0, centroid_labels=torch.tensor([0, 0, 1, 1]))
    p = c(torch.zeros(4))
    torch.testing.assert_close(p[0], p[1])
    torch.testing.assert_close(p[0], sampling.phi1(tiny, cond[:2]).mean(0).detach())


def test_bad_ascent_config():
    with pytest.raises(ValueError, match="beta"):
        AscentConfig(beta=0)
    with pytest.raises(ValueError, match="sigma_L"):
        AscentConfig(sigma_L=2.0)
