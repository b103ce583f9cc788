"""Distances in a representation (SPEC section 3, claim 4): nearest neighbours, clustering, a linear
probe, 2-D maps; and the pixel distances that score samples (claims 5-6). Sparsity (claims 1-3) lives
in ``sparsity``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .stats import Interval, half_sample, mean_ci, paired_diff_ci


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


AUTHORS_PROBE = "authors' (raw, to convergence)"


def probe_table(
    train_feats: Mapping[str, torch.Tensor],
    train_labels: torch.Tensor,
    test_feats: Mapping[str, torch.Tensor],
    test_labels: torch.Tensor,
    keys: Sequence[str] | None = None,
    epochs: int = 300,
    max_epochs: int = 3000,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[list[dict], dict[str, dict[str, Interval]]]:
    """Linear probes of each representation (``keys``; those not in ``train_feats`` are skipped), held-out accuracy
    with a bootstrap interval over the held-out images: ours (standardised features, Adam 1e-2, ``epochs``) on
    every one, and the authors' (raw features, Adam 1e-3, no weight decay, until the loss stops improving, at most
    ``max_epochs``) on the phi representations (names starting with "phi" or "untrained phi"). Returns the rows
    ({"representation", "ours (standardised)", and for phi the authors' accuracy and its epochs}) and the
    intervals as {"probe, ours": {...}, "probe, authors'": {...}}."""
    rows: list[dict] = []
    scores: dict[str, dict[str, Interval]] = {}
    for key in keys if keys is not None else list(train_feats):
        if key not in train_feats:
            continue
        tr, te = train_feats[key], test_feats[key]
        ours = linear_probe(tr, train_labels, te, test_labels, epochs=epochs, seed=seed)
        iv = mean_ci(ours["correct"], n_boot, seed=seed)
        scores.setdefault("probe, ours", {})[key] = iv
        row = {"representation": key, "ours (standardised)": iv}
        if key.startswith(("phi", "untrained phi")):  # the authors' protocol is a probe of phi
            theirs = linear_probe(
                tr,
                train_labels,
                te,
                test_labels,
                epochs=max_epochs,
                lr=1e-3,
                weight_decay=0.0,
                seed=seed,
                standardized=False,
                tol=1e-4,
            )
            iv = mean_ci(theirs["correct"], n_boot, seed=seed)
            scores.setdefault("probe, authors'", {})[key] = iv
            row.update({AUTHORS_PROBE: iv, "epochs (authors')": theirs["epochs"]})
        rows.append(row)
    return rows, scores


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


def knn_versus_sigma(grid: torch.Tensor, labels: torch.Tensor, k: int = 10) -> list[float]:
    """Leave-one-out k-NN agreement (standardised features) at each noise level of a phi grid (S, N, C): one value
    per level, in the grid's order."""
    if grid.ndim != 3 or grid.shape[1] != len(labels):
        raise ValueError(f"grid must be (levels, {len(labels)} images, channels), got {tuple(grid.shape)}")
    return [knn_scores(standardize(g.double())[0], labels, k)["agreement"] for g in grid]


def neighbours(features: torch.Tensor, query: torch.Tensor, k: int = 8) -> torch.Tensor:
    """Indices of each query's k nearest rows of ``features`` (for neighbour image grids)."""
    return _neighbours(query, features, k, exclude_self=False)


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


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    epochs: int = 300,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    seed: int = 0,
    standardized: bool = True,
    tol: float | None = None,
) -> dict:
    """One linear layer trained full-batch with Adam (claim 4); held-out accuracy and per-query correctness.

    Ours: standardised features, lr 1e-2, a fixed number of epochs. The authors': raw phi, lr 1e-3, no weight
    decay, trained to convergence: pass ``standardized=False, lr=1e-3, weight_decay=0, tol=1e-6`` and a large
    ``epochs``; training then stops when the loss improves by less than ``tol`` (relative) over 100 epochs."""
    tr, te = standardize(train_x.float(), test_x.float()) if standardized else (train_x.float(), test_x.float())
    n_cls = int(max(train_y.max(), test_y.max())) + 1
    g = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(tr.shape[1], n_cls)
    with torch.no_grad():
        layer.weight.normal_(0, 0.01, generator=g)
        layer.bias.zero_()
    opt = torch.optim.Adam(layer.parameters(), lr=lr, weight_decay=weight_decay)
    last, done = float("inf"), 0
    for done in range(1, epochs + 1):
        loss = torch.nn.functional.cross_entropy(layer(tr), train_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if tol is not None and done % 100 == 0:
            if last - loss.item() < tol * abs(last):
                break
            last = loss.item()
    with torch.no_grad():
        correct = (layer(te).argmax(1) == test_y).double()
        acc_tr = (layer(tr).argmax(1) == train_y).float().mean().item()
    return {
        "train_accuracy": acc_tr,
        "test_accuracy": correct.mean().item(),
        "correct": correct,
        "epochs": done,
        "final_loss": loss.item(),
    }


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


def restrict(features: dict[str, torch.Tensor], labels: torch.Tensor, keep: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """The rows of every feature whose label is in ``keep``, labels renumbered 0..len(keep)-1."""
    rows = torch.isin(labels, keep)
    remap = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long)
    remap[keep] = torch.arange(len(keep))
    return {k: v[rows] for k, v in features.items()}, remap[labels[rows]]


# ------------------------------------------------------------------ samples (chapter 4)


def rms_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise root-mean-square pixel distance between two image sets: (Na, Nb)."""
    return torch.cdist(a.flatten(1).double(), b.flatten(1).double()) / math.sqrt(a[0].numel())


def nearest_image(samples: torch.Tensor, base: torch.Tensor, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """For each sample, the RMS pixel distance to its nearest image in ``base`` and that image's index
    (the memorisation check)."""
    best_d = torch.full((samples.shape[0],), float("inf"), dtype=torch.float64)
    best_i = torch.zeros(samples.shape[0], dtype=torch.long)
    for s in range(0, base.shape[0], chunk):
        d = rms_distance(samples, base[s : s + chunk])
        m, i = d.min(1)
        better = m < best_d
        best_d[better], best_i[better] = m[better], i[better] + s
    return best_d, best_i


def mean_pairwise(samples: torch.Tensor) -> float:
    """Mean RMS pixel distance between distinct samples of one set (diversity)."""
    d = rms_distance(samples, samples)
    n = d.shape[0]
    return (d.sum() / (n * (n - 1))).item() if n > 1 else float("nan")


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Energy distance between two sample sets in RMS pixel units, 2E|a-b| - E|a-a'| - E|b-b'|
    (V-statistic: all pairs, so that a set is at distance 0 from itself)."""
    return (2 * rms_distance(a, b).mean() - rms_distance(a, a).mean() - rms_distance(b, b).mean()).item()
