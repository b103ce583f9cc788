"""Claim 4 (SPEC section 3): Euclidean distances in phi are semantic. The middle block's k-NN label agreement
(held-out queries against training images, standardised features) must beat the best of every cheap control the
chapter measures (pixels, colour and texture statistics, untrained networks of the same architecture), paired
over queries; intervals resample trained networks, control networks, then queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .. import analysis, stats
from .catalogue import BY_KEY
from .rules import Part, Result


def knn_agreement(
    train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor, k: int = 10
) -> torch.Tensor:
    """Each held-out query's share of its k nearest training images (features z-scored with training
    statistics) that have its label (claim 4's per-query score)."""
    a, b = analysis.standardize(train.double(), test.double())
    return analysis.knn_per_query(a, train_labels, k, b, test_labels)["agreement"]


def _controls_table(controls: Mapping[str, Sequence[torch.Tensor]]) -> tuple[dict[str, torch.Tensor], int]:
    """Each control as a (networks, queries) table, and the number of control networks that are resampled (the
    kinds with more than one network must have the same number)."""
    tabs = {k: torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in vs]) for k, vs in controls.items()}
    multi = {len(t) for t in tabs.values() if len(t) > 1}
    if len(multi) > 1:
        raise ValueError(f"controls with several networks must have as many each, got {sorted(multi)}")
    return tabs, multi.pop() if multi else 1


def _networks(tab: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The resampled control networks' rows of a (networks, queries) table; a single network stays fixed."""
    return tab[c] if len(tab) > 1 else tab[:1]


def distances_claim(
    trained: Sequence[torch.Tensor],
    controls: Mapping[str, Sequence[torch.Tensor]],
    n_boot: int = 1000,
    seed: int = 0,
) -> Result:
    """Claim 4 from per-query k-NN agreements on the same queries: ``trained`` one array per trained network,
    ``controls`` {name: one array per network (untrained seeds) or a single array (a fixed statistic)}. The
    part "beats the best control" is the trained mean minus the highest control mean, the best control chosen
    anew in every resample (so that choosing it is part of the interval)."""
    if not trained or not controls:
        raise ValueError("need at least one trained network and one control")
    t_tab = torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in trained])
    c_tabs, n_control = _controls_table(controls)
    n = t_tab.shape[1]
    if any(t.shape[1] != n for t in c_tabs.values()):
        raise ValueError(f"every score must cover the same {n} queries")

    def best(c, i):
        return max((_networks(tab, c)[:, i].mean()).item() for tab in c_tabs.values())

    spec = BY_KEY["distances"].part("beats the best control")
    effect = stats.nested_bootstrap(
        lambda t, c, i: t_tab[t][:, i].mean().item() - best(c, i),
        len(trained),
        n_control,
        n,
        n_boot,
        seed=seed,
        null=spec.min_effect,
    )
    rows = [
        {
            "representation": "phi mid (trained)",
            "networks": len(trained),
            "mean agreement": str(
                stats.nested_bootstrap(
                    lambda t, c, i: t_tab[t][:, i].mean().item(), len(trained), 0, n, n_boot, seed=seed
                )
            ),
        }
    ]
    for name, tab in c_tabs.items():
        mean = stats.nested_bootstrap(
            lambda t, c, i, tab=tab: _networks(tab, c)[:, i].mean().item(),
            1,
            len(tab),
            n,
            n_boot,
            seed=seed,
        )
        rows.append({"representation": name, "networks": len(tab), "mean agreement": str(mean)})
    return Result("distances", (Part(spec.name, effect, spec.min_effect),), len(trained), n_control, rows)


def untrained_agreements(
    checkpoint,
    control_seeds: Sequence[int],
    train_labels: torch.Tensor,
    test_labels: torch.Tensor,
    n_train: int,
    n_test: int,
    sigma: float,
    n_noise: int,
    k: int = 10,
    seed: int = 0,
    cache_in: str = "user",
    seed0: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Claim 4's untrained controls: per control seed, the per-query k-NN agreement of an untrained network's
    middle block on the images and noise of ``checkpoint_features`` (train: ``n_train`` images, ``seed``; test:
    ``n_test``, ``seed + 1``). ``seed0``: the features' own untrained twin (train, test phi), used for seed 0
    instead of computing it again."""
    from .. import feature_cache

    out = []
    for s in control_seeds:
        if s == 0 and seed0 is not None:
            tr, te = seed0
        else:
            (tr,) = feature_cache.control_phi(
                checkpoint, [s], "train", n_train, sigma, n_noise, seed=seed, cache_in=cache_in
            )
            (te,) = feature_cache.control_phi(
                checkpoint, [s], "test", n_test, sigma, n_noise, seed=seed + 1, cache_in=cache_in
            )
        out.append(knn_agreement(tr, train_labels, te, test_labels, k))
    return out


def run_agreements(
    runs: Mapping,
    train_labels: torch.Tensor,
    test_labels: torch.Tensor,
    n_train: int,
    n_test: int,
    sigma: float,
    n_noise: int,
    k: int = 10,
    seed: int = 0,
    cache_in: str = "user",
    device: str | torch.device = "cpu",
) -> list[torch.Tensor]:
    """Claim 4's trained networks beyond the reference (its full-budget seeds): the per-query k-NN agreement of
    each run's middle block, on the same images as the reference's (same data set, sizes and seeds)."""
    from .. import feature_cache

    tr = feature_cache.runs_phi(runs, "train", n_train, sigma, n_noise, seed=seed, cache_in=cache_in, device=device)
    te = feature_cache.runs_phi(runs, "test", n_test, sigma, n_noise, seed=seed + 1, cache_in=cache_in, device=device)
    return [knn_agreement(tr[r], train_labels, te[r], test_labels, k) for r in runs]
