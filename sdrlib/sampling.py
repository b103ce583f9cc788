"""Sampling with the blind denoiser (SPEC section 4).

- ``ascent``: the unconditional stochastic coarse-to-fine ascent of Kadkhodaie & Simoncelli
  (2021), with an optional phi-matching step after every update (the adaptive, "forward"
  self-guided sampler).
- ``phi_match``: the projection. With the network frozen, Adam on the pixels of y minimises
  mean_c (phi1(y) - phi_target)^2, phi1 = single-pass spatial mean of the middle block,
  computed through the encoder and middle block only.
- ``fixed_schedule``: the "backward" self-guided sampler on a fixed decreasing sigma schedule.

Every random draw takes an explicit ``torch.Generator``; every sampler returns the samples
and a ``diagnostics`` dict (effective sigma per step, phi loss before/after each matching,
iterations used).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .representation import phi as phi_sigma
from .unet import UNet

TargetFn = Callable[[torch.Tensor], torch.Tensor]   # per-sample sigma (N,) -> target phi (N, C)


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


def phi_match(model: UNet, y: torch.Tensor, target: torch.Tensor, lr: float = 0.01, max_iter: int = 100,
              rel_tol: float = 0.01, mask: torch.Tensor | None = None, block: str = "mid") -> MatchResult:
    """The projection of SPEC 4: Adam on y's pixels until each sample's phi loss < rel_tol * its first value."""
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
            loss = _loss(phi1(model, x, block), target, mask)
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
                x[done] = keep[done]          # finished samples stay where they stopped
            iters += (~done).long()
    finally:
        for p, r in zip(model.parameters(), req):
            p.requires_grad_(r)
    return MatchResult(x.detach(), first, last, iters)


def image_target(model: UNet, images: torch.Tensor, n_per: int = 1, n_noise: int = 10,
                 fixed_sigma: float | None = None, centroid_labels: torch.Tensor | None = None,
                 grid: Sequence[float] | None = None, seed: int = 0, block: str = "mid") -> TargetFn:
    """Target phi for each sample from conditioning images (SPEC 4): phi_sigma(x_c), or at a fixed sigma.

    ``centroid_labels`` replaces each image's phi by the mean phi of its group (class or
    cluster centroid target). phi is precomputed on ``grid`` (log-spaced by default) and
    interpolated in log sigma, so a per-sample, continuously varying sigma costs nothing.
    """
    sig = [float(fixed_sigma)] if fixed_sigma is not None else list(grid or torch.logspace(
        math.log10(0.01), math.log10(1.5), 24).tolist())
    table = []
    for k, s in enumerate(sig):
        g = torch.Generator().manual_seed(seed * 1000 + k)
        p = phi_sigma(model, images, s, n_noise, block, generator=g)
        if centroid_labels is not None:
            for lab in centroid_labels.unique():
                p[centroid_labels == lab] = p[centroid_labels == lab].mean(0)
        table.append(p.repeat_interleave(n_per, dim=0))
    tab = torch.stack(table)                                  # (S, N, C)
    logs = torch.log(torch.tensor(sig).clamp(min=1e-4))

    def target(sigma: torch.Tensor) -> torch.Tensor:
        if len(sig) == 1:
            return tab[0]
        ls = torch.log(sigma.detach().cpu().float().clamp(min=1e-4)).clamp(logs[0], logs[-1])
        j = torch.searchsorted(logs, ls).clamp(1, len(sig) - 1)
        w = ((ls - logs[j - 1]) / (logs[j] - logs[j - 1])).unsqueeze(1)
        idx = torch.arange(tab.shape[1])
        return (1 - w) * tab[j - 1, idx] + w * tab[j, idx]

    return target


@dataclass
class AscentConfig:
    """Settings of the stochastic ascent (Kadkhodaie & Simoncelli 2021); SPEC 4 gives the ranges seen."""

    sigma0: float = 1.0          # initial noise std around the mean image
    sigma_L: float = 0.04        # stop an image when its effective sigma falls below this
    h0: float = 0.01             # step size
    beta: float = 0.05           # 1 injects no noise; small beta injects more
    growing_step: bool = False   # h_t = h0 t / (1 + h0 (t - 1)) instead of fixed h0
    max_iter: int = 20_000
    match_lr: float = 0.01       # phi matching (guided runs only)
    match_iter: int = 100
    match_tol: float = 0.01

    def __post_init__(self) -> None:
        if not (0 < self.h0 <= 1 and 0 < self.beta <= 1):
            raise ValueError(f"need 0 < h0 <= 1 and 0 < beta <= 1, got h0={self.h0}, beta={self.beta}")
        if not (0 < self.sigma_L < self.sigma0):
            raise ValueError(f"need 0 < sigma_L < sigma0, got sigma_L={self.sigma_L}, sigma0={self.sigma0}")


def step_size(cfg: AscentConfig, t: int) -> float:
    """h_t: fixed h0, or the growing schedule h0 t / (1 + h0 (t - 1))."""
    return cfg.h0 * t / (1 + cfg.h0 * (t - 1)) if cfg.growing_step else cfg.h0


@torch.no_grad()
def _denoise(model: UNet, y: torch.Tensor) -> torch.Tensor:
    return model(y)


def ascent(model: UNet, mean: torch.Tensor, n: int, cfg: AscentConfig = AscentConfig(),
           target: TargetFn | None = None, mask: torch.Tensor | None = None,
           generator: torch.Generator | None = None, progress: bool = False) -> tuple[torch.Tensor, dict]:
    """Stochastic ascent from y0 = mean + sigma0 z; with ``target``, phi matching after every step.

    Returns the final denoised images x_hat(y) and diagnostics (sigma per step per image,
    matching losses, iterations used per image).
    """
    from tqdm.auto import tqdm
    dev = _dev(model)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    shape = (n, *mean.shape[-3:])
    D = math.prod(shape[1:])
    y = (mean.expand(shape) + cfg.sigma0 * torch.randn(shape, generator=gen)).to(dev)
    active = torch.ones(n, dtype=torch.bool, device=dev)
    used = torch.zeros(n, dtype=torch.long)
    sig_hist, loss_hist = [], []
    bar = tqdm(total=cfg.max_iter, disable=not progress, desc="ascent", leave=False)
    for t in range(1, cfg.max_iter + 1):
        h = step_size(cfg, t)
        f = y - _denoise(model, y)
        s = f.flatten(1).norm(dim=1) / math.sqrt(D)
        sig_hist.append(torch.where(active, s, torch.full_like(s, float("nan"))).cpu())
        active = active & (s >= cfg.sigma_L)
        if not active.any():
            break
        gamma = s * math.sqrt(max((1 - cfg.beta * h) ** 2 - (1 - h) ** 2, 0.0))
        z = torch.randn(shape, generator=gen).to(dev)
        upd = y - h * f + gamma.view(-1, 1, 1, 1) * z
        if target is not None:
            idx = active.nonzero().squeeze(1)
            r = phi_match(model, upd[idx], target(s)[idx.cpu()].to(dev), cfg.match_lr, cfg.match_iter,
                          cfg.match_tol, mask)
            upd[idx] = r.y
            loss_hist.append((t, r.loss_before.mean().item(), r.loss_after.mean().item()))
        y = torch.where(active.view(-1, 1, 1, 1), upd, y)
        used += active.cpu().long()
        bar.update(1)
        if progress and t % 50 == 0:
            bar.set_postfix(sigma=f"{s[active].max().item():.3f}", left=int(active.sum()))
    bar.close()
    x = _denoise(model, y)
    diag = {"sigma": torch.stack(sig_hist), "iterations": used, "match_loss": loss_hist,
            "converged": ~active.cpu()}
    return x, diag


def unconditional(model: UNet, mean: torch.Tensor, n: int, cfg: AscentConfig = AscentConfig(),
                  generator: torch.Generator | None = None, progress: bool = False) -> tuple[torch.Tensor, dict]:
    """Unconditional samples from the prior implicit in the denoiser (Kadkhodaie & Simoncelli 2021)."""
    return ascent(model, mean, n, cfg, None, None, generator, progress)


def fixed_schedule(model: UNet, mean: torch.Tensor, target: TargetFn, n: int,
                   sigmas: Sequence[float] | None = None, lr: float = 0.01, max_iter: int = 100,
                   rel_tol: float = 0.01, mask: torch.Tensor | None = None,
                   generator: torch.Generator | None = None, progress: bool = False) -> tuple[torch.Tensor, dict]:
    """The fixed-schedule ("backward") self-guided sampler of SPEC 4.

    x <- mean image; for sigma in the schedule (default linspace(1, 0.03, 100)):
    y <- x + sigma z; y <- phi_match(y, phi_sigma(target)); x <- x_hat(y).
    """
    from tqdm.auto import tqdm
    dev = _dev(model)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    sched = list(sigmas) if sigmas is not None else torch.linspace(1.0, 0.03, 100).tolist()
    shape = (n, *mean.shape[-3:])
    D = math.prod(shape[1:])
    x = mean.expand(shape).clone().to(dev)
    sig_eff, before, after, iters = [], [], [], []
    for s in tqdm(sched, disable=not progress, desc="self-guided", leave=False):
        y = x + s * torch.randn(shape, generator=gen).to(dev)
        r = phi_match(model, y, target(torch.full((n,), float(s))).to(dev), lr, max_iter, rel_tol, mask)
        x = _denoise(model, r.y)
        sig_eff.append(((r.y - x).flatten(1).norm(dim=1) / math.sqrt(D)).cpu())
        before.append(r.loss_before.cpu())
        after.append(r.loss_after.cpu())
        iters.append(r.iterations.cpu())
    diag = {"schedule": torch.tensor(sched), "sigma": torch.stack(sig_eff), "loss_before": torch.stack(before),
            "loss_after": torch.stack(after), "match_iterations": torch.stack(iters)}
    return x, diag


def relative_phi_error(model: UNet, samples: torch.Tensor, target_phi: torch.Tensor) -> torch.Tensor:
    """Per-sample ||phi(sample) - phi_target|| / ||phi_target|| at sigma = 0 (how well phi was matched)."""
    p = phi_sigma(model, samples, 0.0)
    return (p - target_phi).norm(dim=1) / target_phi.norm(dim=1).clamp(min=1e-12)


def mean_image(images: torch.Tensor) -> torch.Tensor:
    """A constant image (1, C, H, W) at the data set's mean colour: where every sampler starts (SPEC 4)."""
    return images.mean(dim=(0, 2, 3), keepdim=True).expand(1, -1, *images.shape[-2:]).clone()
