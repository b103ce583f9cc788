"""Analyses of a representation (SPEC section 3, claims 1-4): sparsity, channel selectivity,
active-set overlap, nearest neighbours, clustering and a linear probe.

Threshold rule for "active" (documented once, used everywhere): channel c is active for
image i when phi[i, c] > tau * max_j phi[j, c], i.e. above a fraction ``tau`` (default 0.1)
of that channel's maximum over the data set analysed. A channel whose maximum is zero on
the whole set is "dead" and never active.
"""
from __future__ import annotations

import math

import numpy as np
import torch

DEFAULT_TAU = 0.1


def dead_channels(phi: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Boolean (C,) mask of channels that are (numerically) zero on every image."""
    return phi.max(dim=0).values <= eps


def relative_dead(phi: torch.Tensor, rel: float = 0.01) -> torch.Tensor:
    """Boolean (C,) mask of channels whose maximum over the images is below ``rel`` times the largest
    channel's maximum: the relative dead-channel rule (nearly silent, not only exactly zero)."""
    if not 0 <= rel < 1:
        raise ValueError(f"rel must be in [0, 1), got {rel}")
    cmax = phi.max(dim=0).values
    return cmax < rel * cmax.max()


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


def selectivity_split(freq: torch.Tensor, dead: torch.Tensor, selective_below: float = 0.3,
                      nonselective_above: float = 0.9) -> dict[str, torch.Tensor]:
    """Split live channels by activation frequency into selective / intermediate / non-selective (claim 2)."""
    live = ~dead
    return {"selective": live & (freq < selective_below),
            "non-selective": live & (freq > nonselective_above),
            "intermediate": live & (freq >= selective_below) & (freq <= nonselective_above),
            "dead": dead.clone()}


def jaccard_matrix(mask: torch.Tensor) -> torch.Tensor:
    """Pairwise Jaccard index |A_i & A_j| / |A_i | A_j| of boolean active sets (N, C) -> (N, N)."""
    m = mask.float()
    inter = m @ m.T
    sizes = m.sum(1)
    union = sizes[:, None] + sizes[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))


def overlap_within_across(mask: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Mean Jaccard overlap of active sets for pairs of the same class vs of different classes (claim 3),
    and their ratio (NaN when no pair spans two classes or the across-class overlap is zero)."""
    J = jaccard_matrix(mask)
    same = labels[:, None] == labels[None, :]
    off = ~torch.eye(len(labels), dtype=torch.bool)
    within, across = J[same & off], J[~same]
    w = within.mean().item() if within.numel() else float("nan")
    a = across.mean().item() if across.numel() else float("nan")
    return {"within": w, "across": a, "ratio": w / a if a > 0 else float("nan")}


def overlap_ratio(mask: torch.Tensor, labels: torch.Tensor) -> float:
    """Within-class over across-class mean Jaccard overlap of active sets (claim 3): 1 means no class structure."""
    return overlap_within_across(mask, labels)["ratio"]


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
        d = torch.cdist(q[i:i + chunk], b)
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


def knn_scores(features: torch.Tensor, labels: torch.Tensor, k: int = 10,
               query: torch.Tensor | None = None, query_labels: torch.Tensor | None = None) -> dict[str, float]:
    """k-NN label agreement (mean fraction of same-label neighbours = precision@k) and majority-vote accuracy.

    Leave-one-out within ``features`` unless a separate query set is given (claim 4).
    """
    if k < 1 or k >= features.shape[0]:
        raise ValueError(f"k must be in [1, {features.shape[0] - 1}], got {k}")
    per = knn_per_query(features, labels, k, query, query_labels)
    return {"agreement": per["agreement"].mean().item(), "accuracy": per["correct"].mean().item()}


def knn_per_query(features: torch.Tensor, labels: torch.Tensor, k: int = 10, query: torch.Tensor | None = None,
                  query_labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per query: the fraction of its k neighbours that share its label, and whether the vote is right
    (the per-image scores that the bootstrap intervals resample)."""
    loo = query is None
    q, ql = (features, labels) if loo else (query, query_labels)
    nl = labels[_neighbours(q, features, k, exclude_self=loo)]
    n_classes = int(max(labels.max(), ql.max())) + 1
    return {"agreement": (nl == ql[:, None]).double().mean(1), "correct": (vote(nl, n_classes) == ql).double()}


def neighbours(features: torch.Tensor, query: torch.Tensor, k: int = 8) -> torch.Tensor:
    """Indices of each query's k nearest rows of ``features`` (for neighbour image grids)."""
    return _neighbours(query, features, k, exclude_self=False)


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Cluster purity: fraction of points whose cluster's majority label is their label."""
    total = 0
    for c in np.unique(clusters):
        total += np.bincount(labels[clusters == c]).max()
    return total / len(labels)


def kmeans_scores(features: torch.Tensor, labels: torch.Tensor, n_clusters: int | None = None,
                  restarts: int = 10, seed: int = 0) -> dict[str, float]:
    """k-means++ with restarts, scored against labels by NMI, ARI and purity (claim 4)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    y = labels.numpy()
    k = n_clusters or len(np.unique(y))
    km = KMeans(n_clusters=k, init="k-means++", n_init=restarts, random_state=seed).fit(features.double().numpy())
    c = km.labels_
    return {"nmi": float(normalized_mutual_info_score(y, c)), "ari": float(adjusted_rand_score(y, c)),
            "purity": float(purity(y, c))}


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 epochs: int = 300, lr: float = 1e-2, weight_decay: float = 1e-4, seed: int = 0) -> dict[str, float]:
    """One linear layer on standardised features, trained full-batch with Adam; held-out accuracy (claim 4)."""
    tr, te = standardize(train_x.float(), test_x.float())
    n_cls = int(max(train_y.max(), test_y.max())) + 1
    g = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(tr.shape[1], n_cls)
    with torch.no_grad():
        layer.weight.normal_(0, 0.01, generator=g)
        layer.bias.zero_()
    opt = torch.optim.Adam(layer.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        loss = torch.nn.functional.cross_entropy(layer(tr), train_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc_tr = (layer(tr).argmax(1) == train_y).float().mean().item()
        acc_te = (layer(te).argmax(1) == test_y).float().mean().item()
    return {"train_accuracy": acc_tr, "test_accuracy": acc_te}


def sparsity_summary(phi: torch.Tensor, tau: float = DEFAULT_TAU) -> dict[str, float]:
    """The numbers behind claims 1-2 for one representation: dead channels, active fraction, selectivity."""
    dead = dead_channels(phi)
    frac = active_fraction(phi, tau)
    freq = channel_frequency(phi, tau)
    split = selectivity_split(freq, dead)
    q = torch.quantile(frac, torch.tensor([0.1, 0.5, 0.9]))
    return {"channels": phi.shape[1], "dead": int(dead.sum()), "active_frac_p10": q[0].item(),
            "active_frac_median": q[1].item(), "active_frac_p90": q[2].item(),
            "selective": int(split["selective"].sum()), "non_selective": int(split["non-selective"].sum()),
            "intermediate": int(split["intermediate"].sum())}


def compare(train_feats: dict[str, torch.Tensor], train_labels: torch.Tensor,
            test_feats: dict[str, torch.Tensor], test_labels: torch.Tensor, k: int = 10,
            standardized: bool = True, kmeans_restarts: int = 10, probe_epochs: int = 300,
            seed: int = 0) -> list[dict]:
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
        rows.append({"representation": name, "dim": tr.shape[1], "knn_agreement": kn["agreement"],
                     "knn_accuracy": kn["accuracy"], **km, "probe_accuracy": pr["test_accuracy"]})
    return rows


def top_images(phi: torch.Tensor, channel: int, k: int = 8) -> torch.Tensor:
    """Indices of the k images on which a channel responds most (to see what a selective channel encodes)."""
    return phi[:, channel].topk(min(k, phi.shape[0])).indices


def most_selective(phi: torch.Tensor, n: int = 3, tau: float = DEFAULT_TAU, min_frequency: float = 0.005) -> torch.Tensor:
    """The n live channels active on the fewest images (but on at least ``min_frequency`` of them)."""
    freq = channel_frequency(phi, tau)
    ok = (~dead_channels(phi)) & (freq >= min_frequency)
    idx = torch.nonzero(ok).squeeze(1)
    return idx[freq[idx].argsort()[:n]]


def embed_2d(features: torch.Tensor, method: str = "pca", seed: int = 0) -> np.ndarray:
    """A 2-D map of standardised features by PCA or t-SNE (for pictures, not for scores)."""
    x = standardize(features.double())[0].numpy()
    if method == "pca":
        from sklearn.decomposition import PCA
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE
        return TSNE(n_components=2, init="pca", perplexity=min(30.0, (len(x) - 1) / 3), random_state=seed).fit_transform(x)
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
        d = rms_distance(samples, base[s:s + chunk])
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
