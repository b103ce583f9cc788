"""Noise levels for training the blind denoiser (SPEC section 1).

sigma is on the [0, 1] image scale. Two sampling laws: ``uniform`` (sigma ~ U[lo, hi])
and ``sqrt-uniform`` (sqrt(sigma) ~ U[sqrt(lo), sqrt(hi)], which favours small sigma).
"""

from __future__ import annotations

import math

import torch

from . import utils

LAWS = ("uniform", "sqrt-uniform")


def check_range(lo: float, hi: float) -> None:
    """Raise ValueError unless 0 <= lo <= hi are finite noise levels."""
    for name, v in (("sigma_min", lo), ("sigma_max", hi)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite, non-negative noise level, got {v}")
    if lo > hi:
        raise ValueError(f"sigma_min ({lo}) must not exceed sigma_max ({hi})")


def check_sigma(sigma: float | torch.Tensor) -> None:
    """Raise ValueError if any sigma is negative or not finite."""
    s = torch.as_tensor(sigma, dtype=torch.float64)
    if not torch.isfinite(s).all() or (s < 0).any():
        raise ValueError(f"sigma must be finite and non-negative, got {sigma}")


def sample_sigma(
    n: int,
    law: str = "uniform",
    lo: float = 0.0,
    hi: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw n training noise levels from the named law over [lo, hi] (SPEC 1, "noise levels"), drawn on the
    generator's device and returned on ``device`` (None: the generator's)."""
    check_range(lo, hi)
    u = utils.rand(n, generator, device)
    if law == "uniform":
        return lo + (hi - lo) * u
    if law == "sqrt-uniform":
        a, b = math.sqrt(lo), math.sqrt(hi)
        return (a + (b - a) * u) ** 2
    raise ValueError(f"unknown sigma law {law!r}; expected one of {LAWS}")


def law_cdf(s: torch.Tensor, law: str, lo: float, hi: float) -> torch.Tensor:
    """The cumulative distribution function of a sigma law (used to test the sampler)."""
    if law == "uniform":
        return ((s - lo) / (hi - lo)).clamp(0, 1)
    if law == "sqrt-uniform":
        a, b = math.sqrt(lo), math.sqrt(hi)
        return ((s.clamp(min=0).sqrt() - a) / (b - a)).clamp(0, 1)
    raise ValueError(f"unknown sigma law {law!r}; expected one of {LAWS}")


def add_noise(x: torch.Tensor, sigma: float | torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """y = x + sigma * z with z standard normal; sigma a scalar or one value per image. z is drawn on the
    generator's device (the CPU for a CPU generator) and moved to x's: the same seed, the same noise anywhere."""
    check_sigma(sigma)
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if s.ndim == 1:
        s = s.view(-1, *([1] * (x.ndim - 1)))
    z = utils.randn(x.shape, generator, x.device, x.dtype)
    return x + s * z


def noisy_pair(
    x: torch.Tensor, law: str = "uniform", lo: float = 0.0, hi: float = 1.0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A training pair: noisy images y and their per-image sigma (clean target is x itself)."""
    sigma = sample_sigma(x.shape[0], law, lo, hi, generator, x.device)
    return add_noise(x, sigma, generator), sigma


def loss_weights(sigma: torch.Tensor, weighted: bool, floor: float = 1e-2) -> torch.Tensor:
    """Per-image loss weights: 1, or 1/sigma^2 (the authors' "weighted" loss), sigma floored to avoid 1/0."""
    if not weighted:
        return torch.ones_like(sigma)
    return 1.0 / sigma.clamp(min=floor) ** 2


def psnr(x_hat: torch.Tensor, x: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB of x_hat against x (images in [0, peak])."""
    mse = (x_hat - x).flatten(1).pow(2).mean(1).clamp(min=1e-12)
    return 10 * torch.log10(peak**2 / mse)
