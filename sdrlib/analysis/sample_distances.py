"""Pixel distances that score samples (claims 5-6): RMS distances, the nearest training image, diversity and the energy
distance between sample sets."""

from __future__ import annotations

import math

import torch


def rms_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise root-mean-square pixel distance between two image sets: (Na, Nb)."""
    return torch.cdist(a.flatten(1).double(), b.flatten(1).double()) / math.sqrt(a[0].numel())


def nearest_image(samples: torch.Tensor, base: torch.Tensor, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """For each sample, the RMS pixel distance to its nearest image in ``base`` and that image's index
    (the memorisation check)."""
    best_d = torch.full((samples.shape[0],), float("inf"), dtype=torch.float64)
    best_i = torch.zeros(samples.shape[0], dtype=torch.long)
    for s in range(0, base.shape[0], chunk):
        d = rms_distance(samples, base[s : s + chunk])
        m, i = d.min(1)
        better = m < best_d
        best_d[better], best_i[better] = m[better], i[better] + s
    return best_d, best_i


def mean_pairwise(samples: torch.Tensor) -> float:
    """Mean RMS pixel distance between distinct samples of one set (diversity)."""
    d = rms_distance(samples, samples)
    n = d.shape[0]
    return (d.sum() / (n * (n - 1))).item() if n > 1 else float("nan")


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Energy distance between two sample sets in RMS pixel units, 2E|a-b| - E|a-a'| - E|b-b'|
    (V-statistic: all pairs, so that a set is at distance 0 from itself)."""
    return (2 * rms_distance(a, b).mean() - rms_distance(a, a).mean() - rms_distance(b, b).mean()).item()
