"""Distances in a representation (SPEC section 3, claim 4): nearest neighbours, clustering, linear probes, 2-D maps
and scores side by side; and the pixel distances that score samples (claims 5-6). Sparsity (claims 1-3) lives in
``sparsity``. The parts: ``neighbours``, ``clusters``, ``probes``, ``scores``, ``sample_distances``."""

from .clusters import cluster_scores, cluster_table, embed_2d, kmeans, kmeans_scores, purity
from .neighbours import (
    knn_by_representation,
    knn_per_query,
    knn_predict,
    knn_scores,
    knn_versus_sigma,
    neighbours,
    restrict,
    standardize,
    vote,
)
from .probes import AUTHORS_PROBE, linear_probe, probe_table
from .sample_distances import energy_distance, mean_pairwise, nearest_image, rms_distance
from .scores import class_differences, compare, knn_intervals, mean_intervals, paired_differences, side_of_zero

__all__ = [
    "AUTHORS_PROBE",
    "class_differences",
    "cluster_scores",
    "cluster_table",
    "compare",
    "embed_2d",
    "energy_distance",
    "kmeans",
    "kmeans_scores",
    "knn_by_representation",
    "knn_intervals",
    "knn_per_query",
    "knn_predict",
    "knn_scores",
    "knn_versus_sigma",
    "linear_probe",
    "mean_intervals",
    "mean_pairwise",
    "nearest_image",
    "neighbours",
    "paired_differences",
    "probe_table",
    "purity",
    "restrict",
    "rms_distance",
    "side_of_zero",
    "standardize",
    "vote",
]
