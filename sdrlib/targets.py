"""What the self-guided samplers match (SPEC 4): a ``Target`` holds phi tabulated on a sigma grid for each
sample, read at any per-sample sigma. Targets of one image (``image_target``) or of a class or cluster centroid
(``centroid_target``), optionally restricted to some channels (``Target.masked``, ``channel_mask_for``); and the
target of claim 5's pixel control guide (``pca_target``: the PCA coefficients of the clean image at every sigma).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import torch

from . import sparsity
from .matching import PixelPCA
from .representation import phi_grid
from .unet import UNet


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
    table = phi_grid(model, images, sig, n_noise, (block,), seed)[block]
    return Target(table.repeat_interleave(n_per, dim=1), tuple(sig))


def pca_target(pca: PixelPCA, images: torch.Tensor, n_per: int = 1, grid: Sequence[float] | None = None) -> Target:
    """The target of the pixel-PCA guide (claim 5's control): each conditioning image's PCA coefficients, for
    ``n_per`` samples each, tabulated on the same sigma grid as ``image_target`` (default log-spaced 0.01..1.5).
    The statistic is linear and the noise zero-mean, so its noise average at any sigma is its value on the clean
    image: every row of the table is the clean coefficients, and no noise is drawn."""
    sig = _grid(None, grid)
    with torch.no_grad():
        c = pca.coefficients(images.float()).cpu()
    return Target(c.unsqueeze(0).expand(len(sig), -1, -1).repeat_interleave(n_per, dim=1).contiguous(), tuple(sig))


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
    table = phi_grid(model, images, sig, n_noise, (block,), seed)[block]
    groups = labels.unique()
    means = torch.stack([table[:, labels == g].mean(1) for g in groups], dim=1)  # (S, G, C)
    return Target(means.repeat_interleave(n_per, dim=1), tuple(sig)), groups


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
