"""Who is near whom in phi: the nearest-neighbour ranking of one image and the per-image label agreement of its
nearest neighbours, the measures behind claim 4 (Euclidean distances in phi are semantic) within one set."""

from __future__ import annotations

import numpy as np
import torch

from .. import analysis


def ranking(features: torch.Tensor, query: int, standardized: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """All images ranked by Euclidean distance to image ``query`` of the same set (features z-scored over the
    set when ``standardized``): (order, distances in that order); the query comes first (distance 0)."""
    if not 0 <= int(query) < features.shape[0]:
        raise ValueError(f"query must be in [0, {features.shape[0] - 1}], got {query}")
    f = features.double()
    if standardized:
        f = analysis.standardize(f)[0]
    d = (f - f[int(query)]).pow(2).sum(1).sqrt()
    order = torch.from_numpy(np.lexsort((np.arange(len(d)) != int(query), d.numpy())).copy())
    return order, d[order]


def neighbour_agreement(features: torch.Tensor, labels: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Per image, the fraction of its k nearest other images (standardised features) that share its label."""
    if features.ndim != 2 or features.shape[0] != len(labels):
        raise ValueError(f"features must be (N, D) with N = {len(labels)} labels, got {tuple(features.shape)}")
    f = analysis.standardize(features.double())[0]
    return analysis.knn_per_query(f, labels, k)["agreement"]
