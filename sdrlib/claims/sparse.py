"""Claims 1-3 (SPEC section 3): phi is sparse per image, its channels split into two populations, and similar
images share active channels. Each claim takes phi of the middle block for the same images from one or more
trained networks (seeds) and from untrained control networks (seeds), and returns a :class:`rules.Result` whose
intervals resample networks, then images (``stats.nested_bootstrap``)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

from .. import sparsity, stats
from .catalogue import BY_KEY, FEW_ACTIVE_BAR, FEW_ACTIVE_TAU
from .rules import Part, Result


def _check(trained: Sequence[torch.Tensor], controls: Sequence[torch.Tensor]) -> int:
    """The number of images shared by every network's phi; a ValueError when they differ or a list is empty."""
    if not trained or not controls:
        raise ValueError(f"need at least one trained and one control network, got {len(trained)}, {len(controls)}")
    sizes = {int(p.shape[0]) for p in [*trained, *controls]}
    if len(sizes) != 1:
        raise ValueError(f"every network's phi must cover the same images, got row counts {sorted(sizes)}")
    return sizes.pop()


def _per_image(phis: Sequence[torch.Tensor], measure, rel: float) -> torch.Tensor:
    """(networks, images) of a per-image measure computed on each network's live channels."""
    return torch.stack([measure(p, ~sparsity.relative_dead(p, rel)).double() for p in phis])


def _mean(a: torch.Tensor):
    """The statistic 'mean of the resampled networks and images' of a (networks, images) table."""
    return lambda t, i: a[t][:, i].mean()


def _compare(name: str, t_tab: torch.Tensor, u_tab: torch.Tensor, n_boot: int, seed: int) -> dict:
    """One measure's table row: trained mean, control mean and their difference, each with a nested interval."""
    n = t_tab.shape[1]
    nb = stats.nested_bootstrap
    t = nb(lambda ti, ci, ii: _mean(t_tab)(ti, ii), len(t_tab), 0, n, n_boot, seed=seed)
    u = nb(lambda ti, ci, ii: _mean(u_tab)(ci, ii), 1, len(u_tab), n, n_boot, seed=seed)
    d = nb(lambda ti, ci, ii: _mean(t_tab)(ti, ii) - _mean(u_tab)(ci, ii), len(t_tab), len(u_tab), n, n_boot, seed=seed)
    return {"measure": name, "trained": str(t), "control": str(u), "trained − control": str(d)}


def sparsity_claim(
    trained: Sequence[torch.Tensor],
    controls: Sequence[torch.Tensor],
    rel: float = 0.01,
    tau: float = sparsity.DEFAULT_TAU,
    n_boot: int = 1000,
    seed: int = 0,
) -> Result:
    """Claim 1: for one image, only a small subset of channels is active. Parts (catalogue): "few", the bar minus
    the mean share of live channels above a tenth of the image's own largest channel; "sparser", raw Hoyer,
    trained minus control. Measures also report the per-channel-scaled versions, for comparison."""
    n = _check(trained, controls)
    spec = BY_KEY["sparsity"]
    measures = {
        f"share above {FEW_ACTIVE_TAU} of the image's largest channel": lambda p, lv: sparsity.own_max_fraction(
            p, FEW_ACTIVE_TAU, lv
        ),
        f"share above {tau} of each channel's maximum (per-channel scaled)": lambda p, lv: sparsity.active_fraction(
            p[:, lv], tau
        ),
        "Hoyer sparsity, raw": lambda p, lv: sparsity.hoyer(p, lv, scaled=False),
        "Hoyer sparsity, per-channel scaled": lambda p, lv: sparsity.hoyer(p, lv, scaled=True),
        "participation ratio, raw": lambda p, lv: sparsity.participation_ratio(p, lv, scaled=False),
    }
    tabs = {k: (_per_image(trained, m, rel), _per_image(controls, m, rel)) for k, m in measures.items()}
    rows = [_compare(k, t, u, n_boot, seed) for k, (t, u) in tabs.items()]
    share_t, _ = tabs[next(iter(measures))]
    hoyer_t, hoyer_u = tabs["Hoyer sparsity, raw"]
    sizes = (len(trained), len(controls), n, n_boot, seed)
    parts = (
        _part(spec, "few", lambda t, c, i: FEW_ACTIVE_BAR - _mean(share_t)(t, i), *sizes),
        _part(spec, "sparser", lambda t, c, i: _mean(hoyer_t)(t, i) - _mean(hoyer_u)(c, i), *sizes),
    )
    return Result("sparsity", parts, len(trained), len(controls), rows)


def _part(spec, name: str, stat, n_trained: int, n_control: int, n: int, n_boot: int, seed: int) -> Part:
    """One part of a claim: its effect's nested interval, with the p-value of "at most the smallest effect that
    counts" (from the catalogue)."""
    min_effect = spec.part(name).min_effect
    effect = stats.nested_bootstrap(stat, n_trained, n_control, n, n_boot, seed=seed, null=min_effect)
    return Part(name, effect, min_effect)


def dip(x: np.ndarray) -> float:
    """Hartigan's dip statistic of a sample: the distance from its empirical distribution to the nearest
    unimodal one (0 for a unimodal sample, larger for two populations)."""
    import diptest

    return float(diptest.dipstat(np.sort(np.asarray(x, dtype=np.float64)), sort_x=False))


@lru_cache(maxsize=64)
def dip_critical(n: int, alpha: float = 0.05, n_sim: int = 2000, seed: int = 0) -> float:
    """The dip statistic's (1 - alpha) quantile for n draws of the uniform distribution, the least favourable
    unimodal law (Hartigan & Hartigan 1985): above it, unimodality is rejected at level alpha."""
    if n < 4 or not 0 < alpha < 1:
        raise ValueError(f"need n >= 4 and alpha in (0, 1), got n={n}, alpha={alpha}")
    rng = np.random.default_rng(seed)
    return float(np.quantile([dip(rng.random(n)) for _ in range(n_sim)], 1 - alpha))


def _dips(phis: Sequence[torch.Tensor], rel: float):
    """For each network, a function of image indices giving (dip of its channels' log CV, its critical value)."""
    lives = [~sparsity.relative_dead(p, rel) for p in phis]
    crits = [dip_critical(int(lv.sum())) for lv in lives]

    def at(k: int, idx: torch.Tensor) -> tuple[float, float]:
        return dip(sparsity.log_cv(phis[k][idx], lives[k]).numpy()), crits[k]

    return at


def selectivity_claim(
    trained: Sequence[torch.Tensor],
    controls: Sequence[torch.Tensor],
    rel: float = 0.01,
    n_boot: int = 200,
    seed: int = 0,
) -> Result:
    """Claim 2: channels split into selective and non-selective ones, tested without a threshold. Parts
    (catalogue): "two populations", the dip of the trained channels' log coefficient of variation minus its 5 %
    critical value; "learned", that dip trained minus control. Dead channels (relative rule) are left out."""
    n = _check(trained, controls)
    spec = BY_KEY["selectivity"]
    dt, du = _dips(trained, rel), _dips(controls, rel)

    def excess(t, c, i):
        return float(np.mean([np.subtract(*dt(int(k), i)) for k in t]))

    def learned(t, c, i):
        return float(np.mean([dt(int(k), i)[0] for k in t]) - np.mean([du(int(k), i)[0] for k in c]))

    sizes = (len(trained), len(controls), n, n_boot, seed)
    parts = (_part(spec, "two populations", excess, *sizes), _part(spec, "learned", learned, *sizes))
    everyone = torch.arange(n)
    rows = [
        {
            "network": f"{kind} {k}",
            "live channels": int((~sparsity.relative_dead(p, rel)).sum()),
            "dip of log CV": round(d(k, everyone)[0], 4),
            "5 % critical value": round(d(k, everyone)[1], 4),
            "median log10 CV": round(float(sparsity.log_cv(p, ~sparsity.relative_dead(p, rel)).median()), 3),
        }
        for kind, phis, d in (("trained", trained, dt), ("control", controls, du))
        for k, p in enumerate(phis)
    ]
    return Result("selectivity", parts, len(trained), len(controls), rows)


class _Contrast:
    """Claim 3's within - across Jaccard contrast of one network, evaluated on resampled images through their
    multiplicities w: sum of w_i w_j J_ij over ordered pairs of distinct images of one class, over the sum of
    w_i w_j there, minus the same across classes (an image is never paired with its own copy), as the index
    version would count them, at the cost of matrix-vector products."""

    def __init__(self, j: torch.Tensor, labels: torch.Tensor):
        same = labels[:, None] == labels[None, :]
        same.fill_diagonal_(False)
        across = labels[:, None] != labels[None, :]
        j = j.double()
        self.n = len(labels)
        self.mats = (j * same, same.double(), j * across, across.double())

    def __call__(self, idx: torch.Tensor) -> float:
        """The contrast on the images ``idx`` (with repeats)."""
        w = torch.bincount(idx, minlength=self.n).double()
        jw, sw, ja, sa = (w @ m @ w for m in self.mats)
        return (jw / sw - ja / sa).item()


def _support_contrast(j: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor) -> float:
    """Mean Jaccard of pairs within a class minus across classes, on resampled images (an image is never paired
    with its own copy)."""
    return _Contrast(j, labels)(idx)


def subspaces_claim(
    trained: Sequence[torch.Tensor],
    controls: Sequence[torch.Tensor],
    labels: torch.Tensor,
    rel: float = 0.01,
    n_boot: int = 200,
    seed: int = 0,
) -> Result:
    """Claim 3: similar images share active channels. Active sets are the live channels above a tenth of the
    image's own largest channel; the part "shared supports" is the within-class minus across-class mean Jaccard
    overlap, trained minus control. A dense code's active sets are all its channels, so it scores 0."""
    n = _check(trained, controls)
    if len(labels) != n:
        raise ValueError(f"labels cover {len(labels)} images, phi covers {n}")
    spec = BY_KEY["subspaces"]

    def jaccards(phis):
        return [
            sparsity.jaccard_matrix(sparsity.own_max_active(p, FEW_ACTIVE_TAU, ~sparsity.relative_dead(p, rel)))
            for p in phis
        ]

    jt, ju = jaccards(trained), jaccards(controls)
    ct, cu = [_Contrast(j, labels) for j in jt], [_Contrast(j, labels) for j in ju]

    def contrast(cs, which, i):
        return float(np.mean([cs[int(k)](i) for k in which]))

    part = _part(
        spec,
        "shared supports",
        lambda t, c, i: contrast(ct, t, i) - contrast(cu, c, i),
        len(trained),
        len(controls),
        n,
        n_boot,
        seed,
    )
    rows = []
    for kind, js in (("trained", jt), ("control", ju)):
        for k, j in enumerate(js):
            same, other = labels[:, None] == labels[None, :], ~torch.eye(n, dtype=torch.bool)
            w, a = j[same & other].mean().item(), j[~same].mean().item()
            rows.append(
                {
                    "network": f"{kind} {k}",
                    "within": w,
                    "across": a,
                    "within − across": w - a,
                    "within / across": w / a if a > 0 else float("nan"),
                }
            )
    return Result(
        "subspaces",
        (part,),
        len(trained),
        len(controls),
        rows,
    )


# ------------------------------------------------------------------ the chapter's descriptive tables


def support_contrast(phi: torch.Tensor, labels: torch.Tensor, rel: float = 0.01) -> float:
    """Claim 3's measure for one network: mean Jaccard of own-max active sets within classes minus across."""
    j = sparsity.jaccard_matrix(sparsity.own_max_active(phi, FEW_ACTIVE_TAU, ~sparsity.relative_dead(phi, rel)))
    return _support_contrast(j, labels, torch.arange(len(labels)))


def point_values(phi: torch.Tensor, labels: torch.Tensor, rel: float = 0.01) -> dict[str, float]:
    """The point values behind claims 1-3 for one network (no interval): mean own-max active share, mean raw
    Hoyer, dip of the channels' log CV, within - across Jaccard of own-max active sets."""
    live = ~sparsity.relative_dead(phi, rel)
    return {
        "own-max active share": sparsity.own_max_fraction(phi, FEW_ACTIVE_TAU, live).mean().item(),
        "raw Hoyer": sparsity.hoyer(phi, live, scaled=False).mean().item(),
        "dip of log CV": dip(sparsity.log_cv(phi, live).numpy()),
        "support contrast": support_contrast(phi, labels, rel),
    }


def dead_table(feats: dict[str, torch.Tensor], rel: float = 0.01) -> list[dict]:
    """Dead channels of every block's phi in a study (trained and untrained): relative rule and exact zeros."""
    return [
        {
            "representation": k,
            "channels": p.shape[1],
            f"dead (< {rel:.0%} of the largest maximum)": int(sparsity.relative_dead(p, rel).sum()),
            "exactly zero": int(sparsity.dead_channels(p).sum()),
        }
        for k, p in feats.items()
        if k.startswith(("phi", "untrained phi"))
    ]


def block_table(
    feats: dict[str, torch.Tensor], blocks: Sequence[str], rel: float = 0.01, n_boot: int = 1000, seed: int = 0
) -> list[dict]:
    """Per block: raw Hoyer sparsity and own-max active share, trained against its untrained twin (paired
    intervals over images): where in the network per-image sparsity appears."""
    rows = []
    for b in blocks:
        pt, pu = feats[f"phi {b}"], feats[f"untrained phi {b}"]
        lt, lu = ~sparsity.relative_dead(pt, rel), ~sparsity.relative_dead(pu, rel)
        ht, hu = sparsity.hoyer(pt, lt, scaled=False), sparsity.hoyer(pu, lu, scaled=False)
        st, su = sparsity.own_max_fraction(pt, FEW_ACTIVE_TAU, lt), sparsity.own_max_fraction(pu, FEW_ACTIVE_TAU, lu)
        rows.append(
            {
                "block": b,
                "channels": pt.shape[1],
                "live": int(lt.sum()),
                "own-max active share, trained": str(stats.mean_ci(st, n_boot, seed=seed)),
                "untrained": str(stats.mean_ci(su, n_boot, seed=seed)),
                "raw Hoyer, trained": str(stats.mean_ci(ht, n_boot, seed=seed)),
                "raw Hoyer, untrained": str(stats.mean_ci(hu, n_boot, seed=seed)),
                "raw Hoyer, trained − untrained": str(stats.paired_diff_ci(ht, hu, n_boot, seed=seed)),
            }
        )
    return rows


def sigma_table(
    grid: dict[str, torch.Tensor], sigmas: Sequence[float], labels: torch.Tensor, rel: float = 0.01
) -> list[dict]:
    """Claims 1-3's point values at every noise level of a grid ({"phi mid": (S, N, C), "untrained phi mid": ...}),
    trained and untrained, with the dead channels of each."""
    rows = []
    for k, s in enumerate(sigmas):
        t, u = point_values(grid["phi mid"][k], labels, rel), point_values(grid["untrained phi mid"][k], labels, rel)
        rows.append(
            {
                "sigma": float(s),
                **{f"{m}, trained": v for m, v in t.items()},
                **{f"{m}, untrained": v for m, v in u.items()},
                "dead, trained": int(sparsity.relative_dead(grid["phi mid"][k], rel).sum()),
                "dead, untrained": int(sparsity.relative_dead(grid["untrained phi mid"][k], rel).sum()),
            }
        )
    return rows


def network_table(runs: dict[str, torch.Tensor], labels: torch.Tensor, rel: float = 0.01) -> list[dict]:
    """Claims 1-3's point values for several networks on the same images ({name: phi}: training snapshots,
    training seeds), one row each, with their dead channels."""
    return [
        {"network": name, "dead": int(sparsity.relative_dead(p, rel).sum()), **point_values(p, labels, rel)}
        for name, p in runs.items()
    ]


def purity_table(
    phis: dict[str, torch.Tensor], labels: torch.Tensor, k: int = 8, share: float = 0.25, rel: float = 0.01
) -> list[dict]:
    """Beside claim 2: for each network, the label purity of the k top images (share of their pairs with one
    label) of its most variable channels (top ``share`` of live channels by coefficient of variation) and of its
    least variable ones, against the chance that two random images share a label. If high-CV channels are the
    paper's selective ones, tied to content, their top images share a label more often."""
    from .channels import pair_chance, top_label_agreement

    if not 0 < share <= 0.5:
        raise ValueError(f"share must be in (0, 0.5], got {share}")
    rows = []
    for name, p in phis.items():
        live = torch.nonzero(~sparsity.relative_dead(p, rel)).squeeze(1)
        order = live[sparsity.log_cv(p[:, live], torch.ones(len(live), dtype=torch.bool)).argsort(descending=True)]
        m = max(1, round(share * len(live)))
        high, low = (top_label_agreement(p, labels, ch, k).mean().item() for ch in (order[:m], order[-m:]))
        rows.append(
            {
                "network": name,
                "channels per group": m,
                "top images' purity, most variable": high,
                "least variable": low,
                "chance": pair_chance(labels),
            }
        )
    return rows
