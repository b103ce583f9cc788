"""The denoiser claim (chapter 1): the blind network beats the classical denoisers, which are told the true sigma.

The effect is the network's PSNR minus the best classical method's, image by image on the same noisy images, at the
judged noise level where that margin is smallest. The best method at each sigma and the worst judged sigma are
chosen anew in every resample, so the interval includes both choices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .. import stats
from .catalogue import BY_KEY
from .rules import Part, Result


def _per_image(table: Mapping[str, list[dict]], method: str) -> torch.Tensor:
    """(S, N) per-image PSNR of one method of a ``baselines.psnr_versus_sigma(..., per_image=True)`` table."""
    if method not in table:
        raise ValueError(f"method {method!r} is not in the table (methods {list(table)})")
    rows = table[method]
    if any("per_image" not in r for r in rows):
        raise ValueError(f"the table of {method!r} has no per-image PSNR: compute it with per_image=True")
    return torch.stack([torch.as_tensor(r["per_image"], dtype=torch.float64) for r in rows])


def margin_rows(
    table: Mapping[str, list[dict]],
    network: str,
    classical: Sequence[str],
    judged: Sequence[float],
    n_boot: int = 1000,
    seed: int = 0,
) -> list[dict]:
    """Per sigma of the table: the best classical method there (by mean) and the network's margin over it, paired
    over images, with a bootstrap interval; whether that sigma is judged."""
    sigmas = [float(r["sigma"]) for r in table[network]]
    net, cls = _per_image(table, network), {m: _per_image(table, m) for m in classical}
    rows = []
    for k, s in enumerate(sigmas):
        best = max(classical, key=lambda m: cls[m][k].mean().item())
        d = stats.paired_diff_ci(net[k], cls[best][k], n_boot, seed=seed)
        rows.append({"sigma": s, "best classical": best, "margin": d, "judged": _is_judged(s, judged)})
    return rows


def _is_judged(sigma: float, judged: Sequence[float]) -> bool:
    return any(abs(sigma - j) < 1e-9 for j in judged)


def denoiser_claim(
    table: Mapping[str, list[dict]],
    networks: Sequence[str],
    classical: Sequence[str],
    judged: Sequence[float],
    n_boot: int = 1000,
    seed: int = 0,
) -> Result:
    """The denoiser claim from a per-image PSNR table {method: rows per sigma} on one set of noisy images:
    ``networks`` the trained networks' columns (resampled when several), ``classical`` the methods told sigma,
    ``judged`` the noise levels the claim is judged at. The part "beats classical" is the smallest, over judged
    sigmas, of the networks' mean PSNR minus the best classical method's (both re-chosen in every resample)."""
    if not networks or not classical:
        raise ValueError("need at least one network and one classical method")
    sigmas = [float(r["sigma"]) for r in table[networks[0]]]
    ks = [k for k, s in enumerate(sigmas) if _is_judged(s, judged)]
    if not ks:
        raise ValueError(f"no judged sigma {list(judged)} is in the table's {sigmas}")
    net = torch.stack([_per_image(table, m)[ks] for m in networks])  # (T, S', N)
    cls = torch.stack([_per_image(table, m)[ks] for m in classical])  # (M, S', N)
    if net.shape[1:] != cls.shape[1:]:
        raise ValueError(f"every method must cover the same images, got {tuple(net.shape)} and {tuple(cls.shape)}")

    def worst_margin(t: torch.Tensor, c: torch.Tensor, i: torch.Tensor) -> float:
        ours = net[t][:, :, i].mean(dim=(0, 2))  # (S',)
        theirs = cls[:, :, i].mean(dim=2).max(dim=0).values  # the best classical method at each sigma
        return (ours - theirs).min().item()

    spec = BY_KEY["denoiser"].part("beats classical")
    effect = stats.nested_bootstrap(
        worst_margin, len(networks), 0, net.shape[2], n_boot, seed=seed, null=spec.min_effect
    )
    measures = [
        {
            "σ": r["sigma"],
            "best classical": r["best classical"],
            "margin dB [95 % CI]": r["margin"].fmt("+.2f"),
            "judged": "yes" if r["judged"] else "no",
        }
        for r in margin_rows(table, networks[0], classical, judged, n_boot, seed)
    ]
    return Result("denoiser", (Part(spec.name, effect, spec.min_effect),), len(networks), 0, measures)
