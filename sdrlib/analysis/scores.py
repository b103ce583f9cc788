"""Scores of several representations side by side (claim 4): mean intervals, paired differences, per-class differences,
and the compact comparison table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..stats import Interval, mean_ci, paired_diff_ci
from .clusters import kmeans_scores
from .neighbours import knn_scores, standardize
from .probes import linear_probe


def mean_intervals(
    per_query: Mapping[str, Mapping[str, torch.Tensor]],
    columns: Mapping[str, str],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Interval]]:
    """{metric: {representation: mean with a bootstrap interval over queries}} of per-query scores
    (``per_query[representation][column]``); ``columns`` names each metric's column, e.g.
    {"10-NN agreement": "agreement"}. Metrics come in the order of ``columns``, representations in that of
    ``per_query``."""
    return {
        metric: {key: mean_ci(per[col], n_boot, seed=seed) for key, per in per_query.items()}
        for metric, col in columns.items()
    }


def knn_intervals(
    per_query: Mapping[str, Mapping[str, torch.Tensor]], k: int, n_boot: int = 1000, seed: int = 0
) -> dict[str, dict[str, Interval]]:
    """The k-NN table of claim 4 (:func:`knn_by_representation`'s scores): "{k}-NN agreement" and "{k}-NN accuracy"
    of every representation, each a mean with a bootstrap interval over queries."""
    return mean_intervals(per_query, {f"{k}-NN agreement": "agreement", f"{k}-NN accuracy": "correct"}, n_boot, seed)


def paired_differences(
    per_query: Mapping[str, Mapping[str, torch.Tensor]],
    against: str = "phi mid",
    column: str = "agreement",
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Interval]:
    """{representation: mean of ``against`` minus it}, each paired over the same queries (the interval resamples
    queries jointly), for every representation of ``per_query`` but ``against``."""
    if against not in per_query:
        raise ValueError(f"representation {against!r} is not among {list(per_query)}")
    ref = per_query[against][column]
    return {
        key: paired_diff_ci(ref, per[column], n_boot, seed=seed) for key, per in per_query.items() if key != against
    }


def side_of_zero(difference: Interval, above: str = "better", below: str = "worse", across: str = "tied") -> str:
    """A paired difference in a word: ``above`` when its whole interval lies above 0, ``below`` when below, and
    ``across`` when it reaches both sides (a description, not a claim's verdict: those use stats.verdict)."""
    return above if difference.above(0) else below if difference.below(0) else across


def class_differences(
    a: torch.Tensor,
    b: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    names: tuple[str, str] = ("a", "b"),
    top: int | None = None,
    width: int = 40,
) -> list[dict]:
    """Two per-query scores (e.g. the k-NN vote's correctness of two representations) class by class: per label,
    its name (cut to ``width`` characters), its number of queries, each score's mean over them (columns
    ``names``) and their difference; the ``top`` rows whose difference is largest in size first (ties in label
    order)."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape or a.shape != labels.shape:
        raise ValueError(
            f"scores and labels must have one shape, got {tuple(a.shape)}, {tuple(b.shape)}, {tuple(labels.shape)}"
        )
    rows = []
    for c in labels.unique().tolist():
        sel = labels == c
        x, y = a[sel].mean().item(), b[sel].mean().item()
        rows.append(
            {"class": classes[c][:width], "queries": int(sel.sum()), names[0]: x, names[1]: y, "difference": x - y}
        )
    rows.sort(key=lambda r: -abs(r["difference"]))
    return rows[:top]


def compare(
    train_feats: dict[str, torch.Tensor],
    train_labels: torch.Tensor,
    test_feats: dict[str, torch.Tensor],
    test_labels: torch.Tensor,
    k: int = 10,
    standardized: bool = True,
    kmeans_restarts: int = 10,
    probe_epochs: int = 300,
    seed: int = 0,
) -> list[dict]:
    """One row per representation: k-NN agreement and accuracy (test queries against the train set),
    k-means NMI / ARI / purity on the test set, and linear-probe test accuracy (claim 4).

    With ``standardized``, each feature is z-scored with train statistics first, so that a
    few large channels do not dominate Euclidean distances; raw distances are the other option.
    """
    rows = []
    for name in train_feats:
        tr, te = train_feats[name].double(), test_feats[name].double()
        if standardized:
            tr, te = standardize(tr, te)
        kn = knn_scores(tr, train_labels, k, query=te, query_labels=test_labels)
        km = kmeans_scores(te, test_labels, restarts=kmeans_restarts, seed=seed)
        pr = linear_probe(tr, train_labels, te, test_labels, epochs=probe_epochs, seed=seed)
        rows.append(
            {
                "representation": name,
                "dim": tr.shape[1],
                "knn_agreement": kn["agreement"],
                "knn_accuracy": kn["accuracy"],
                **km,
                "probe_accuracy": pr["test_accuracy"],
            }
        )
    return rows
