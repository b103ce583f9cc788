"""Samplers of SPEC section 4 on models with known answers."""

import math

import pytest
import torch

from sdrlib import matching, sampling, targets
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
    sig = diag.sigma  # (T, N)
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
    assert abs(diag.iterations.float().mean().item() - expected_steps) <= 0.05 * expected_steps
    assert diag.converged.all() and diag.loss_before is None
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
    for mod in m.modules():  # unit gains: a responsive untrained network
        if isinstance(mod, torch.nn.Module) and hasattr(mod, "gain"):
            mod.gain.data.fill_(1.0)
    return m


def test_phi_match_lowers_its_loss(tiny):
    g = torch.Generator().manual_seed(0)
    target_img, y = torch.rand(2, 1, 1, 16, 16, generator=g)
    target = matching.phi_one_pass(tiny, target_img).detach().repeat(3, 1)
    r = matching.phi_match(
        tiny, y.repeat(3, 1, 1, 1) + 0.1 * torch.randn(3, 1, 16, 16, generator=g), target, lr=0.02, max_iter=200
    )
    assert (r.loss_after < 0.2 * r.loss_before).all(), (r.loss_before, r.loss_after)
    assert (r.iterations > 0).all() and (r.iterations <= 200).all()
    # stopping rule: a sample that reached 1 % of its first loss stops there
    stopped = r.loss_after < 0.01 * r.loss_before
    assert (r.iterations[stopped] < 200).all()


def test_phi_match_leaves_model_frozen(tiny):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    matching.phi_match(tiny, torch.rand(1, 1, 16, 16), torch.zeros(1, 16), max_iter=5)
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())
    assert all(p.requires_grad for p in tiny.parameters())
    with pytest.raises(ValueError, match="target phi"):
        matching.phi_match(tiny, torch.rand(2, 1, 16, 16), torch.zeros(3, 16))


def test_fixed_schedule_is_seeded_and_matches(tiny):
    g = torch.Generator().manual_seed(1)
    cond = torch.rand(2, 1, 16, 16, generator=g)
    target = targets.image_target(tiny, cond, n_per=2, n_noise=2, grid=[0.05, 0.2, 1.0])
    mean = torch.full((1, 1, 16, 16), 0.5)
    sched = [1.0, 0.5, 0.2, 0.05]
    a, da = sampling.fixed_schedule(
        tiny, mean, target, 4, sched, max_iter=30, generator=torch.Generator().manual_seed(3)
    )
    b, _ = sampling.fixed_schedule(
        tiny, mean, target, 4, sched, max_iter=30, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(a, b) and a.shape == (4, 1, 16, 16)
    assert da.loss_after.shape == (4, 4) and (da.loss_after <= da.loss_before).all()
    assert da.schedule.tolist() == sched and da.match_iterations.shape == (4, 4)


def test_image_target_interpolates_in_log_sigma(tiny):
    cond = torch.rand(4, 1, 16, 16)
    t = targets.image_target(tiny, cond, n_noise=1, grid=[0.0001, 0.5], seed=0)
    lo, hi = t(torch.full((4,), 0.0001)), t(torch.full((4,), 0.5))
    mid = t(torch.full((4,), math.sqrt(0.0001 * 0.5)))  # halfway in log sigma
    torch.testing.assert_close(mid, (lo + hi) / 2)
    two = targets.image_target(tiny, cond[:2], n_per=3, n_noise=1, fixed_sigma=0.0)
    assert len(two) == 6
    torch.testing.assert_close(two(torch.zeros(6))[3], matching.phi_one_pass(tiny, cond[1:2])[0].detach())


def test_centroid_target_is_the_mean_phi_of_each_label(tiny):
    cond = torch.rand(5, 1, 16, 16)
    labels = torch.tensor([7, 2, 7, 2, 2])
    t, groups = targets.centroid_target(tiny, cond, labels, n_per=2, n_noise=1, fixed_sigma=0.0)
    assert groups.tolist() == [2, 7] and len(t) == 4
    p = t(torch.zeros(4))
    ref = matching.phi_one_pass(tiny, cond).detach()
    torch.testing.assert_close(p[0], ref[[1, 3, 4]].mean(0))
    torch.testing.assert_close(p[1], p[0])
    torch.testing.assert_close(p[2], ref[[0, 2]].mean(0))


def test_channel_mask_leaves_masked_out_channels_free(tiny):
    """With a mask, the matching ignores the other channels' targets entirely (bitwise the same result
    whatever they are) and lowers the error on the channels it keeps."""
    g = torch.Generator().manual_seed(4)
    y = torch.rand(2, 1, 16, 16, generator=g)
    target = matching.phi_one_pass(tiny, torch.rand(2, 1, 16, 16, generator=g)).detach()
    keep = torch.tensor([0, 3, 5, 9])
    mask = targets.channel_mask(keep, target.shape[1])
    assert mask.sum() == 4 and mask[keep].eq(1).all()
    other = target.clone()
    free = mask == 0
    other[:, free] = 100 * torch.rand(2, int(free.sum()), generator=g)
    a = matching.phi_match(tiny, y, target, lr=0.02, max_iter=40, mask=mask)
    b = matching.phi_match(tiny, y, other, lr=0.02, max_iter=40, mask=mask)
    assert torch.equal(a.y, b.y)

    def err(x):
        return (matching.phi_one_pass(tiny, x).detach() - target)[:, keep].pow(2).mean()

    assert err(a.y) < 0.5 * err(y)
    t = targets.image_target(tiny, y, fixed_sigma=0.0, n_noise=1).masked(keep)
    assert torch.equal(t.mask, mask)
    with pytest.raises(ValueError, match="channel indices"):
        targets.channel_mask([0, 99], target.shape[1])


class ShrinkDenoiser(build("tiny").__class__):
    """x_hat(y) = mu + 0.8 (y - mu): a denoiser whose effective sigma decays, inside a real tiny UNet whose
    encoder (and so phi) is untouched."""

    def __init__(self, base, mu):
        super().__init__(base.cfg)
        self.load_state_dict(base.state_dict())
        self.register_buffer("mu", mu)

    def forward(self, y):
        return self.mu + 0.8 * (y - self.mu)


def test_adaptive_sampler_lowers_the_phi_error_against_the_unguided_ascent(tiny):
    mu = torch.full((1, 1, 16, 16), 0.5)
    model = ShrinkDenoiser(tiny, mu).eval()
    cond = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(5))
    target = targets.image_target(model, cond, n_per=4, n_noise=1, fixed_sigma=0.0)
    cfg = AscentConfig(sigma0=0.5, sigma_L=0.01, h0=0.2, beta=0.5, max_iter=15, match_iter=20, match_lr=0.02)
    xg, dg = sampling.ascent(model, mu, 4, cfg, target=target, generator=torch.Generator().manual_seed(0))
    xu, du = sampling.ascent(model, mu, 4, cfg, generator=torch.Generator().manual_seed(0))
    tp = target(torch.zeros(4))
    eg = matching.relative_phi_error(model, xg, tp)
    eu = matching.relative_phi_error(model, xu, tp)
    assert eg.mean() < 0.5 * eu.mean(), (eg, eu)
    assert dg.loss_before.shape[1] == 4 and dg.iterations.max() <= cfg.max_iter
    assert (dg.match_ratio()[:-1] < 1).all() and du.loss_before is None


def test_fixed_schedule_effective_sigma_follows_its_schedule():
    """With x_hat(y) = mu and no matching, the image handed to the denoiser is mu + s z, so its effective
    sigma is s up to a relative fluctuation of order 1/sqrt(D)."""
    mu = torch.full((1, 1, 64, 64), 0.3)
    model = ConstantDenoiser(mu)
    sched = [1.0, 0.6, 0.3, 0.1, 0.03]
    target = targets.Target(torch.zeros(1, 3, 16), (0.1,))
    _, d = sampling.fixed_schedule(model, mu, target, 3, sched, max_iter=0, generator=torch.Generator().manual_seed(2))
    ratio = d.sigma / torch.tensor(sched)[:, None]
    assert (ratio - 1).abs().max() < 0.05


def test_phi_fn_is_a_parameter(tiny):
    """The benchmark's whole-network phi gives the same matching as the encoder-only one."""

    def whole(m, y, block):
        return m.blocks(y)[1][block].mean(dim=(2, 3))

    y = torch.rand(2, 1, 16, 16)
    target = matching.phi_one_pass(tiny, torch.rand(2, 1, 16, 16)).detach()
    a = matching.phi_match(tiny, y, target, max_iter=5, rel_tol=0.0)
    b = matching.phi_match(tiny, y, target, max_iter=5, rel_tol=0.0, phi_fn=whole)
    torch.testing.assert_close(a.y, b.y)


def test_bad_ascent_config():
    with pytest.raises(ValueError, match="beta"):
        AscentConfig(beta=0)
    with pytest.raises(ValueError, match="sigma_L"):
        AscentConfig(sigma_L=2.0)


# ------------------------------------------------------------------ the masked sampler (chapter 5)


@pytest.fixture(scope="module")
def cond_images() -> torch.Tensor:
    return torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def scheduled_target(tiny, cond_images) -> targets.Target:
    return sampling.image_target_on_schedule(tiny, cond_images[0], n_samples=2, steps=3, n_noise=2)


def test_fixed_schedule_sigmas_run_from_1_to_0_03():
    s = sampling.fixed_schedule_sigmas(5)
    assert len(s) == 5
    assert s[0] == pytest.approx(1.0)
    assert s[-1] == pytest.approx(0.03)
    assert all(a > b for a, b in zip(s, s[1:]))
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        sampling.fixed_schedule_sigmas(0)


def test_image_target_on_schedule_is_the_image_target_on_the_schedules_sigmas(tiny, cond_images, scheduled_target):
    t = scheduled_target
    assert len(t) == 2
    assert list(t.sigmas) == sorted(sampling.fixed_schedule_sigmas(3))
    want = targets.image_target(tiny, cond_images[:1], n_per=2, n_noise=2, grid=list(t.sigmas))
    assert torch.equal(t.table, want.table)
    same = sampling.image_target_on_schedule(tiny, cond_images[:1], n_samples=2, steps=3, n_noise=2)
    assert torch.equal(same.table, t.table)
    with pytest.raises(ValueError, match="one image"):
        sampling.image_target_on_schedule(tiny, cond_images[:2])


def test_channel_mask_for_every_choice():
    base = torch.zeros(20, 6)  # a planted code: frequencies 1, 0.1, dead, 0.5, 0.05, 0.95
    base[:, 0] = 1.0
    base[:2, 1] = 1.0
    base[:10, 3] = 1.0
    base[:1, 4] = 1.0
    base[:19, 5] = 1.0
    tp = torch.tensor([0.5, 0.1, 0.0, 0.9, 0.3, 0.2])
    assert targets.channel_mask_for("all", tp).all()
    top = targets.channel_mask_for("top-k of the target", tp, k=3)
    assert torch.nonzero(top).squeeze(1).tolist() == [0, 3, 4]
    assert torch.equal(targets.channel_mask_for("all but top-k", tp, k=3), ~top)
    assert torch.nonzero(targets.channel_mask_for("selective only", tp, base)).squeeze(1).tolist() == [1, 4]
    assert torch.nonzero(targets.channel_mask_for("non-selective only", tp, base)).squeeze(1).tolist() == [0, 5]
    assert set(targets.MASK_CHOICES) == {
        "all",
        "selective only",
        "non-selective only",
        "top-k of the target",
        "all but top-k",
    }
    with pytest.raises(ValueError, match="unknown mask 'some'"):
        targets.channel_mask_for("some", tp)
    with pytest.raises(ValueError, match="base_phi"):
        targets.channel_mask_for("selective only", tp)
    with pytest.raises(ValueError, match="k must be in \\[1, 6\\], got 0"):
        targets.channel_mask_for("top-k of the target", tp, k=0)


def test_masked_sample_on_every_channel_is_the_unmasked_sampler_bit_for_bit(tiny, cond_images, scheduled_target):
    mean = sampling.mean_image(cond_images)
    target = scheduled_target
    mask = targets.channel_mask_for("all", target.table[0, 0])
    guided, _ = sampling.masked_sample(tiny, target, mean, mask, steps=3, match_iter=3)
    sched = sampling.fixed_schedule_sigmas(3)
    want, _ = sampling.fixed_schedule(
        tiny, mean, target, 2, sched, lr=0.01, max_iter=3, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(guided, want)
    free, _ = sampling.masked_sample(tiny, target, mean, mask, steps=3, match_iter=0)
    unguided, _ = sampling.fixed_schedule(
        tiny, mean, target, 2, sched, max_iter=0, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(free, unguided)
    assert not torch.equal(guided, free)


def test_masked_sample_leaves_free_channels_free(tiny, cond_images, scheduled_target):
    mean = sampling.mean_image(cond_images)
    target = scheduled_target
    mask = torch.zeros(target.table.shape[-1], dtype=torch.bool)
    mask[:5] = True
    a, _ = sampling.masked_sample(tiny, target, mean, mask, steps=3, match_iter=3)
    moved = target.table.clone()
    moved[..., 5:] = moved[..., 5:] * 3 + 1  # another target on the free channels only
    b, _ = sampling.masked_sample(tiny, targets.Target(moved, target.sigmas), mean, mask, steps=3, match_iter=3)
    assert torch.equal(a, b)
    moved[..., :5] += 1  # ... and on the kept ones: the result changes
    c, _ = sampling.masked_sample(tiny, targets.Target(moved, target.sigmas), mean, mask, steps=3, match_iter=3)
    assert not torch.equal(a, c)


def test_masked_phi_error_on_every_channel_is_the_relative_phi_error(tiny, cond_images):
    samples = cond_images[1:3]
    tp = matching.phi_one_pass(tiny, cond_images[:1]).detach()[0]
    p = matching.phi_one_pass(tiny, samples).detach()
    whole = matching.masked_phi_error(p, tp, torch.ones_like(tp, dtype=torch.bool))
    assert torch.allclose(whole, matching.relative_phi_error(tiny, samples, tp[None].expand(2, -1)), atol=1e-6)
    part = torch.zeros_like(tp, dtype=torch.bool)
    part[:3] = True
    assert torch.allclose(matching.masked_phi_error(p, tp, part), (p - tp)[:, :3].norm(dim=1) / tp[:3].norm())
    assert torch.isnan(matching.masked_phi_error(p, tp, torch.zeros_like(part))).all()


# ------------------------------------------------------------------ claim 5's control guides (chapter 4)


def test_untrained_phi_guide_matches_the_untrained_networks_phi(tiny):
    """The trained network denoises; the untrained twin's phi is what is matched: the first recorded loss is the
    untrained phi loss of the first noisy image, and every matching lowers it."""
    from sdrlib import representation, utils

    net = representation.untrained_like(tiny, seed=1)
    cond = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    target = targets.image_target(net, cond, n_per=2, n_noise=2, grid=[0.05, 0.2, 1.0])
    mean = torch.full((1, 1, 16, 16), 0.5)
    sched = [1.0, 0.3, 0.05]
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    x, d = sampling.fixed_schedule(
        tiny, mean, target, 4, sched, max_iter=8, generator=torch.Generator().manual_seed(3),
        phi_fn=matching.network_phi(net),
    )  # fmt: skip
    y0 = mean.expand(4, 1, 16, 16) + 1.0 * utils.randn((4, 1, 16, 16), torch.Generator().manual_seed(3))
    first = ((matching.phi_one_pass(net, y0) - target(torch.ones(4))) ** 2).mean(1)
    torch.testing.assert_close(d.loss_before[0], first.detach())
    assert (d.loss_after < d.loss_before).all(), (d.loss_before, d.loss_after)
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())
    assert all(p.requires_grad for p in tiny.parameters()) and not any(p.requires_grad for p in net.parameters())
    x2, _ = sampling.fixed_schedule(
        tiny, mean, target, 4, sched, max_iter=8, generator=torch.Generator().manual_seed(3),
        phi_fn=matching.network_phi(net),
    )  # fmt: skip
    assert torch.equal(x, x2)  # fixed seeds: the same samples


def test_pixel_pca_recovers_planted_components():
    """Images on a planted 2-D affine subspace: the fit finds its mean and directions (the largest variance first,
    signs fixed), the coefficients are the planted ones, and k is clamped to what the images allow."""
    g = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(64, 2, generator=g, dtype=torch.float64))
    q, _ = torch.linalg.qr(torch.randn(200, 2, generator=g, dtype=torch.float64) - 0.5)
    q = q - q.mean(0)  # (already centred up to rounding) uncorrelated, centred coefficients of known variance
    q, _ = torch.linalg.qr(q)
    a = q * torch.tensor([30.0, 10.0], dtype=torch.float64)
    mu = torch.rand(64, generator=g, dtype=torch.float64)
    images = (mu + a @ basis.T).view(200, 1, 8, 8).float()
    pca = matching.fit_pixel_pca(images, 2)
    assert len(pca) == 2
    for j in range(2):
        u = basis[:, j].float()
        u = u * torch.sign(u[u.abs().argmax()])
        torch.testing.assert_close(pca.components[j], u, atol=1e-4, rtol=0)
    torch.testing.assert_close(pca.mean, mu.float(), atol=1e-5, rtol=0)
    sign = torch.sign(basis.gather(0, basis.abs().argmax(0, keepdim=True)))[0]
    torch.testing.assert_close(pca.coefficients(images), (a * sign).float(), atol=1e-4, rtol=0)
    assert pca(None, images).shape == (200, 2)
    assert len(matching.fit_pixel_pca(images, 1000)) == 64  # clamped to the pixel dimension
    assert len(matching.fit_pixel_pca(images[:10], 1000)) == 9  # ... and to the rank of 10 centred images
    with pytest.raises(ValueError, match="fitted on images of 64"):
        pca.coefficients(torch.rand(1, 1, 4, 4))


def test_pca_target_is_the_clean_coefficients_at_every_sigma():
    images = torch.rand(30, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    pca = matching.fit_pixel_pca(images, 5)
    cond = images[:2]
    t = targets.pca_target(pca, cond, n_per=3, grid=[0.01, 0.1, 1.0])
    clean = pca.coefficients(cond).repeat_interleave(3, 0)
    assert t.table.shape == (3, 6, 5) and len(t) == 6
    for s in (0.0, 0.01, 0.05, 0.3, 1.0, 2.0):  # sigma 0 (clamped to the grid's lowest level) included
        torch.testing.assert_close(t(torch.full((6,), s)), clean)


def test_pixel_pca_guide_lowers_the_pca_loss(tiny):
    g = torch.Generator().manual_seed(4)
    train = torch.rand(64, 1, 16, 16, generator=g)
    pca = matching.fit_pixel_pca(train, 16)
    target = targets.pca_target(pca, train[:2], n_per=2, grid=[0.05, 0.2, 1.0])
    mean = torch.full((1, 1, 16, 16), 0.5)
    runs = [
        sampling.fixed_schedule(
            tiny, mean, target, 4, [1.0, 0.3, 0.05], max_iter=8, generator=torch.Generator().manual_seed(5),
            phi_fn=pca,
        )
        for _ in range(2)
    ]  # fmt: skip
    (x, d), (x2, _) = runs
    assert (d.loss_after < d.loss_before).all(), (d.loss_before, d.loss_after)
    assert torch.equal(x, x2)  # fixed seeds: the same samples
