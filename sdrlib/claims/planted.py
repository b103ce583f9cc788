"""Codes whose answer is known, for the claims' known-answer tests (and for a reader who wants to see a test pass
and fail on purpose): a sparse code with class-specific supports, for which claims 1-4 hold by construction; the
same code turned dense by a random rotation (made non-negative by one global shift, so Euclidean distances and the
class information survive), for which claims 1-3 must fail and claim 4 must still hold; and an untrained-like
control code (every channel on for every image, no class information); and any code with nearly silent channels
appended, like an unhealthy network's, whose claims are read on its healthy fraction."""

from __future__ import annotations

import torch


def labels_for(n: int, n_classes: int, seed: int = 0) -> torch.Tensor:
    """n class labels, as balanced as n allows, in a random order."""
    if n_classes < 2 or n < 2 * n_classes:
        raise ValueError(f"need n_classes >= 2 and at least two images per class, got n={n}, n_classes={n_classes}")
    g = torch.Generator().manual_seed(seed)
    return (torch.arange(n) % n_classes)[torch.randperm(n, generator=g)]


def sparse_code(
    labels: torch.Tensor,
    n_channels: int = 128,
    n_shared: int = 16,
    per_class: int = 8,
    p_on: float = 0.5,
    seed: int = 0,
) -> torch.Tensor:
    """A non-negative code (N, n_channels) that is sparse per image, with class-specific supports and two
    populations of channels: ``n_shared`` non-selective channels on for every image (values near 0.5), and
    ``per_class`` selective channels per class, each on (values in [0.5, 1.5]) with chance ``p_on`` for an image
    of its class and off otherwise; channels left over stay at a small floor of noise."""
    n_classes = int(labels.max()) + 1
    if n_shared + n_classes * per_class > n_channels:
        raise ValueError(f"{n_shared} shared + {n_classes} x {per_class} selective channels exceed {n_channels}")
    g = torch.Generator().manual_seed(seed)
    n = len(labels)
    code = 0.01 * torch.rand(n, n_channels, generator=g)
    code[:, :n_shared] = (0.5 + 0.1 * torch.randn(n, n_shared, generator=g)).abs()
    owner = torch.arange(n_classes).repeat_interleave(per_class)  # class of each selective channel
    sel = n_shared + torch.arange(n_classes * per_class)
    on = (labels[:, None] == owner[None, :]) & (torch.rand(n, len(sel), generator=g) < p_on)
    code[:, sel] = torch.where(on, 0.5 + torch.rand(n, len(sel), generator=g), code[:, sel])
    return code


def dense_twin(code: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The same code under a random rotation of its channels, shifted by one constant to be non-negative: every
    pairwise Euclidean distance (and so the class information) is kept, but every channel is on for every image."""
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(code.shape[1], code.shape[1], generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))  # a uniformly random rotation (Haar)
    y = code.double() @ q
    return (y - y.min() + 0.1 * y.std()).to(code.dtype)


def control_code(n: int, n_channels: int = 128, seed: int = 0) -> torch.Tensor:
    """An untrained-like control: every channel on for every image at a channel-specific level, varying a little
    and independently of any class."""
    g = torch.Generator().manual_seed(seed)
    level = 0.5 + torch.rand(n_channels, generator=g)
    return level * (1 + 0.1 * torch.randn(n, n_channels, generator=g)).abs()


def with_dead_channels(code: torch.Tensor, n_dead: int, scale: float = 1e-4, seed: int = 0) -> torch.Tensor:
    """The code with ``n_dead`` nearly silent channels appended, like an unhealthy network's (#24): each varies
    at random between 0 and ``scale`` times the code's largest value, dead by the relative rule at any share above
    ``scale``, and carries no class information."""
    g = torch.Generator().manual_seed(seed)
    dead = scale * code.max() * torch.rand(code.shape[0], n_dead, generator=g, dtype=code.dtype)
    return torch.cat([code, dead], dim=1)
