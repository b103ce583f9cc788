"""Nearest neighbours in a representation (claim 4): standardised features, k-NN votes and scores per query, one table
per representation, and k-NN along the noise level."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


def standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """z-score every feature with the mean and std of ``train`` (constant features map to 0)."""
    mu, sd = train.mean(0), train.std(0)
    sd = torch.where(sd > 1e-8, sd, torch.ones_like(sd))
    return [(t - mu) / sd for t in (train, *others)]


def _neighbours(query: torch.Tensor, base: torch.Tensor, k: int, exclude_self: bool, chunk: int = 1024) -> torch.Tensor:
    """Indices (Nq, k) of the k Euclidean nearest neighbours in ``base`` of each query row."""
    q, b = query.double(), base.double()
    out = []
    for i in range(0, q.shape[0], chunk):
        d = torch.cdist(q[i : i + chunk], b)
        if exclude_self:
            rows = torch.arange(i, min(i + chunk, q.shape[0]))
            d[rows - i, rows] = float("inf")
        out.append(d.topk(k, largest=False).indices)
    return torch.cat(out)


def vote(neighbour_labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Majority label of each row of neighbour labels (Nq, k), nearest first; a tie goes to the label whose
    neighbours' ranks sum lower (each vote weighs 1 plus a bonus below 1/k that falls with the rank), and
    a tie in that too to the smaller label."""
    k = neighbour_labels.shape[1]
    rank_bonus = (k - torch.arange(k, dtype=torch.float64)) / (k * k + 1)
    onehot = torch.nn.functional.one_hot(neighbour_labels, n_classes).double()
    return (onehot * (1 + rank_bonus)[None, :, None]).sum(1).argmax(1)


def knn_predict(base: torch.Tensor, base_labels: torch.Tensor, query: torch.Tensor, k: int = 10) -> torch.Tensor:
    """The k-NN classifier (claim 4): each query's majority label among its k Euclidean nearest base rows."""
    if not 1 <= k <= base.shape[0]:
        raise ValueError(f"k must be in [1, {base.shape[0]}], got {k}")
    nn_idx = _neighbours(query, base, k, exclude_self=False)
    return vote(base_labels[nn_idx], int(base_labels.max()) + 1)


def knn_scores(
    features: torch.Tensor,
    labels: torch.Tensor,
    k: int = 10,
    query: torch.Tensor | None = None,
    query_labels: torch.Tensor | None = None,
) -> dict[str, float]:
    """k-NN label agreement (mean fraction of same-label neighbours = precision@k) and majority-vote accuracy.

    Leave-one-out within ``features`` unless a separate query set is given (claim 4).
    """
    if k < 1 or k >= features.shape[0]:
        raise ValueError(f"k must be in [1, {features.shape[0] - 1}], got {k}")
    per = knn_per_query(features, labels, k, query, query_labels)
    return {"agreement": per["agreement"].mean().item(), "accuracy": per["correct"].mean().item()}


def knn_per_query(
    features: torch.Tensor,
    labels: torch.Tensor,
    k: int = 10,
    query: torch.Tensor | None = None,
    query_labels: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per query: the fraction of its k neighbours that share its label, and whether the vote is right
    (the per-image scores that the bootstrap intervals resample)."""
    loo = query is None
    q, ql = (features, labels) if loo else (query, query_labels)
    nl = labels[_neighbours(q, features, k, exclude_self=loo)]
    n_classes = int(max(labels.max(), ql.max())) + 1
    return {"agreement": (nl == ql[:, None]).double().mean(1), "correct": (vote(nl, n_classes) == ql).double()}


def knn_by_representation(
    train_feats: Mapping[str, torch.Tensor],
    train_labels: torch.Tensor,
    test_feats: Mapping[str, torch.Tensor],
    test_labels: torch.Tensor,
    k: int = 10,
    keys: Sequence[str] | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """Claim 4's k-NN scores of several representations: for each (``keys``, in that order; by default every
    representation of ``train_feats``; keys it lacks, such as texture statistics on a data set without them, are
    skipped), each held-out query's share of its k nearest training images with its label ("agreement") and
    whether their vote is right ("correct"), on features z-scored with training statistics."""
    out = {}
    for key in keys if keys is not None else list(train_feats):
        if key not in train_feats:
            continue
        if key not in test_feats:
            raise ValueError(f"representation {key!r} has training features but no held-out ones")
        a, b = standardize(train_feats[key].double(), test_feats[key].double())
        out[key] = knn_per_query(a, train_labels, k, b, test_labels)
    if not out:
        raise ValueError(f"none of the representations {list(keys or [])} is among {list(train_feats)}")
    return out


def knn_versus_sigma(grid: torch.Tensor, labels: torch.Tensor, k: int = 10) -> list[float]:
    """Leave-one-out k-NN agreement (standardised features) at each noise level of a phi grid (S, N, C): one value
    per level, in the grid's order."""
    if grid.ndim != 3 or grid.shape[1] != len(labels):
        raise ValueError(f"grid must be (levels, {len(labels)} images, channels), got {tuple(grid.shape)}")
    return [knn_scores(standardize(g.double())[0], labels, k)["agreement"] for g in grid]


def neighbours(features: torch.Tensor, query: torch.Tensor, k: int = 8) -> torch.Tensor:
    """Indices of each query's k nearest rows of ``features`` (for neighbour image grids)."""
    return _neighbours(query, features, k, exclude_self=False)


def restrict(features: dict[str, torch.Tensor], labels: torch.Tensor, keep: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """The rows of every feature whose label is in ``keep``, labels renumbered 0..len(keep)-1."""
    rows = torch.isin(labels, keep)
    remap = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long)
    remap[keep] = torch.arange(len(keep))
    return {k: v[rows] for k, v in features.items()}, remap[labels[rows]]
