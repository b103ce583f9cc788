"""Health of a trained middle block (the recipe study): how many channels are dead, by the exact
rule and by the relative rule, and whether its phi already separates held-out images (10-NN)."""

from __future__ import annotations

import torch

from . import analysis, sparsity
from .representation import phi
from .unet import UNet


@torch.no_grad()
def middle_health(
    model: UNet,
    base: torch.Tensor,
    base_labels: torch.Tensor,
    query: torch.Tensor,
    query_labels: torch.Tensor,
    sigma: float = 0.2,
    n_noise: int = 1,
    k: int = 10,
    rel: float = 0.01,
    seed: int = 0,
    per_query: bool = False,
) -> dict:
    """Dead middle channels (exactly zero; maximum below ``rel`` of the largest channel's maximum, both
    over the query images) and the 10-NN label agreement of standardised phi, queries against ``base``;
    with ``per_query``, also each query's agreement (what a bootstrap interval resamples)."""
    pq = phi(model, query, sigma, n_noise, seed=seed)
    pb = phi(model, base, sigma, n_noise, seed=seed + 1)
    tr, te = analysis.standardize(pb.double(), pq.double())
    per = analysis.knn_per_query(tr, base_labels, k, query=te, query_labels=query_labels)["agreement"]
    out = {
        "channels": pq.shape[1],
        "dead_zero": int(sparsity.dead_channels(pq).sum()),
        "dead_relative": int(sparsity.relative_dead(pq, rel).sum()),
        "knn_agreement": per.mean().item(),
    }
    if per_query:
        out["knn_per_query"] = [round(v, 4) for v in per.tolist()]
    return out
