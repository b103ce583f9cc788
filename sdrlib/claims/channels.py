"""What the images that excite one channel have in common: claim 2's label purity of top images.

A selective channel should respond to one kind of image: the images on which its phi is largest should share a
label far more often than two images drawn at random (``pair_chance``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import sparsity


def pair_agreement(labels: torch.Tensor) -> float:
    """Fraction of the pairs of distinct items that share a label (NaN for fewer than 2 items)."""
    n = len(labels)
    if n < 2:
        return float("nan")
    same = (labels[:, None] == labels[None, :]).sum().item() - n
    return same / (n * (n - 1))


def pair_chance(labels: torch.Tensor) -> float:
    """Probability that two images drawn at random (with replacement) from a labelled set share a label."""
    p = torch.bincount(labels).double() / len(labels)
    return float((p**2).sum())


def top_label_agreement(
    phi: torch.Tensor, labels: torch.Tensor, channels: torch.Tensor | Sequence[int], k: int = 8
) -> torch.Tensor:
    """Per channel, the fraction of pairs of its k top-activating images that share a label (``channel_view``'s
    ``pair_agreement`` for many channels, without the figures)."""
    return torch.tensor(
        [pair_agreement(labels[sparsity.top_images(phi, int(c), k)]) for c in channels], dtype=torch.float64
    )
