"""Sampling with the blind denoiser (SPEC section 4).

- ``ascent``: the unconditional stochastic coarse-to-fine ascent of Kadkhodaie & Simoncelli
  (2021), with an optional phi-matching step after every update (the adaptive, "forward"
  self-guided sampler).
- ``phi_match``: the projection. With the network frozen, Adam on the pixels of y minimises
  mean_c (phi1(y) - phi_target)^2, phi1 = single-pass spatial mean of the middle block,
  computed through the encoder and middle block only.
- ``fixed_schedule``: the "backward" self-guided sampler on a fixed decreasing sigma schedule.
- Targets (``Target``): one image's phi (``image_target``), a class or cluster centroid
  (``centroid_target``), optionally restricted to some channels (``Target.masked``).

Every random draw takes an explicit ``torch.Generator``; both samplers return the samples and
one ``Diagnostics`` record (effective sigma per step and sample, phi loss before and after each
matching, iterations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch

from . import sparsity, utils
from .representation import phi as phi_sigma
from .unet import UNet

PhiFn = Callable[[UNet, torch.Tensor, str], torch.Tensor]  # (model, y, block) -> differentiable (N, C)


def _dev(model: UNet) -> torch.device:
    return next(model.parameters()).device


def phi1(model: UNet, y: torch.Tensor, block: str = "mid") -> torch.Tensor:
    """Single-pass spatial mean of a block, differentiable (encoder + middle block only for "mid")."""
    return model.features(y, [block])[block].mean(dim=(2, 3))


def _loss(p: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-sample mean over (selected) channels of (phi - target)^2."""
    d = (p - target) ** 2
    if mask is not None:
        return (d * mask).sum(1) / mask.sum().clamp(min=1)
    return d.mean(1)


@dataclass
class MatchResult:
    """Outcome of one phi matching: the matched images and per-sample losses and iterations."""

    y: torch.Tensor
    loss_before: torch.Tensor
    loss_after: torch.Tensor
    iterations: torch.Tensor


def phi_match(
    model: UNet,
    y: torch.Tensor,
    target: torch.Tensor,
    lr: float = 0.01,
    max_iter: int = 100,
    rel_tol: float = 0.01,
    mask: torch.Tensor | None = None,
    block: str = "mid",
    phi_fn: PhiFn = None,
) -> MatchResult:
    """The projection of SPEC 4: Adam on y's pixels until each sample's phi loss < rel_tol * its first value.

    ``mask`` (C,) weights the channels of the loss (0: the channel is left free); ``phi_fn`` replaces
    the single-pass phi (the benchmark passes a whole-network version)."""
    phi_fn = phi_fn or phi1
    if target.shape != (y.shape[0], target.shape[-1]):
        raise ValueError(f"target phi must be (N, C) with N = {y.shape[0]}, got {tuple(target.shape)}")
    model.check_input(y.detach())
    req = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    target = target.to(y.device)
    mask = mask.to(y.device).float() if mask is not None else None
    x = y.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    n = y.shape[0]
    done = torch.zeros(n, dtype=torch.bool, device=y.device)
    iters = torch.zeros(n, dtype=torch.long, device=y.device)
    first = last = None
    try:
        for it in range(max_iter + 1):
            loss = _loss(phi_fn(model, x, block), target, mask)
            if first is None:
                first = loss.detach().clone()
            last = torch.where(done, last, loss.detach()) if last is not None else loss.detach().clone()
            done = done | (last < rel_tol * first)
            if done.all() or it == max_iter:
                break
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            keep = x.detach().clone()
            opt.step()
            with torch.no_grad():
                x[done] = keep[done]  # finished samples stay where they stopped
            iters += (~done).long()
    finally:
        for p, r in zip(model.parameters(), req):
            p.requires_grad_(r)
    return MatchResult(x.detach(), first, last, iters)


@dataclass(frozen=True)
class Target:
    """What a self-guided sampler matches: phi tabulated on a sigma grid for each sample, read at any
    per-sample sigma by interpolation in log sigma, and an optional channel mask (0: channel left free)."""

    table: torch.Tensor  # (S, N, C): phi of each sample's conditioning image(s) at each grid sigma
    sigmas: tuple[float, ...]  # the grid (one value: a fixed target noise level)
    mask: torch.Tensor | None = None  # (C,) channel weights of the matching loss

    def __call__(self, sigma: torch.Tensor) -> torch.Tensor:
        """Target phi (N, C) at per-sample noise levels sigma (N,)."""
        if len(self.sigmas) == 1:
            return self.table[0]
        logs = torch.log(torch.tensor(self.sigmas).clamp(min=1e-4))
        ls = torch.log(sigma.detach().cpu().float().clamp(min=1e-4)).clamp(logs[0], logs[-1])
        j = torch.searchsorted(logs, ls).clamp(1, len(self.sigmas) - 1)
        w = ((ls - logs[j - 1]) / (logs[j] - logs[j - 1])).unsqueeze(1)
        idx = torch.arange(self.table.shape[1])
        return (1 - w) * self.table[j - 1, idx] + w * self.table[j, idx]

    def __len__(self) -> int:
        return self.table.shape[1]

    def masked(self, channels: torch.Tensor) -> "Target":
        """The same target matched on some channels only: ``channels`` is a (C,) bool/0-1 mask or indices."""
        return replace(self, mask=channel_mask(channels, self.table.shape[-1]))


def channel_mask(channels: torch.Tensor | Sequence[int], n_channels: int) -> torch.Tensor:
    """A (C,) float 0/1 mask from a boolean or 0/1 mask of length C, or from a list of channel indices."""
    c = torch.as_tensor(channels)
    if c.dtype == torch.bool or (c.ndim == 1 and len(c) == n_channels and c.is_floating_point()):
        if len(c) != n_channels:
            raise ValueError(f"a channel mask needs {n_channels} entries, got {len(c)}")
        return c.float()
    if c.numel() and (c.min() < 0 or c.max() >= n_channels):
        raise ValueError(f"channel indices must lie in [0, {n_channels - 1}], got {c.tolist()}")
    m = torch.zeros(n_channels)
    m[c.long()] = 1.0
    return m


def _grid(fixed_sigma: float | None, grid: Sequence[float] | None) -> list[float]:
    if fixed_sigma is not None:
        return [float(fixed_sigma)]
    return list(grid or torch.logspace(math.log10(0.01), math.log10(1.5), 24).tolist())


def _phi_table(
    model: UNet, images: torch.Tensor, sig: list[float], n_noise: int, seed: int, block: str
) -> torch.Tensor:
    """phi_sigma of each image at each grid sigma, (S, N, C) (the same seeded draws, scaled, at every sigma)."""
    return torch.stack([phi_sigma(model, images, s, n_noise, block, seed=seed) for s in sig])


def image_target(
    model: UNet,
    images: torch.Tensor,
    n_per: int = 1,
    n_noise: int = 10,
    fixed_sigma: float | None = None,
    grid: Sequence[float] | None = None,
    seed: int = 0,
    block: str = "mid",
) -> Target:
    """Target phi_sigma(x_c) of each conditioning image, for ``n_per`` samples each (SPEC 4), on a sigma
    grid (log-spaced 0.01..1.5 by default) or at one fixed sigma; n_noise draws per phi (paper: 10)."""
    sig = _grid(fixed_sigma, grid)
    table = _phi_table(model, images, sig, n_noise, seed, block)
    return Target(table.repeat_interleave(n_per, dim=1), tuple(sig))


def centroid_target(
    model: UNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    n_per: int = 1,
    n_noise: int = 10,
    fixed_sigma: float | None = None,
    grid: Sequence[float] | None = None,
    seed: int = 0,
    block: str = "mid",
) -> tuple[Target, torch.Tensor]:
    """The mean phi of the images of each label (a class or cluster centroid, SPEC 4 variant), one target
    per distinct label (sorted) for ``n_per`` samples each; also returns those labels."""
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must be ({images.shape[0]},), got {tuple(labels.shape)}")
    sig = _grid(fixed_sigma, grid)
    table = _phi_table(model, images, sig, n_noise, seed, block)
    groups = labels.unique()
    means = torch.stack([table[:, labels == g].mean(1) for g in groups], dim=1)  # (S, G, C)
    return Target(means.repeat_interleave(n_per, dim=1), tuple(sig)), groups


@dataclass
class Diagnostics:
    """What a sampler did, per step t and sample i (NaN where a sample had already stopped)."""

    sigma: torch.Tensor  # (T, N) effective noise level ||y - x_hat(y)|| / sqrt(D)
    iterations: torch.Tensor  # (N,) sampler steps used
    converged: torch.Tensor  # (N,) reached the stopping level (always True for fixed_schedule)
    schedule: torch.Tensor | None = None  # (T,) the fixed schedule's sigma, None for the ascent
    loss_before: torch.Tensor | None = None  # (T, N) phi loss before each matching (None: unguided)
    loss_after: torch.Tensor | None = None  # (T, N) ... and after it
    match_iterations: torch.Tensor | None = None  # (T, N) Adam iterations of each matching

    def match_ratio(self) -> torch.Tensor:
        """Median over samples, per step, of loss after / loss before the matching."""
        r = self.loss_after / self.loss_before.clamp(min=1e-20)
        return torch.nanmedian(r, dim=1).values


@dataclass
class AscentConfig:
    """Settings of the stochastic ascent (Kadkhodaie & Simoncelli 2021); SPEC 4 gives the ranges seen."""

    sigma0: float = 1.0  # initial noise std around the mean image
    sigma_L: float = 0.04  # stop an image when its effective sigma falls below this
    h0: float = 0.01  # step size
    beta: float = 0.05  # 1 injects no noise; small beta injects more
    growing_step: bool = False  # h_t = h0 t / (1 + h0 (t - 1)) instead of fixed h0
    max_iter: int = 20_000
    match_lr: float = 0.01  # phi matching (guided runs only)
    match_iter: int = 100
    match_tol: float = 0.01

    def __post_init__(self) -> None:
        if not (0 < self.h0 <= 1 and 0 < self.beta <= 1):
            raise ValueError(f"need 0 < h0 <= 1 and 0 < beta <= 1, got h0={self.h0}, beta={self.beta}")
        if not (0 < self.sigma_L < self.sigma0):
            raise ValueError(f"need 0 < sigma_L < sigma0, got sigma_L={self.sigma_L}, sigma0={self.sigma0}")
        if self.max_iter < 1 or self.match_iter < 0:
            raise ValueError(f"need max_iter >= 1 and match_iter >= 0, got {self.max_iter}, {self.match_iter}")


def step_size(cfg: AscentConfig, t: int) -> float:
    """h_t: fixed h0, or the growing schedule h0 t / (1 + h0 (t - 1))."""
    return cfg.h0 * t / (1 + cfg.h0 * (t - 1)) if cfg.growing_step else cfg.h0


@torch.no_grad()
def _denoise(model: UNet, y: torch.Tensor) -> torch.Tensor:
    return model(y)


def _effective_sigma(y: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """||y - x_hat(y)|| / sqrt(D) per image: the noise level the denoiser sees (SPEC 4)."""
    return (y - x_hat).flatten(1).norm(dim=1) / math.sqrt(y[0].numel())


def _check_target(target: Target | None, n: int) -> None:
    if target is not None and len(target) != n:
        raise ValueError(f"the target holds phi for {len(target)} samples, but n = {n} were asked for")


def ascent(
    model: UNet,
    mean: torch.Tensor,
    n: int,
    cfg: AscentConfig = AscentConfig(),
    target: Target | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    phi_fn: PhiFn = None,
) -> tuple[torch.Tensor, Diagnostics]:
    """Stochastic ascent from y0 = mean + sigma0 z; with ``target``, phi matching (at the image's current
    effective sigma) after every step: the adaptive self-guided sampler. Returns x_hat(y) at the end."""
    from tqdm.auto import tqdm

    _check_target(target, n)
    dev = _dev(model)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    shape = (n, *mean.shape[-3:])
    y = mean.to(dev).expand(shape) + cfg.sigma0 * utils.randn(shape, gen, dev)
    active = torch.ones(n, dtype=torch.bool, device=dev)
    used = torch.zeros(n, dtype=torch.long)
    hist: dict[str, list[torch.Tensor]] = {"sigma": [], "before": [], "after": [], "iters": []}
    nan = torch.full((n,), float("nan"))
    bar = tqdm(total=cfg.max_iter, disable=not progress, desc="ascent", leave=False)
    for t in range(1, cfg.max_iter + 1):
        h = step_size(cfg, t)
        f = y - _denoise(model, y)
        s = f.flatten(1).norm(dim=1) / math.sqrt(f[0].numel())
        hist["sigma"].append(torch.where(active, s, torch.full_like(s, float("nan"))).cpu())
        active = active & (s >= cfg.sigma_L)
        if not active.any():
            break
        gamma = s * math.sqrt(max((1 - cfg.beta * h) ** 2 - (1 - h) ** 2, 0.0))
        z = utils.randn(shape, gen, dev)
        upd = y - h * f + gamma.view(-1, 1, 1, 1) * z
        if target is not None:
            idx = active.nonzero().squeeze(1)
            r = phi_match(
                model,
                upd[idx],
                target(s)[idx.cpu()].to(dev),
                cfg.match_lr,
                cfg.match_iter,
                cfg.match_tol,
                target.mask,
                phi_fn=phi_fn,
            )
            upd[idx] = r.y
            for key, v in (("before", r.loss_before), ("after", r.loss_after), ("iters", r.iterations.float())):
                row = nan.clone()
                row[idx.cpu()] = v.cpu().float()
                hist[key].append(row)
        y = torch.where(active.view(-1, 1, 1, 1), upd, y)
        used += active.cpu().long()
        bar.update(1)
        if progress and t % 50 == 0:
            bar.set_postfix(sigma=f"{s[active].max().item():.3f}", left=int(active.sum()))
    bar.close()
    guided = target is not None and hist["before"]
    diag = Diagnostics(
        torch.stack(hist["sigma"]),
        used,
        ~active.cpu(),
        loss_before=torch.stack(hist["before"]) if guided else None,
        loss_after=torch.stack(hist["after"]) if guided else None,
        match_iterations=torch.stack(hist["iters"]) if guided else None,
    )
    return _denoise(model, y), diag


def unconditional(
    model: UNet,
    mean: torch.Tensor,
    n: int,
    cfg: AscentConfig = AscentConfig(),
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, Diagnostics]:
    """Unconditional samples from the prior implicit in the denoiser (Kadkhodaie & Simoncelli 2021)."""
    return ascent(model, mean, n, cfg, None, generator, progress)


def fixed_schedule(
    model: UNet,
    mean: torch.Tensor,
    target: Target,
    n: int,
    sigmas: Sequence[float] | None = None,
    lr: float = 0.01,
    max_iter: int = 100,
    rel_tol: float = 0.01,
    generator: torch.Generator | None = None,
    progress: bool = False,
    phi_fn: PhiFn = None,
) -> tuple[torch.Tensor, Diagnostics]:
    """The fixed-schedule ("backward") self-guided sampler of SPEC 4.

    x <- mean image; for sigma in the schedule (default linspace(1, 0.03, 100)):
    y <- x + sigma z; y <- phi_match(y, phi_sigma(target)); x <- x_hat(y).
    """
    from tqdm.auto import tqdm

    _check_target(target, n)
    dev = _dev(model)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    sched = list(sigmas) if sigmas is not None else torch.linspace(1.0, 0.03, 100).tolist()
    shape = (n, *mean.shape[-3:])
    x = mean.expand(shape).clone().to(dev)
    sig_eff, before, after, iters = [], [], [], []
    for s in tqdm(sched, disable=not progress, desc="self-guided", leave=False):
        y = x + s * utils.randn(shape, gen, dev)
        r = phi_match(
            model, y, target(torch.full((n,), float(s))).to(dev), lr, max_iter, rel_tol, target.mask, phi_fn=phi_fn
        )
        x = _denoise(model, r.y)
        sig_eff.append(_effective_sigma(r.y, x).cpu())
        before.append(r.loss_before.cpu())
        after.append(r.loss_after.cpu())
        iters.append(r.iterations.cpu().float())
    diag = Diagnostics(
        torch.stack(sig_eff),
        torch.full((n,), len(sched)),
        torch.ones(n, dtype=torch.bool),
        torch.tensor(sched, dtype=torch.float64),
        torch.stack(before),
        torch.stack(after),
        torch.stack(iters),
    )
    return x, diag


def relative_phi_error(model: UNet, samples: torch.Tensor, target_phi: torch.Tensor) -> torch.Tensor:
    """Per-sample ||phi(sample) - phi_target|| / ||phi_target|| at sigma = 0 (how well phi was matched)."""
    p = phi_sigma(model, samples, 0.0)
    return (p - target_phi).norm(dim=1) / target_phi.norm(dim=1).clamp(min=1e-12)


def mean_image(images: torch.Tensor) -> torch.Tensor:
    """A constant image (1, C, H, W) at the data set's mean colour: where every sampler starts (SPEC 4)."""
    return images.mean(dim=(0, 2, 3), keepdim=True).expand(1, -1, *images.shape[-2:]).clone()


# ------------------------------------------------------------------ the masked sampler (chapter 5)
# The fixed-schedule sampler guided on some channels only (SPEC 4, channel-mask variant): a named choice of
# channels, the target of one image on the schedule's noise levels, the sampler, and the phi error per part.

MASK_CHOICES = ("all", "selective only", "non-selective only", "top-k of the target", "all but top-k")


def channel_mask_for(
    choice: str,
    target_phi: torch.Tensor,
    base_phi: torch.Tensor | None = None,
    k: int = 16,
    tau: float = sparsity.DEFAULT_TAU,
    selective_below: float = 0.3,
    nonselective_above: float = 0.9,
    rel: float = 0.01,
) -> torch.Tensor:
    """The (C,) boolean mask of the channels a choice of ``MASK_CHOICES`` keeps: all; the selective or
    non-selective live channels of ``base_phi`` (chapter 2's split); the target's k largest channels, or all but
    those."""
    c = target_phi.shape[-1]
    if choice == "all":
        return torch.ones(c, dtype=torch.bool)
    if choice in ("top-k of the target", "all but top-k"):
        if not 1 <= k <= c:
            raise ValueError(f"k must be in [1, {c}], got {k}")
        m = torch.zeros(c, dtype=torch.bool)
        m[target_phi.reshape(-1, c)[0].topk(k).indices] = True
        return m if choice == "top-k of the target" else ~m
    if choice in ("selective only", "non-selective only"):
        if base_phi is None:
            raise ValueError(f"mask {choice!r} needs the phi of a set of images (base_phi) to split the channels")
        split = sparsity.selectivity_split(
            sparsity.channel_frequency(base_phi, tau),
            sparsity.relative_dead(base_phi, rel),
            selective_below,
            nonselective_above,
        )
        return split["selective" if choice == "selective only" else "non-selective"].clone()
    raise ValueError(f"unknown mask {choice!r}; expected one of {MASK_CHOICES}")


def masked_phi_error(p: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per sample, ||(phi - target) on the masked channels|| / ||target on them|| (NaN when none is masked)."""
    m = mask.bool()
    if not m.any():
        return torch.full((p.shape[0],), float("nan"))
    t = target.reshape(-1, p.shape[1]).expand_as(p)
    return (p - t)[:, m].norm(dim=1) / t[:, m].norm(dim=1).clamp(min=1e-12)


def fixed_schedule_sigmas(steps: int) -> list[float]:
    """The fixed schedule of ``steps`` noise levels from 1 to 0.03 (the paper: 100)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return torch.linspace(1.0, 0.03, steps).tolist()


def image_target_on_schedule(
    model: UNet, image: torch.Tensor, n_samples: int = 2, steps: int = 10, n_noise: int = 4, seed: int = 0
) -> Target:
    """The target phi of one image for ``n_samples`` samples, tabulated at the noise levels of the schedule."""
    if image.ndim not in (3, 4) or (image.ndim == 4 and image.shape[0] != 1):
        raise ValueError(f"expected one image (C, H, W) or (1, C, H, W), got {tuple(image.shape)}")
    x = (image if image.ndim == 4 else image[None]).detach().float().to(_dev(model))
    grid = sorted(fixed_schedule_sigmas(steps))
    return image_target(model, x, n_per=n_samples, n_noise=n_noise, grid=grid, seed=seed)


def masked_sample(
    model: UNet,
    target: Target,
    mean: torch.Tensor,
    mask: torch.Tensor,
    steps: int = 10,
    match_iter: int = 10,
    lr: float = 0.01,
    seed: int = 0,
) -> tuple[torch.Tensor, Diagnostics]:
    """The fixed-schedule sampler guided by ``target`` on the channels of ``mask`` only (all channels: the
    target as it is); ``match_iter`` 0 gives the unguided run with the same noise draws."""
    t = target if bool(mask.bool().all()) else target.masked(mask.bool())
    return fixed_schedule(
        model,
        mean.to(_dev(model)),
        t,
        len(target),
        fixed_schedule_sigmas(steps),
        lr=lr,
        max_iter=match_iter,
        generator=torch.Generator().manual_seed(seed),
    )
