"""The samplers of the blind denoiser (SPEC section 4).

- ``ascent``: the unconditional stochastic coarse-to-fine ascent of Kadkhodaie & Simoncelli
  (2021), with an optional phi matching (``matching.phi_match``) after every update: the adaptive,
  "forward" self-guided sampler.
- ``fixed_schedule``: the "backward" self-guided sampler on a fixed decreasing sigma schedule.
- ``masked_sample``: the fixed-schedule sampler guided on some channels only (chapter 5).

What they match is a ``targets.Target``. Every random draw takes an explicit ``torch.Generator``;
both samplers return the samples and one ``Diagnostics`` record (effective sigma per step and
sample, phi loss before and after each matching, iterations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from . import utils
from .matching import PhiFn, phi_match
from .targets import Target, image_target
from .unet import UNet


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
    dev = utils.model_device(model)
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
    dev = utils.model_device(model)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    sched = list(sigmas) if sigmas is not None else fixed_schedule_sigmas(100)
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


def mean_image(images: torch.Tensor) -> torch.Tensor:
    """A constant image (1, C, H, W) at the data set's mean colour: where every sampler starts (SPEC 4)."""
    return images.mean(dim=(0, 2, 3), keepdim=True).expand(1, -1, *images.shape[-2:]).clone()


# ------------------------------------------------------------------ the masked sampler (chapter 5)
# The fixed-schedule sampler guided on some channels only (SPEC 4, channel-mask variant): a named choice of
# channels, the target of one image on the schedule's noise levels, the sampler, and the phi error per part.


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
    x = (image if image.ndim == 4 else image[None]).detach().float().to(utils.model_device(model))
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
        mean.to(utils.model_device(model)),
        t,
        len(target),
        fixed_schedule_sigmas(steps),
        lr=lr,
        max_iter=match_iter,
        generator=torch.Generator().manual_seed(seed),
    )
