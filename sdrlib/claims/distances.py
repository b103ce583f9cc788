"""Claim 4 (SPEC section 3): Euclidean distances in phi are semantic. The middle block's k-NN label agreement
(held-out queries against training images, standardised features) must beat the best of every cheap control the
chapter measures (pixels, colour and texture statistics, untrained networks of the same architecture), paired
over queries; intervals resample trained networks, control networks, then queries.

Claim 4' (the paper's choice of block): the middle block's k-NN agreement must beat that of the best other block
of the same network, the best chosen anew in every resample; every other score of the chapter is reported beside
it, block against block. Also the chapter's measures across training (snapshots) and across training seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import analysis, sparsity, stats
from .catalogue import BY_KEY
from .rules import Part, Result


def live_columns(train: torch.Tensor, live: float) -> torch.Tensor:
    """A network's healthy fraction (#24): the channels not dead on its *training* images by the relative rule at
    ``live`` (maximum below ``live`` times the largest channel's), so that the choice never reads the queries."""
    return ~sparsity.relative_dead(train, live)


def live_features(
    train: Mapping[str, torch.Tensor], test: Mapping[str, torch.Tensor], live: float
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Every network's phi (the keys "phi BLOCK" and "untrained phi BLOCK") restricted to its healthy fraction
    (:func:`live_columns`, read on ``train``), for a run with many dead channels; other features unchanged."""
    tr, te = dict(train), dict(test)
    for key in train:
        if key.startswith(("phi ", "untrained phi ")):
            m = live_columns(train[key], live)
            tr[key], te[key] = train[key][:, m], test[key][:, m]
    return tr, te


def knn_agreement(
    train: torch.Tensor,
    train_labels: torch.Tensor,
    test: torch.Tensor,
    test_labels: torch.Tensor,
    k: int = 10,
    live: float = 0.0,
) -> torch.Tensor:
    """Each held-out query's share of its k nearest training images (features z-scored with training
    statistics) that have its label (claim 4's per-query score); with ``live`` > 0, on the network's healthy
    fraction only (:func:`live_columns`: a dead channel's tiny variations would be z-scored up to noise)."""
    if live > 0:
        m = live_columns(train, live)
        train, test = train[:, m], test[:, m]
    a, b = analysis.standardize(train.double(), test.double())
    return analysis.knn_per_query(a, train_labels, k, b, test_labels)["agreement"]


@dataclass(frozen=True)
class Study:
    """The images, noise draws and neighbours on which claim 4 scores every network: ``n_train`` training images
    (drawn with ``seed``) and ``n_test`` held-out queries (``seed + 1``), each noisy at ``sigma`` with ``n_noise``
    draws, k nearest neighbours; the middle block's features cached in ``cache_in``; with ``live`` > 0, every
    network read on its healthy fraction (:func:`live_columns`)."""

    n_train: int
    n_test: int
    sigma: float
    n_noise: int
    k: int = 10
    seed: int = 0
    cache_in: str = "user"
    device: str | torch.device = "cpu"
    live: float = 0.0

    def images(self, split: str) -> dict:
        """The ``feature_cache`` arguments that pick a split's images and noise: n, sigma, n_noise, seed."""
        n, seed = (self.n_train, self.seed) if split == "train" else (self.n_test, self.seed + 1)
        return {"n": n, "sigma": self.sigma, "n_noise": self.n_noise, "seed": seed, "cache_in": self.cache_in}


def _controls_table(controls: Mapping[str, Sequence[torch.Tensor]]) -> tuple[dict[str, torch.Tensor], int]:
    """Each control as a (networks, queries) table, and the number of control networks that are resampled (the
    kinds with more than one network must have the same number)."""
    tabs = {k: torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in vs]) for k, vs in controls.items()}
    multi = {len(t) for t in tabs.values() if len(t) > 1}
    if len(multi) > 1:
        raise ValueError(f"controls with several networks must have as many each, got {sorted(multi)}")
    return tabs, multi.pop() if multi else 1


def _networks(tab: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The resampled control networks' rows of a (networks, queries) table; a single network stays fixed."""
    return tab[c] if len(tab) > 1 else tab[:1]


def distances_claim(
    trained: Sequence[torch.Tensor],
    controls: Mapping[str, Sequence[torch.Tensor]],
    n_boot: int = 1000,
    seed: int = 0,
) -> Result:
    """Claim 4 from per-query k-NN agreements on the same queries: ``trained`` one array per trained network,
    ``controls`` {name: one array per network (untrained seeds) or a single array (a fixed statistic)}. The
    part "beats the best control" is the trained mean minus the highest control mean, the best control chosen
    anew in every resample (so that choosing it is part of the interval)."""
    if not trained or not controls:
        raise ValueError("need at least one trained network and one control")
    t_tab = torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in trained])
    c_tabs, n_control = _controls_table(controls)
    n = t_tab.shape[1]
    if any(t.shape[1] != n for t in c_tabs.values()):
        raise ValueError(f"every score must cover the same {n} queries")

    def best(c, i):
        return max((_networks(tab, c)[:, i].mean()).item() for tab in c_tabs.values())

    spec = BY_KEY["distances"].part("beats the best control")
    effect = stats.nested_bootstrap(
        lambda t, c, i: t_tab[t][:, i].mean().item() - best(c, i),
        len(trained),
        n_control,
        n,
        n_boot,
        seed=seed,
        null=spec.min_effect,
    )
    rows = [
        {
            "representation": "phi mid (trained)",
            "networks": len(trained),
            "mean agreement": str(
                stats.nested_bootstrap(
                    lambda t, c, i: t_tab[t][:, i].mean().item(), len(trained), 0, n, n_boot, seed=seed
                )
            ),
        }
    ]
    for name, tab in c_tabs.items():
        mean = stats.nested_bootstrap(
            lambda t, c, i, tab=tab: _networks(tab, c)[:, i].mean().item(),
            1,
            len(tab),
            n,
            n_boot,
            seed=seed,
        )
        rows.append({"representation": name, "networks": len(tab), "mean agreement": str(mean)})
    return Result("distances", (Part(spec.name, effect, spec.min_effect),), len(trained), n_control, rows)


def untrained_agreements(
    checkpoint,
    control_seeds: Sequence[int],
    labels: tuple[torch.Tensor, torch.Tensor],
    study: Study,
    seed0: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Claim 4's untrained controls: per control seed, the per-query k-NN agreement of an untrained network's
    middle block on the study's images and noise (``labels``: of its training images, of its queries).
    ``seed0``: the features' own untrained twin (train, test phi), used for seed 0 instead of computing it again."""
    from .. import feature_cache

    out = []
    for s in control_seeds:
        if s == 0 and seed0 is not None:
            tr, te = seed0
        else:
            (tr,) = feature_cache.control_phi(checkpoint, [s], "train", **study.images("train"))
            (te,) = feature_cache.control_phi(checkpoint, [s], "test", **study.images("test"))
        out.append(knn_agreement(tr, labels[0], te, labels[1], study.k, study.live))
    return out


def run_agreements(runs: Mapping, labels: tuple[torch.Tensor, torch.Tensor], study: Study) -> list[torch.Tensor]:
    """Claim 4's trained networks beyond the reference (its full-budget seeds): the per-query k-NN agreement of
    each run's middle block on the study's images and noise (``labels``: of its training images, of its queries)."""
    from .. import feature_cache

    tr = feature_cache.runs_phi(runs, "train", **study.images("train"), device=study.device)
    te = feature_cache.runs_phi(runs, "test", **study.images("test"), device=study.device)
    return [knn_agreement(tr[r], labels[0], te[r], labels[1], study.k, study.live) for r in runs]


def _loaded(run, device: str | torch.device):
    """A trained run as a loaded checkpoint: a name or folder is loaded onto ``device``; anything else is taken as
    already loaded."""
    from .. import checkpoints

    return checkpoints.load(run, device=device) if isinstance(run, (str, Path)) else run


def block_agreements(
    runs: Mapping, labels: tuple[torch.Tensor, torch.Tensor], study: Study
) -> list[dict[str, torch.Tensor]]:
    """Claim 4' beyond the reference: per trained run ({name: checkpoint name, folder or loaded Checkpoint}, its
    full-budget seeds), the per-query k-NN agreement of every block's phi ({"phi BLOCK": (queries,)}) on the study's
    images and noise, each run's features of every block cached beside it (no untrained twin)."""
    from .. import feature_cache

    out = []
    for run in runs.values():
        ck = _loaded(run, study.device)
        tr, _ = feature_cache.checkpoint_features(ck, "train", control=False, **study.images("train"))
        te, _ = feature_cache.checkpoint_features(ck, "test", control=False, **study.images("test"))
        if study.live > 0:
            tr, te = live_features(tr, te, study.live)
        blocks = [key for key in tr if key.startswith("phi ")]
        out.append({key: knn_agreement(tr[key], labels[0], te[key], labels[1], study.k) for key in blocks})
    return out


def _per_network(scores: Sequence[torch.Tensor], n: int | None = None) -> torch.Tensor:
    """One score per query and network as a (networks, queries) table of float64."""
    tab = torch.stack([torch.as_tensor(v, dtype=torch.float64).flatten() for v in scores])
    if n is not None and tab.shape[1] != n:
        raise ValueError(f"every score must cover the same {n} queries, got {tab.shape[1]}")
    return tab


def middle_block_claim(
    middle: Sequence[torch.Tensor],
    others: Mapping[str, Sequence[torch.Tensor]],
    n_boot: int = 1000,
    seed: int = 0,
    middle_name: str = "phi mid",
) -> Result:
    """Claim 4' from per-query k-NN agreements on the same queries: ``middle`` one array per trained network (its
    middle block), ``others`` {block: one array per network, the networks in the same order}. The part "beats
    every other block" is the middle block's mean minus the highest mean of the other blocks, the best other block
    chosen anew in every resample (choosing it is part of the interval: no block is picked first and then tested),
    paired over queries and over networks (a resampled network brings all its blocks); the interval resamples the
    trained networks, then the queries.

    A block may be given for fewer networks than the middle block (other blocks cached for the reference only):
    the claim then rests on the first networks that have every block, and the measures' "networks" column says
    how many of how many. The measures: one row per block, its mean agreement, the middle block minus it (paired),
    and how often it was the best other block in the resamples."""
    if not middle or not others:
        raise ValueError("need the middle block of at least one trained network and at least one other block")
    if middle_name in others:
        raise ValueError(f"{middle_name!r} is the middle block: it cannot be one of the other blocks")
    n_nets = min(len(v) for v in others.values())
    if n_nets < 1 or n_nets > len(middle):
        raise ValueError(f"each other block needs 1 to {len(middle)} networks (as the middle block), got {n_nets}")
    mid = _per_network(middle[:n_nets])
    n = mid.shape[1]
    tabs = {b: _per_network(v[:n_nets], n) for b, v in others.items()}
    names, stacked = list(tabs), torch.stack(list(tabs.values()))  # (blocks, networks, queries)
    chosen: list[int] = []

    def margin(t: torch.Tensor, c: torch.Tensor, i: torch.Tensor) -> float:
        means = stacked[:, t][:, :, i].mean(dim=(1, 2))
        best = int(means.argmax())  # the first of equal means
        chosen.append(best)
        return mid[t][:, i].mean().item() - means[best].item()

    spec = BY_KEY["middle-block"].part("beats every other block")
    effect = stats.nested_bootstrap(margin, n_nets, 0, n, n_boot, seed=seed, null=spec.min_effect)
    picks = torch.bincount(torch.tensor(chosen[1:], dtype=torch.long), minlength=len(names))  # [0]: the point
    nets = f"{n_nets}" if n_nets == len(middle) else f"{n_nets} of {len(middle)}"

    def mean_of(tab: torch.Tensor) -> stats.Interval:
        return stats.nested_bootstrap(lambda t, c, i: tab[t][:, i].mean().item(), n_nets, 0, n, n_boot, seed=seed)

    rows = [
        {
            "block": middle_name,
            "networks": nets,
            "mean agreement": str(mean_of(mid)),
            "middle block minus it": "",
            "best other block in resamples": "",
        }
    ]
    for j, b in enumerate(names):
        rows.append(
            {
                "block": b,
                "networks": nets,
                "mean agreement": str(mean_of(tabs[b])),
                "middle block minus it": str(mean_of(mid - tabs[b])),
                "best other block in resamples": f"{int(picks[j]) / max(len(chosen) - 1, 1):.0%}",
            }
        )
    return Result("middle-block", (Part(spec.name, effect, spec.min_effect),), n_nets, 0, rows)


def other_metrics_table(
    scores: Mapping[str, Mapping[str, stats.Interval]], middle: str = "phi mid", prefix: str = "phi "
) -> list[dict]:
    """Every score of the chapter, block against block (claim 4''s reported measures): per metric of ``scores``
    ({metric: {representation: Interval}}) that has the middle block and another block of the same network
    (names starting with ``prefix``), the middle block's score, the best other block (the first of equal values)
    and its score, which is higher, and whether the two intervals are apart (do not overlap) or overlap."""
    rows = []
    for metric, by_key in scores.items():
        others = {key: iv for key, iv in by_key.items() if key.startswith(prefix) and key != middle}
        if middle not in by_key or not others:
            continue
        mid = by_key[middle]
        best = max(others, key=lambda key: others[key].value)
        iv = others[best]
        rows.append(
            {
                "metric": metric,
                "φ mid": mid,
                "best other block": best,
                "its score": iv,
                "higher": "other block" if iv.value > mid.value else "middle block",
                "intervals": "apart" if iv.lo > mid.hi or mid.lo > iv.hi else "overlap",
            }
        )
    return rows


def other_metrics_summary(rows: Sequence[Mapping]) -> str:
    """One sentence on :func:`other_metrics_table`'s rows: on how many metrics another block scores higher than the
    middle block (and which), and on how many of those their intervals are apart."""
    higher = [r for r in rows if r["higher"] == "other block"]
    apart = [r["metric"] for r in higher if r["its score"].lo > r["φ mid"].hi]
    named = ", ".join(f"{r['metric']} ({r['best other block']})" for r in higher)
    text = (
        f"another block of the same network scores higher than the middle block on {len(higher)} of {len(rows)} metrics"
    )
    if not higher:
        return text + "."
    if apart:
        return f"{text}: {named}; the intervals are apart on {len(apart)} of them ({', '.join(apart)})."
    return f"{text}: {named}; the intervals overlap on all of them."


def training_curve(
    snapshots: Sequence[tuple[int, str | Path]], labels: tuple[torch.Tensor, torch.Tensor], study: Study
) -> list[tuple[int, float]]:
    """The middle block's mean k-NN agreement along training: (step, agreement) for each training snapshot
    ((step, folder), as ``checkpoints.training_snapshots`` lists them), on the study's images and noise
    (:func:`run_agreements`)."""
    runs = {step: path for step, path in snapshots}
    return [(step, a.mean().item()) for step, a in zip(runs, run_agreements(runs, labels, study))]


def margin_over_controls(
    train_feats: Mapping[str, torch.Tensor],
    train_labels: torch.Tensor,
    test_feats: Mapping[str, torch.Tensor],
    test_labels: torch.Tensor,
    k: int = 10,
    key: str = "phi mid",
    controls: Sequence[str] = ("pixels", "untrained phi mid"),
) -> tuple[float, float]:
    """(mean k-NN agreement of ``key``, its margin over the better of ``controls``) for one network's features: the
    numbers the chapter compares across training seeds (point values; the spread is over seeds)."""
    per = analysis.knn_by_representation(train_feats, train_labels, test_feats, test_labels, k, [key, *controls])
    missing = [c for c in (key, *controls) if c not in per]
    if missing:
        raise ValueError(f"representations {missing} are not among {list(train_feats)}")
    means = {c: per[c]["agreement"].mean().item() for c in per}
    return means[key], means[key] - max(means[c] for c in controls)


def seed_margins(runs: Mapping[str, object], study: Study) -> list[dict]:
    """Per trained run ({name: checkpoint name, folder or loaded Checkpoint}), on its middle block's cached features
    of the study's images: {"run", "steps", "phi mid", "margin"}, the mean k-NN agreement and its margin over the
    better of pixels and the untrained middle block (:func:`margin_over_controls`)."""
    from .. import feature_cache

    rows = []
    for name, run in runs.items():
        ck = _loaded(run, study.device)
        a, ia = feature_cache.checkpoint_features(ck, "train", blocks=["mid"], **study.images("train"))
        b, ib = feature_cache.checkpoint_features(ck, "test", blocks=["mid"], **study.images("test"))
        if study.live > 0:
            a, b = live_features(a, b, study.live)
        mid, margin = margin_over_controls(a, ia.labels, b, ib.labels, study.k)
        rows.append({"run": name, "steps": int(ck.config["step"]), "phi mid": mid, "margin": margin})
    return rows


def spread(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation) of values over training seeds (the deviation is nan for one value)."""
    if len(values) < 1:
        raise ValueError("a spread needs at least one value")
    v = torch.tensor(list(values), dtype=torch.float64)
    return v.mean().item(), v.std().item() if len(v) > 1 else float("nan")
