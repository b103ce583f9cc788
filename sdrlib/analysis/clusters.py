"""Clusters of a representation (claim 4): k-means++, NMI / ARI / purity with half-sample intervals, and 2-D maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..stats import Interval, half_sample
from .neighbours import standardize


def cluster_table(
    features: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    keys: Sequence[str] | None = None,
    multiples: Sequence[int] = (1,),
    restarts: int = 10,
    n_rep: int = 200,
    seed: int = 0,
) -> tuple[list[dict], dict[str, dict[str, Interval]]]:
    """k-means++ (``restarts`` restarts) of each representation (``keys``; those not in ``features`` are skipped)
    on standardised features, at each count of clusters ``multiple x`` the number of labels (capped at half the
    images; each count once, smallest first), scored by NMI, ARI and purity against the labels, each with a
    half-sampling interval (the clustering fixed; :func:`sdrlib.stats.half_sample`). Returns the rows ({"clusters",
    "representation", "nmi", "ari", "purity"}, counts outer, representations inner) and the same intervals as
    {"k-means {count}: {score}": {representation: Interval}}."""
    y = labels.numpy()
    n_lab = len(np.unique(y))
    counts = sorted({min(m * n_lab, len(y) // 2) for m in multiples})
    rows: list[dict] = []
    scores: dict[str, dict[str, Interval]] = {}
    for n_cl in counts:
        for key in keys if keys is not None else list(features):
            if key not in features:
                continue
            c = kmeans(standardize(features[key].double())[0], n_cl, restarts, seed)
            row = {"clusters": n_cl, "representation": key}
            for m in ("nmi", "ari", "purity"):
                iv = half_sample(
                    lambda idx, m=m, c=c: cluster_scores(y[idx.numpy()], c[idx.numpy()])[m], len(y), n_rep, seed=seed
                )
                row[m] = iv
                scores.setdefault(f"k-means {n_cl}: {m}", {})[key] = iv
            rows.append(row)
    return rows, scores


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Cluster purity: fraction of points whose cluster's majority label is their label."""
    total = 0
    for c in np.unique(clusters):
        total += np.bincount(labels[clusters == c]).max()
    return total / len(labels)


def kmeans(features: torch.Tensor, n_clusters: int, restarts: int = 10, seed: int = 0) -> np.ndarray:
    """k-means++ cluster assignments with ``restarts`` restarts (the authors: k-means++, 10 restarts)."""
    from sklearn.cluster import KMeans

    if not 2 <= n_clusters <= features.shape[0]:
        raise ValueError(f"n_clusters must be in [2, {features.shape[0]}], got {n_clusters}")
    return (
        KMeans(n_clusters=n_clusters, init="k-means++", n_init=restarts, random_state=seed)
        .fit(features.double().numpy())
        .labels_
    )


def cluster_scores(labels: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    """NMI, ARI and purity of a clustering against labels."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "ari": float(adjusted_rand_score(labels, clusters)),
        "purity": float(purity(labels, clusters)),
    }


def kmeans_scores(
    features: torch.Tensor, labels: torch.Tensor, n_clusters: int | None = None, restarts: int = 10, seed: int = 0
) -> dict[str, float]:
    """k-means++ with restarts, scored against labels by NMI, ARI and purity (claim 4)."""
    y = labels.numpy()
    return cluster_scores(y, kmeans(features, n_clusters or len(np.unique(y)), restarts, seed))


def embed_2d(features: torch.Tensor, method: str = "pca", seed: int = 0) -> np.ndarray:
    """A 2-D map of standardised features by PCA or t-SNE (for pictures, not for scores)."""
    x = standardize(features.double())[0].numpy()
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(
            n_components=2, init="pca", perplexity=min(30.0, (len(x) - 1) / 3), random_state=seed
        ).fit_transform(x)
    raise ValueError(f"unknown embedding method {method!r}; expected 'pca' or 'tsne'")
