"""Uncertainty of every reported score: percentile bootstrap intervals over images (paired when two
representations are compared on the same images), a nested bootstrap over networks then images (trained
seeds and control seeds), rank correlation with an interval and a power estimate, Holm's family-wise
correction, and the one rule that turns an interval into a verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

VERDICTS = ("holds", "holds weakly", "fails", "undecided")


@dataclass(frozen=True)
class Interval:
    """A point estimate and its two-sided confidence interval."""

    value: float
    lo: float
    hi: float
    level: float = 0.95
    p: float | None = None  # one-sided bootstrap p-value of "the effect is not above 0", where computed

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.lo:.3f}, {self.hi:.3f}]"

    def fmt(self, spec: str = ".3f") -> str:
        """The interval as text with a format spec, e.g. "+0.052 [+0.040, +0.066]" for "+.3f"."""
        return f"{self.value:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}]"

    def above(self, x: float) -> bool:
        """The whole interval lies above x."""
        return self.lo > x

    def below(self, x: float) -> bool:
        """The whole interval lies below x."""
        return self.hi < x


def _indices(n: int, n_boot: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (n_boot, n), generator=g)


def bootstrap(
    stat: Callable[[torch.Tensor], float], n: int, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Percentile bootstrap of any statistic of n items: ``stat(idx)`` evaluated on resampled indices."""
    if n < 2:
        raise ValueError(f"a bootstrap needs at least 2 items, got {n}")
    point = float(stat(torch.arange(n)))
    reps = np.array([float(stat(idx)) for idx in _indices(n, n_boot, seed)])
    reps = reps[np.isfinite(reps)]
    a = (1 - level) / 2
    return Interval(point, float(np.quantile(reps, a)), float(np.quantile(reps, 1 - a)), level)


def half_sample(
    stat: Callable[[torch.Tensor], float], n: int, n_rep: int = 200, level: float = 0.95, seed: int = 0
) -> Interval:
    """Interval of a statistic that duplicated items would bias (NMI, ARI, purity of a fixed clustering):
    recompute it on random halves drawn without replacement, whose spread matches that of the full-sample
    statistic (half-sampling), and centre that spread on the full-sample value."""
    if n < 4:
        raise ValueError(f"half-sampling needs at least 4 items, got {n}")
    point = float(stat(torch.arange(n)))
    g = torch.Generator().manual_seed(seed)
    reps = np.array([float(stat(torch.randperm(n, generator=g)[: n // 2].sort().values)) for _ in range(n_rep)])
    reps = reps[np.isfinite(reps)] - np.mean(reps[np.isfinite(reps)])
    a = (1 - level) / 2
    return Interval(point, point + float(np.quantile(reps, a)), point + float(np.quantile(reps, 1 - a)), level)


def mean_ci(values: torch.Tensor, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """Bootstrap interval of the mean of per-image scores (e.g. each query's k-NN agreement)."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    means = v[_indices(len(v), n_boot, seed)].mean(1).numpy()
    a = (1 - level) / 2
    return Interval(v.mean().item(), float(np.quantile(means, a)), float(np.quantile(means, 1 - a)), level)


def paired_diff_ci(
    a: torch.Tensor, b: torch.Tensor, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Interval of mean(a) - mean(b) for scores of the same images, resampling images jointly (paired)."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return mean_ci(a - b, n_boot, level, seed)


def spearman(x, y) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(x), np.asarray(y)).statistic)


def spearman_ci(x, y, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """Spearman correlation with a bootstrap interval over the (x, y) pairs."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return bootstrap(lambda idx: spearman(x[idx.numpy()], y[idx.numpy()]), len(x), n_boot, level, seed)


def spearman_power(n: int, rho: float, level: float = 0.95, n_sim: int = 2000, seed: int = 0) -> float:
    """Chance that n pairs with a true (Gaussian-copula) correlation rho give a Spearman correlation
    significantly different from 0 (two-sided test at 1 - level, Fisher z with the Spearman variance)."""
    rng = np.random.default_rng(seed)
    z_crit = float(abs(np.quantile(rng.standard_normal(200_000), (1 - level) / 2)))
    cov = [[1, rho], [rho, 1]]
    hits = 0
    for _ in range(n_sim):
        xy = rng.multivariate_normal([0, 0], cov, size=n)
        r = spearman(xy[:, 0], xy[:, 1])
        z = math.atanh(max(min(r, 0.999999), -0.999999)) * math.sqrt((n - 3) / 1.06)
        hits += abs(z) > z_crit
    return hits / n_sim


def verdict(effect: Interval, min_effect: float = 0.0) -> str:
    """The one rule from an interval to a verdict on a claim stated as "effect > 0", with the smallest effect
    that counts (``min_effect``, stated before measuring): "fails" when the whole interval lies below
    ``min_effect`` (a negative effect, or one confidently too small to count), "holds" when it lies above both 0
    and ``min_effect``, "holds weakly" when it lies above 0 but may fall short of ``min_effect``, and
    "undecided" when it reaches both below 0 and above ``min_effect``. With ``min_effect`` 0: above 0 holds,
    below 0 fails, across 0 undecided."""
    if min_effect < 0:
        raise ValueError(f"min_effect must be >= 0, got {min_effect}")
    if effect.hi < min_effect or effect.hi < 0:
        return "fails"
    if effect.lo > 0:
        return "holds" if effect.lo >= min_effect else "holds weakly"
    return "undecided"


def nested_bootstrap(
    stat: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], float],
    n_trained: int,
    n_control: int,
    n_items: int,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    null: float = 0.0,
) -> Interval:
    """Percentile interval of a statistic of trained networks, control networks and items (images) that
    resamples each level: ``stat(t, c, i)`` is evaluated on trained-network indices ``t``, control-network
    indices ``c`` and item indices ``i`` drawn with replacement (a level with one network stays fixed), so the
    interval includes the spread over networks as well as over images. Also returns the one-sided p-value of
    "the effect is at most ``null``" (the share of resamples at or below it, with the +1 correction; pass a
    claim part's smallest effect that counts)."""
    if n_trained < 1 or n_control < 0:
        raise ValueError(f"need at least one trained network and no negative count, got {n_trained}, {n_control}")
    if n_items < 2:
        raise ValueError(f"a bootstrap needs at least 2 items, got {n_items}")
    g = torch.Generator().manual_seed(seed)

    def draw(n: int) -> torch.Tensor:
        return torch.randint(0, n, (n,), generator=g) if n > 1 else torch.zeros(n, dtype=torch.long)

    point = float(stat(torch.arange(n_trained), torch.arange(n_control), torch.arange(n_items)))
    reps = np.array([float(stat(draw(n_trained), draw(n_control), draw(n_items))) for _ in range(n_boot)])
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        raise ValueError("every bootstrap resample gave a non-finite statistic")
    a = (1 - level) / 2
    p = (1 + int((reps <= null).sum())) / (1 + reps.size)
    return Interval(point, float(np.quantile(reps, a)), float(np.quantile(reps, 1 - a)), level, p)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control over a page of verdicts): the k-th
    smallest p times (m - k + 1), made monotone and capped at 1, returned in the input order."""
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1 or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must be a flat list in [0, 1], got {pvalues!r}")
    order = np.argsort(p, kind="stable")
    m = len(p)
    adj = np.maximum.accumulate(np.minimum(1.0, p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adj
    return out.tolist()


def _upper(d: np.ndarray) -> np.ndarray:
    """The entries above the diagonal of a square distance matrix, as a vector."""
    d = np.asarray(d, dtype=float)
    if d.ndim != 2 or d.shape[0] != d.shape[1] or d.shape[0] < 3:
        raise ValueError(f"a distance matrix must be square with at least 3 rows, got shape {d.shape}")
    return d[np.triu_indices(d.shape[0], 1)]


def _ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks (Spearman's transform)."""
    from scipy.stats import rankdata

    return rankdata(v)


def _partial_r(a: np.ndarray, b: np.ndarray, controls: list[np.ndarray]) -> float:
    """Correlation of a and b after removing from each its least-squares fit on the controls (and a constant)."""
    if controls:
        x = np.column_stack([np.ones_like(a), *controls])
        a = a - x @ np.linalg.lstsq(x, a, rcond=None)[0]
        b = b - x @ np.linalg.lstsq(x, b, rcond=None)[0]
    return float(np.corrcoef(a, b)[0, 1])


def mantel(
    a,
    b,
    controls: Sequence = (),
    n_perm: int = 999,
    rank: bool = True,
    seed: int = 0,
) -> dict[str, float]:
    """Mantel test of two distance matrices over the same items (claim 6): the correlation of their entries
    above the diagonal (Spearman's by default), and its one-sided permutation p-value, permuting the items of
    ``a`` (rows and columns together), which keeps each matrix's structure. With ``controls`` (other distance
    matrices of the same items), the partial Mantel test: both matrices' entries are first residualised on the
    controls' (Smouse, Long & Sokal 1986), so the test asks whether ``a`` and ``b`` agree beyond what the
    controls explain."""
    return mantel_mean([(a, b)], controls, n_perm, rank, seed)


def mantel_mean(
    pairs: Sequence[tuple],
    controls: Sequence = (),
    n_perm: int = 999,
    rank: bool = True,
    seed: int = 0,
) -> dict[str, float]:
    """The (partial) Mantel test of several networks over the same items (claim 6 on a reference and its seeds):
    ``pairs`` holds one (a, b) pair of distance matrices per network, ``controls`` the matrices shared by all. The
    statistic is the mean over networks of ``mantel``'s correlation; each permutation permutes the items of every
    ``a`` alike, so the null is "no network's a agrees with its b beyond the controls". One pair: ``mantel``."""
    if not pairs:
        raise ValueError("mantel_mean needs at least one (a, b) pair of distance matrices")
    mats = [(np.asarray(a, dtype=float), np.asarray(b, dtype=float)) for a, b in pairs]
    shape = mats[0][0].shape
    if any(m.shape != shape for ab in mats for m in ab) or any(np.shape(c) != shape for c in controls):
        raise ValueError(f"distance matrices must share one shape, got {[m.shape for ab in mats for m in ab]}")
    f = _ranks if rank else (lambda v: v)
    vc = [f(_upper(c)) for c in controls]
    vb = [f(_upper(b)) for _, b in mats]

    def stat(p: np.ndarray | None) -> float:
        return float(np.mean([_partial_r(f(_upper(a if p is None else a[np.ix_(p, p)])), v, vc)
                              for (a, _), v in zip(mats, vb)]))  # fmt: skip

    r = stat(None)
    rng = np.random.default_rng(seed)
    n = shape[0]
    hits = sum(stat(rng.permutation(n)) >= r for _ in range(n_perm))
    return {"r": r, "p": (1 + hits) / (1 + n_perm), "pairs": n * (n - 1) // 2, "n_perm": n_perm}
