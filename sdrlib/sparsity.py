"""Measures of sparsity of a representation (SPEC section 3, claims 1-3): dead channels, per-image active sets,
channel selectivity, and the overlap of active sets within and across classes. The claims themselves, with their
controls, intervals and verdicts, are in ``sdrlib.claims.sparse``.

Two rules for "active". In the paper's sense (``own_max_active``, what the claims read): channel c is active
for image i when phi[i, c] > tau * max_c' phi[i, c'], a fraction of the image's own largest channel. Per-channel
scaled (``active_mask``, reported beside it and used by the samplers' channel masks): phi[i, c] > tau * max_j
phi[j, c], a fraction of that channel's maximum over the data set analysed, which also measures how much a
channel varies across images. A channel whose maximum is (nearly) zero on the whole set is "dead" and never
active.
"""

from __future__ import annotations

import torch

DEFAULT_TAU = 0.1


def dead_channels(phi: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Boolean (C,) mask of channels that are (numerically) zero on every image."""
    return phi.max(dim=0).values <= eps


def relative_dead(phi: torch.Tensor, rel: float = 0.01) -> torch.Tensor:
    """Boolean (C,) mask of channels whose maximum over the images is below ``rel`` times the largest
    channel's maximum: the relative dead-channel rule (nearly silent, not only exactly zero); a channel
    that is never positive is dead, also when no channel is."""
    if not 0 <= rel < 1:
        raise ValueError(f"rel must be in [0, 1), got {rel}")
    cmax = phi.max(dim=0).values
    return (cmax < rel * cmax.max()) | (cmax <= 0)


def active_mask(phi: torch.Tensor, tau: float = DEFAULT_TAU, eps: float = 1e-8) -> torch.Tensor:
    """Boolean (N, C): phi[i,c] > tau * (max over images of channel c); dead channels never active."""
    if not 0 <= tau < 1:
        raise ValueError(f"tau must be in [0, 1), got {tau}")
    cmax = phi.max(dim=0).values
    return (phi > tau * cmax) & (cmax > eps)


def active_fraction(phi: torch.Tensor, tau: float = DEFAULT_TAU, live_only: bool = True) -> torch.Tensor:
    """Per-image fraction of channels that are active (claim 1); over live channels by default."""
    m = active_mask(phi, tau)
    n = (~dead_channels(phi)).sum() if live_only else phi.shape[1]
    return m.sum(1).float() / max(int(n), 1)


def channel_frequency(phi: torch.Tensor, tau: float = DEFAULT_TAU) -> torch.Tensor:
    """Per-channel fraction of images for which the channel is active (claim 2)."""
    return active_mask(phi, tau).float().mean(0)


def selectivity_split(
    freq: torch.Tensor, dead: torch.Tensor, selective_below: float = 0.3, nonselective_above: float = 0.9
) -> dict[str, torch.Tensor]:
    """Split live channels by activation frequency into selective / intermediate / non-selective (claim 2)."""
    live = ~dead
    return {
        "selective": live & (freq < selective_below),
        "non-selective": live & (freq > nonselective_above),
        "intermediate": live & (freq >= selective_below) & (freq <= nonselective_above),
        "dead": dead.clone(),
    }


def jaccard_matrix(mask: torch.Tensor) -> torch.Tensor:
    """Pairwise Jaccard index |A_i & A_j| / |A_i | A_j| of boolean active sets (N, C) -> (N, N)."""
    m = mask.float()
    inter = m @ m.T
    sizes = m.sum(1)
    union = sizes[:, None] + sizes[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))


def overlap_within_across(
    mask: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor | None = None
) -> dict[str, float]:
    """Mean Jaccard overlap of active sets for pairs of the same class vs of different classes (claim 3),
    and their ratio (NaN when no pair spans two classes or the across-class overlap is zero). ``ids`` names
    the images (a bootstrap resample repeats some): pairs of an image with itself are left out."""
    J = jaccard_matrix(mask)
    ids = torch.arange(len(labels)) if ids is None else ids
    same = labels[:, None] == labels[None, :]
    off = ids[:, None] != ids[None, :]
    within, across = J[same & off], J[~same]
    w = within.mean().item() if within.numel() else float("nan")
    a = across.mean().item() if across.numel() else float("nan")
    return {"within": w, "across": a, "ratio": w / a if a > 0 else float("nan")}


def overlap_ratio(mask: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor | None = None) -> float:
    """Within-class over across-class mean Jaccard overlap of active sets (claim 3): 1 means no class structure."""
    return overlap_within_across(mask, labels, ids)["ratio"]


def sparsity_summary(phi: torch.Tensor, tau: float = DEFAULT_TAU, rel: float = 0.01) -> dict[str, float]:
    """The numbers behind claims 1-2 for one representation at threshold tau: dead channels (relative rule;
    exact zeros too), the per-image active fraction of the live channels, selective / non-selective counts."""
    dead = relative_dead(phi, rel)
    live = phi[:, ~dead]
    frac = active_fraction(live, tau)
    q = torch.quantile(frac, torch.tensor([0.1, 0.5, 0.9]))
    return {
        "channels": phi.shape[1],
        "dead": int(dead.sum()),
        "exact zeros": int(dead_channels(phi).sum()),
        "active_frac_p10": q[0].item(),
        "active_frac_median": q[1].item(),
        "active_frac_p90": q[2].item(),
        **selectivity_counts(phi, tau, rel=rel),
    }


def selectivity_counts(
    phi: torch.Tensor,
    tau: float = DEFAULT_TAU,
    selective_below: float = 0.3,
    nonselective_above: float = 0.9,
    rel: float = 0.01,
) -> dict[str, int]:
    """How many live channels (relative rule) are selective, intermediate and non-selective at threshold tau."""
    dead = relative_dead(phi, rel)
    split = selectivity_split(channel_frequency(phi, tau), dead, selective_below, nonselective_above)
    return {k.replace("-", "_"): int(v.sum()) for k, v in split.items() if k != "dead"}


def top_images(phi: torch.Tensor, channel: int, k: int = 8) -> torch.Tensor:
    """Indices of the k images on which a channel responds most (to see what a selective channel encodes)."""
    return phi[:, channel].topk(min(k, phi.shape[0])).indices


def most_selective(
    phi: torch.Tensor, n: int = 3, tau: float = DEFAULT_TAU, min_frequency: float = 0.005, min_mass: float = 0.1
) -> torch.Tensor:
    """The n channels active on the fewest images (at least ``min_frequency`` of them) among those that carry
    real mass: their maximum reaches ``min_mass`` of the largest channel's maximum (no nearly dead channel)."""
    freq = channel_frequency(phi, tau)
    cmax = phi.max(dim=0).values
    ok = (cmax >= min_mass * cmax.max()) & (freq >= min_frequency)
    idx = torch.nonzero(ok).squeeze(1)
    return idx[freq[idx].argsort()[:n]]


# ------------------------------------------------------------------ threshold-free measures and fair controls


def normalise(phi: torch.Tensor, live: torch.Tensor | None = None) -> torch.Tensor:
    """phi with each channel divided by its maximum over the images, restricted to live channels (the
    relative rule by default): the scale on which the threshold rule and the measures below agree."""
    live = ~relative_dead(phi) if live is None else live
    p = phi[:, live]
    return p / p.max(dim=0).values.clamp(min=1e-12)


def _values(phi: torch.Tensor, live: torch.Tensor | None, scaled: bool) -> torch.Tensor:
    """The live channels of phi, each divided by its maximum over the images when ``scaled``, else as they are."""
    if scaled:
        return normalise(phi, live)
    return phi[:, ~relative_dead(phi) if live is None else live]


def hoyer(phi: torch.Tensor, live: torch.Tensor | None = None, scaled: bool = True) -> torch.Tensor:
    """Per-image Hoyer sparsity of the live channels, (sqrt(C) - |x|_1 / |x|_2) / (sqrt(C) - 1): 1 when one
    channel carries everything, 0 when all are equal (claim 1, no threshold). ``scaled``: each channel divided
    by its maximum over the images first (then it also measures how much channels vary across images); raw
    (``scaled=False``): the image's phi as the network gives it, the paper's sense of "few channels active"."""
    x = _values(phi, live, scaled)
    c = x.shape[1]
    if c < 2:
        raise ValueError(f"Hoyer sparsity needs at least 2 live channels, got {c}")
    ratio = x.sum(1) / x.norm(dim=1).clamp(min=1e-12)
    return (c**0.5 - ratio) / (c**0.5 - 1)


def participation_ratio(phi: torch.Tensor, live: torch.Tensor | None = None, scaled: bool = True) -> torch.Tensor:
    """Per-image effective number of active channels, (sum x)^2 / sum x^2 of the live channels (each scaled by
    its maximum when ``scaled``), as a fraction of the live channels (1: all equally active; 1/C: one channel)."""
    x = _values(phi, live, scaled)
    return x.sum(1) ** 2 / (x.pow(2).sum(1).clamp(min=1e-24) * x.shape[1])


def own_max_active(phi: torch.Tensor, tau: float = DEFAULT_TAU, live: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean (N, C_live): live channel c is active for image i when phi[i, c] > tau * max_c' phi[i, c'], a
    fraction of the image's own largest channel (claims 1 and 3 in the paper's sense: no per-channel scaling)."""
    if not 0 <= tau < 1:
        raise ValueError(f"tau must be in [0, 1), got {tau}")
    x = _values(phi, live, scaled=False)
    return (x > tau * x.max(dim=1, keepdim=True).values) & (x > 0)


def own_max_fraction(phi: torch.Tensor, tau: float = DEFAULT_TAU, live: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image share of the live channels above ``tau`` times the image's own largest channel (claim 1)."""
    return own_max_active(phi, tau, live).float().mean(1)


def log_cv(phi: torch.Tensor, live: torch.Tensor | None = None) -> torch.Tensor:
    """Per live channel, log10 of its coefficient of variation across the images (std / mean): high for a channel
    that fires on few images (selective), low for one that is on for all (claim 2, no threshold)."""
    x = _values(phi, live, scaled=False).double()
    return (x.std(0) / x.mean(0).clamp(min=1e-12)).clamp(min=1e-12).log10()


def top_mass(phi: torch.Tensor, k: int, live: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image share of the normalised live channels' total carried by its k largest channels."""
    x = normalise(phi, live)
    if not 1 <= k <= x.shape[1]:
        raise ValueError(f"k must be in [1, {x.shape[1]}] (live channels), got {k}")
    return x.topk(k, dim=1).values.sum(1) / x.sum(1).clamp(min=1e-12)


def tau_sweep(phi: torch.Tensor, taus) -> torch.Tensor:
    """Median per-image active fraction of the live channels at each threshold tau (the threshold curve)."""
    live = ~relative_dead(phi)
    return torch.stack([active_fraction(phi[:, live], float(t)).median() for t in taus])


def own_max_sweep(phi: torch.Tensor, taus) -> torch.Tensor:
    """Median per-image share of live channels above ``tau`` times the image's own largest channel, at each tau
    (claim 1's threshold curve, no per-channel scaling)."""
    live = ~relative_dead(phi)
    return torch.stack([own_max_fraction(phi, float(t), live).median() for t in taus])


def most_variable(phi: torch.Tensor, n: int = 3, min_mass: float = 0.1) -> torch.Tensor:
    """The n channels with the highest coefficient of variation across the images among those that carry real
    mass (their maximum reaches ``min_mass`` of the largest channel's): the most selective, with no threshold."""
    cmax = phi.max(dim=0).values
    ok = torch.nonzero(cmax >= min_mass * cmax.max()).squeeze(1)
    cv = phi[:, ok].std(0) / phi[:, ok].mean(0).clamp(min=1e-12)
    return ok[cv.argsort(descending=True)[:n]]
