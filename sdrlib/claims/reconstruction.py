"""Claims 5 and 6 (SPEC section 3), chapter 4: what the self-guided samples share with their target.

Claim 5, self-guided samples share the target's content. A judge (a pixel-space classifier that never sees phi)
gives every sample a class; a sample *agrees* when that is its target's class. Guided samples sit close to their
target in pixels (close copies), and a close copy shares the class whatever guided it, so the claim is tested
against guides that can explain closeness: the same sampler and denoiser guided by an untrained network's phi and
by a pixel statistic of the same dimension (leading PCA coefficients), and unconditional samples. Two parts, both
must hold, on at least ``MIN_TARGETS`` targets:

- *beats the control guides*: the mean over targets of the share of samples that agree, trained phi guide minus
  the best control guide (the highest agreement, chosen anew in every resample);
- *beyond pixel closeness*: the agreement of the trained-guided samples minus that of the best control guide's
  samples at the same normalised pixel distance to the target: each sample's RMS distance to its target divided by
  the target's RMS distance to its nearest same-class training image (1: as far as a real, different image of the
  class), binned (``DISTANCE_BINS``, a factor sqrt(2) wide); the control's agreement in each bin is weighted by the
  trained samples in that bin (direct standardisation), over the bins where the control has samples. If the judge
  agrees with the trained-guided samples only because they are close to their target, a control guide's samples
  at the same distance agree as often and the part fails. The best control is the one with the smallest matched
  difference, chosen anew in every resample; a control with no sample in any bin of the trained samples cannot be
  matched and is left out (none left: undecided).

Intervals resample trained networks (when several), control networks (untrained seeds, when several), then targets
(``stats.nested_bootstrap``). With fewer than ``MIN_TARGETS`` targets the measures are computed and reported, but no
decision is made: every part's interval is replaced by an empty one (NaN bounds), whose word is "undecided".

Claim 6, phi distance tracks the distance between the conditional densities p(x | phi). Over every pair of targets:
the Mantel test of the targets' phi distances against the energy distances of their sample sets, and the partial
Mantel test controlling for the targets' pixel distances and the untrained network's phi distances (the verdict);
rank correlations, permutation p-values (``stats.mantel``), and a delete-one-target jackknife interval (pairs share
targets; the jackknife removes a target and all its pairs, so no target is duplicated as a bootstrap would). With
several trained networks (a reference and its seeds, on the same targets) the correlation is their average and the
interval adds the variance of that average over networks (``stats.mantel_mean``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

from .. import analysis, stats
from ..stats import Interval
from .catalogue import BY_KEY
from .rules import Part, Result

MIN_TARGETS = 30  # claims 5 and 6 decide nothing on fewer targets (issue 22: at least 30, 435 pairs)
DISTANCE_BINS = tuple(2.0 ** (k / 2) for k in range(-6, 7))  # edges 0.125 .. 8 of the normalised distance bins


# ------------------------------------------------------------------ claim 5: per-sample scores


@dataclass(frozen=True)
class GuideSamples:
    """One guide's samples on one network, scored per target t and sample j: whether the judge gives the sample
    its target's class, and the sample's RMS pixel distance to that target."""

    agrees: torch.Tensor  # (T, m) 1.0 when the judge agrees, else 0.0
    distance: torch.Tensor  # (T, m) RMS pixel distance of the sample to target t

    def __post_init__(self) -> None:
        a, d = torch.as_tensor(self.agrees), torch.as_tensor(self.distance)
        if a.ndim != 2 or a.shape != d.shape or a.shape[1] < 1:
            raise ValueError(
                f"agrees and distance must share one (targets, samples) shape, got {tuple(a.shape)}, {tuple(d.shape)}"
            )
        object.__setattr__(self, "agrees", a.double())
        object.__setattr__(self, "distance", d.double())

    @property
    def n_targets(self) -> int:
        return self.agrees.shape[0]


def score_samples(
    predicted: torch.Tensor,
    samples: torch.Tensor,
    target_images: torch.Tensor,
    target_labels: torch.Tensor,
    n_per: int | None = None,
) -> GuideSamples:
    """Claim 5's scores of a set of samples from the judge's predicted classes (``predicted``, one per sample).
    With ``n_per``, the samples are guided: ``n_per`` consecutive samples per target, each scored against its own
    target. Without, they are unconditional: every sample is scored against every target."""
    predicted = torch.as_tensor(predicted)
    n_t = len(target_images)
    if len(target_labels) != n_t or len(predicted) != len(samples):
        raise ValueError("need one label per target image and one predicted class per sample")
    if n_per is not None:
        if len(samples) != n_t * n_per:
            raise ValueError(f"{len(samples)} samples are not {n_per} per target for {n_t} targets")
        agrees = (predicted.view(n_t, n_per) == target_labels.view(-1, 1)).double()
        x = samples.reshape(n_t, n_per, -1).double()
        t = target_images.reshape(n_t, 1, -1).double()
        distance = (x - t).pow(2).mean(-1).sqrt()
        return GuideSamples(agrees, distance)
    agrees = (predicted.view(1, -1) == target_labels.view(-1, 1)).double()
    return GuideSamples(agrees, analysis.rms_distance(target_images, samples))


def nearest_same_class(
    target_images: torch.Tensor, target_labels: torch.Tensor, train_images: torch.Tensor, train_labels: torch.Tensor
) -> torch.Tensor:
    """Each target's RMS pixel distance to its nearest training image of its own class (T,): the distance at which a
    real, different image of the class lies, against which a sample's distance to its target is read."""
    out = torch.empty(len(target_images), dtype=torch.float64)
    for c in target_labels.unique().tolist():
        pool = train_images[train_labels == c]
        if len(pool) == 0:
            raise ValueError(f"no training image of class {c}, so a target of that class has no nearest neighbour")
        sel = target_labels == c
        out[sel] = analysis.nearest_image(target_images[sel], pool)[0]
    return out


class _Table:
    """One guide's scores as tensors indexed (network, seed, target, ...): per-target agreement, and per bin of the
    normalised distance, sample counts and agreeing samples."""

    def __init__(self, runs: list[list[GuideSamples]], nearest: torch.Tensor, edges: torch.Tensor):
        self.mean = torch.stack([torch.stack([g.agrees.mean(1) for g in seeds]) for seeds in runs])  # (n, S, T)
        n_bins = len(edges) + 1
        counts, hits = [], []
        for seeds in runs:
            c_s, h_s = [], []
            for g in seeds:
                b = torch.bucketize(
                    g.distance / nearest.view(-1, 1), edges, right=True
                )  # [e_k-1, e_k): 0 .. n_bins - 1
                c_s.append(
                    torch.zeros(g.n_targets, n_bins, dtype=torch.float64).scatter_add_(1, b, torch.ones_like(g.agrees))
                )
                h_s.append(torch.zeros(g.n_targets, n_bins, dtype=torch.float64).scatter_add_(1, b, g.agrees))
            counts.append(torch.stack(c_s))
            hits.append(torch.stack(h_s))
        self.counts, self.hits = torch.stack(counts), torch.stack(hits)  # (n, S, T, B)
        self.ratio = torch.cat([torch.cat([(g.distance / nearest.view(-1, 1)).flatten() for g in s]) for s in runs])
        self.distance = torch.cat([torch.cat([g.distance.flatten() for g in s]) for s in runs])
        self.per_target = runs[0][0].agrees.shape[1]

    def rows(self, t: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The resampled networks and seeds of this table (a level with one entry stays fixed)."""
        n, s = self.mean.shape[:2]
        return (t if n > 1 else torch.zeros_like(t[:1])), (c if s > 1 else torch.zeros_like(c[:1]))

    def agreement(self, t: torch.Tensor, c: torch.Tensor, i: torch.Tensor) -> float:
        tt, cc = self.rows(t, c)
        return self.mean[tt][:, cc][:, :, i].mean().item()

    def binned(self, t: torch.Tensor, c: torch.Tensor, i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tt, cc = self.rows(t, c)
        return self.counts[tt][:, cc][:, :, i].sum((0, 1, 2)), self.hits[tt][:, cc][:, :, i].sum((0, 1, 2))


def _matched(trained: _Table, control: _Table, t, c, i) -> tuple[float, float]:
    """The trained samples' agreement minus the control's at the same normalised distance (the control's rate per
    bin, weighted by the trained samples in it, over the bins where both have samples), and the share of the
    trained samples in those bins; NaN when no bin has both."""
    nt, ht = trained.binned(t, c, i)
    nk, hk = control.binned(t, c, i)
    m = (nt > 0) & (nk > 0)
    if not m.any():
        return float("nan"), 0.0
    w = nt[m]
    diff = (w * (ht[m] / nt[m] - hk[m] / nk[m])).sum() / w.sum()
    return diff.item(), (w.sum() / nt.sum()).item()


def _runs(value, n_trained: int, name: str) -> list[list[GuideSamples]]:
    """A control's runs as [network][seed]: one run shared by every trained network, or one entry per trained
    network, each one run or a sequence of runs (one per control seed)."""
    if isinstance(value, GuideSamples):
        return [[value]]
    value = list(value)
    if len(value) not in (1, n_trained):
        raise ValueError(
            f"control {name!r} needs one entry per trained network ({n_trained}) or one shared entry, got "
            f"{len(value)}; give several control seeds of one network as one inner sequence, e.g. [[s0, s1, s2]]"
        )
    out = [[v] if isinstance(v, GuideSamples) else list(v) for v in value]
    if any(not s or not all(isinstance(g, GuideSamples) for g in s) for s in out):
        raise ValueError(f"control {name!r}: every entry must be a GuideSamples or a sequence of them")
    if len({len(s) for s in out}) > 1:
        raise ValueError(f"control {name!r}: every trained network needs as many control seeds")
    return out


def _undecided(effect: Interval) -> Interval:
    """The same point estimate with no interval: no decision (the word of NaN bounds is "undecided")."""
    return Interval(effect.value, float("nan"), float("nan"), effect.level, None)


def reconstruction_claim(
    trained: GuideSamples | Sequence[GuideSamples],
    controls: Mapping[str, GuideSamples | Sequence],
    nearest: torch.Tensor,
    n_boot: int = 1000,
    seed: int = 0,
    min_targets: int = MIN_TARGETS,
    bins: Sequence[float] = DISTANCE_BINS,
) -> Result:
    """Claim 5 from per-sample scores (``score_samples``) of the same targets: ``trained`` the samples guided by the
    trained network's phi (one ``GuideSamples``, or one per trained network), ``controls`` {name: the control
    guides' samples} (e.g. "untrained phi", "pixel pca", "unconditional"; each one run shared by every trained
    network, or one entry per trained network, each one run or a sequence of runs, one per control seed),
    ``nearest`` each target's RMS distance to its nearest same-class training image (``nearest_same_class``).

    Two parts (module docstring): *beats the control guides* (agreement over targets, trained phi guide minus the
    best control guide) and *beyond pixel closeness* (agreement minus the best control guide's at the same
    normalised distance to the target, bins with edges ``bins``). Intervals resample trained networks, control seeds
    and targets. Fewer than ``min_targets`` targets: the measures are reported, every part is undecided."""
    trained = [trained] if isinstance(trained, GuideSamples) else list(trained)
    if not trained or not controls:
        raise ValueError("need the trained-phi guide's samples and at least one control guide")
    if not all(isinstance(g, GuideSamples) for g in trained):
        raise ValueError("trained: one GuideSamples per trained network")
    n_tr = len(trained)
    runs = {k: _runs(v, n_tr, k) for k, v in controls.items()}
    n_t = trained[0].n_targets
    nearest = torch.as_tensor(nearest, dtype=torch.float64).flatten()
    every = trained + [g for r in runs.values() for s in r for g in s]
    if any(g.n_targets != n_t for g in every) or len(nearest) != n_t:
        raise ValueError(f"every guide's scores and nearest must cover the same {n_t} targets")
    if not (nearest > 0).all():
        raise ValueError("every target needs a positive distance to its nearest same-class training image")
    seeds = {len(r[0]) for r in runs.values() if len(r[0]) > 1}
    if len(seeds) > 1:
        raise ValueError(f"controls with several seeds must have as many each, got {sorted(seeds)}")
    n_control = seeds.pop() if seeds else 1
    edges = torch.tensor(sorted(bins), dtype=torch.float64)
    tt = _Table([[g] for g in trained], nearest, edges)
    ct = {k: _Table(r, nearest, edges) for k, r in runs.items()}

    def beats(t, c, i) -> float:
        return tt.agreement(t, c, i) - max(tab.agreement(t, c, i) for tab in ct.values())

    def beyond(t, c, i) -> float:
        diffs = [d for d, _ in (_matched(tt, tab, t, c, i) for tab in ct.values()) if not math.isnan(d)]
        return min(diffs) if diffs else float("nan")

    claim = BY_KEY["reconstruction"]
    specs = [claim.part("beats the control guides"), claim.part("beyond pixel closeness")]
    effects = []
    for spec, fn in zip(specs, (beats, beyond)):
        if math.isnan(fn(torch.arange(n_tr), torch.arange(n_control), torch.arange(n_t))):
            effects.append(Interval(float("nan"), float("nan"), float("nan")))
        else:
            effects.append(stats.nested_bootstrap(fn, n_tr, n_control, n_t, n_boot, seed=seed, null=spec.min_effect))
    enough = n_t >= min_targets
    parts = tuple(Part(s.name, e if enough else _undecided(e), s.min_effect) for s, e in zip(specs, effects))

    every_t, every_c, every_i = torch.arange(n_tr), torch.arange(n_control), torch.arange(n_t)
    rows = []
    for name, tab in {"phi (trained)": tt, **ct}.items():
        mean = stats.nested_bootstrap(tab.agreement, n_tr, n_control, n_t, n_boot, seed=seed)
        row = {
            "guide": name,
            "networks x seeds": f"{tab.mean.shape[0]} x {tab.mean.shape[1]}",
            "samples per target": tab.per_target,
            "judge agrees": str(mean),
            "RMS to target (median)": f"{tab.distance.median():.3f}",
            "RMS to target / target's to nearest same-class train (median)": f"{tab.ratio.median():.2f}",
            "share farther than the nearest same-class train": f"{(tab.ratio >= 1).double().mean():.2f}",
        }
        d, cover = _matched(tt, tab, every_t, every_c, every_i) if tab is not tt else (None, None)
        row["trained minus this guide at matched distance"] = "" if d is None else f"{d:+.3f}"
        row["trained samples matched"] = "" if cover is None else f"{cover:.2f}"
        rows.append(row)
    rows.append({"guide": "targets' RMS to their nearest same-class training image (median)",
                 "RMS to target (median)": f"{nearest.median():.3f}"})  # fmt: skip
    if not enough:
        rows.append({"guide": f"note: {n_t} targets, fewer than {min_targets}: no decision (every part undecided)"})
    return Result("reconstruction", parts, n_tr, n_control, rows)


# ------------------------------------------------------------------ claim 6


def energy_distances(samples: torch.Tensor, n_per: int) -> torch.Tensor:
    """The (T, T) energy distances (RMS pixel units, ``analysis.energy_distance``) between the sample sets of T
    targets, ``n_per`` consecutive samples each: claim 6's distance between conditional densities."""
    if n_per < 1 or len(samples) % n_per:
        raise ValueError(f"{len(samples)} samples are not a whole number of sets of {n_per}")
    sets = samples.reshape(len(samples) // n_per, n_per, -1).double()
    n_t = len(sets)
    within = torch.stack([torch.cdist(s, s).mean() for s in sets])
    out = torch.zeros(n_t, n_t, dtype=torch.float64)
    for a in range(n_t):
        for b in range(a + 1, n_t):
            out[a, b] = out[b, a] = 2 * torch.cdist(sets[a], sets[b]).mean() - within[a] - within[b]
    return out / math.sqrt(sets.shape[-1])


def pixel_distances(images: torch.Tensor) -> torch.Tensor:
    """The (T, T) RMS pixel distances between images: claim 6's pixel control."""
    return analysis.rms_distance(images, images)


def feature_distances(features: torch.Tensor) -> torch.Tensor:
    """The (T, T) Euclidean distances between feature vectors (phi of the targets, trained or untrained)."""
    f = features.double()
    return torch.cdist(f, f)


def _matrix(d, name: str) -> np.ndarray:
    m = np.asarray(torch.as_tensor(d, dtype=torch.float64))
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 4:
        raise ValueError(f"{name} must be a square distance matrix over at least 4 targets, got shape {m.shape}")
    if not np.allclose(m, m.T, rtol=1e-6, atol=1e-9 * max(1.0, float(np.abs(m).max()))):
        raise ValueError(f"{name} must be symmetric")
    return m


def _jackknife(
    pairs: list[tuple[np.ndarray, np.ndarray]], controls: list[np.ndarray], level: float, p: float | None
) -> Interval:
    """The (partial) Mantel rank correlation, averaged over the networks of ``pairs`` (one (phi, energy) pair of
    matrices each), with a normal interval at ``level``: its variance over targets from a delete-one-target
    jackknife of the average, plus, with several networks, the variance of the average over networks (their
    correlations' spread over the number of networks; targets held fixed)."""
    n = pairs[0][0].shape[0]

    def mean_r(k: np.ndarray) -> tuple[float, list[float]]:
        rs = [stats.mantel(a[np.ix_(k, k)], b[np.ix_(k, k)], [c[np.ix_(k, k)] for c in controls], n_perm=0)["r"]
              for a, b in pairs]  # fmt: skip
        return float(np.mean(rs)), rs

    r, per_net = mean_r(np.arange(n))
    loo = np.asarray([mean_r(np.delete(np.arange(n), j))[0] for j in range(n)])
    var = (n - 1) / n * float(((loo - loo.mean()) ** 2).sum())
    if len(pairs) > 1:
        var += float(np.var(per_net, ddof=1)) / len(pairs)
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    se = math.sqrt(var)
    return Interval(r, r - z * se, r + z * se, level, p)


def density_distance_claim(
    dphi,
    d_energy,
    d_pixels,
    d_untrained,
    n_perm: int = 999,
    seed: int = 0,
    min_targets: int = MIN_TARGETS,
    level: float = 0.95,
) -> Result:
    """Claim 6 from (T, T) distance matrices over the same targets: ``dphi`` between the targets' phi (trained
    network), ``d_energy`` between their sample sets (``energy_distances``), ``d_pixels`` between the target images
    (``pixel_distances``), ``d_untrained`` between their phi under an untrained network of the same architecture
    (one matrix, or a list of matrices, one per control seed: each is partialled out). With several trained
    networks (a reference and its seeds, guided on the same targets), ``dphi`` and ``d_energy`` are lists with one
    matrix per network, in the same order; the pixel and untrained distances are shared.

    One part, *beyond pixels and the untrained network*: the partial Mantel rank correlation of ``dphi`` and
    ``d_energy`` controlling for the pixel and untrained-phi distances (``stats.mantel``), averaged over networks,
    with a delete-one-target jackknife interval at ``level`` widened by the spread over networks; its ``p`` is the
    partial Mantel permutation p-value (``n_perm`` permutations of the targets, alike in every network; null: no
    association beyond the controls; ``stats.mantel_mean``). The plain Mantel test and the partial tests with each
    control alone are reported in the measures. Fewer than ``min_targets`` targets: reported, undecided."""
    phis = [dphi] if isinstance(dphi, (torch.Tensor, np.ndarray)) else list(dphi)
    energies = [d_energy] if isinstance(d_energy, (torch.Tensor, np.ndarray)) else list(d_energy)
    if not phis or len(phis) != len(energies):
        raise ValueError(f"dphi and d_energy need one matrix per trained network each, got {len(phis)} and "
                         f"{len(energies)}")  # fmt: skip
    pairs = [(_matrix(a, "dphi"), _matrix(b, "d_energy")) for a, b in zip(phis, energies)]
    px = _matrix(d_pixels, "d_pixels")
    unt = [d_untrained] if isinstance(d_untrained, (torch.Tensor, np.ndarray)) else list(d_untrained)
    unt = [_matrix(u, "d_untrained") for u in unt]
    shape = pairs[0][0].shape
    if not unt or any(m.shape != shape for m in (px, *unt, *(m for ab in pairs for m in ab))):
        raise ValueError(f"every distance matrix must have dphi's shape {shape} (and d_untrained at least one)")
    n = shape[0]
    spec = BY_KEY["density-distance"].part("beyond pixels and the untrained network")
    tests = {
        "Mantel: phi vs energy": [],
        "partial Mantel, pixels partialled out": [px],
        "partial Mantel, untrained phi partialled out": unt,
        "partial Mantel, pixels and untrained phi partialled out (the verdict)": [px, *unt],
    }
    rows, effect = [], None
    for name, ctrl in tests.items():
        p = stats.mantel_mean(pairs, ctrl, n_perm=n_perm, rank=True, seed=seed)["p"]
        ci = _jackknife(pairs, ctrl, level, p)
        rows.append({"test": name, "networks": len(pairs), "targets": n, "pairs": n * (n - 1) // 2,
                     "rank r [jackknife 95 % CI]": str(ci), "permutation p": f"{p:.4f}",
                     "permutations": n_perm})  # fmt: skip
        effect = ci
    if n < min_targets:
        rows.append({"test": f"note: {n} targets, fewer than {min_targets}: no decision (undecided)"})
        effect = _undecided(effect)
    return Result("density-distance", (Part(spec.name, effect, spec.min_effect),), len(pairs), len(unt), rows)
