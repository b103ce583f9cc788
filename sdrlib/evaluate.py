"""Denoising quality: PSNR of x_hat(x + sigma z) against x on held-out images, at fixed
noise levels and with fixed noise draws, beside the PSNR of the noisy input itself."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from . import utils
from .noise import add_noise, check_sigma, psnr

DEFAULT_SIGMAS = (0.05, 0.1, 0.2, 0.4, 0.8)


@torch.no_grad()
def denoise(model: torch.nn.Module, y: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """x_hat(y) in batches, on the model's device, returned on y's device."""
    dev = utils.model_device(model)
    outs = [model(y[i : i + batch].to(dev)).to(y.device) for i in range(0, y.shape[0], batch)]
    return torch.cat(outs)


@torch.no_grad()
def psnr_table(
    denoiser: Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module,
    images: torch.Tensor,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    seed: int = 1234,
    batch: int = 256,
    per_image: bool = False,
) -> list[dict]:
    """Mean per-image PSNR (dB) of the noisy input and of the denoised output at each sigma (with
    ``per_image``, also each image's denoised PSNR, for paired intervals)."""
    rows = []
    for k, s in enumerate(sigmas):
        check_sigma(s)
        g = torch.Generator().manual_seed(seed + k)
        y = add_noise(images, float(s), g)
        x_hat = denoise(denoiser, y, batch) if isinstance(denoiser, torch.nn.Module) else denoiser(y)
        p = psnr(x_hat.clamp(0, 1), images)
        rows.append(
            {
                "sigma": float(s),
                "psnr_noisy": psnr(y, images).mean().item(),
                "psnr_denoised": p.mean().item(),
                **({"per_image": p} if per_image else {}),
            }
        )
    return rows


def row_at(rows: Sequence[dict], sigma: float) -> dict:
    """The row of a :func:`psnr_table` whose noise level is nearest ``sigma``."""
    if not rows:
        raise ValueError("rows is empty: no PSNR table to read")
    return min(rows, key=lambda r: abs(r["sigma"] - sigma))


def format_table(rows: list[dict], title: str = "") -> str:
    """The PSNR table as aligned text (sigma also on the 0-255 scale, for comparison with the paper)."""
    lines = [title] if title else []
    lines.append(f"{'sigma':>7} {'(x255)':>7} {'noisy dB':>9} {'denoised dB':>12} {'gain dB':>8}")
    for r in rows:
        lines.append(
            f"{r['sigma']:7.3f} {r['sigma'] * 255:7.1f} {r['psnr_noisy']:9.2f} "
            f"{r['psnr_denoised']:12.2f} {r['psnr_denoised'] - r['psnr_noisy']:8.2f}"
        )
    return "\n".join(lines)
