"""Known answers for sdrlib.stats: bootstrap intervals, the one verdict rule with a minimum effect, the nested
bootstrap over networks then images, Holm's correction."""

import math

import numpy as np
import pytest
import torch

from sdrlib import stats


def test_bootstrap_intervals():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(2000, generator=g, dtype=torch.float64) + 3
    ci = stats.mean_ci(v, n_boot=2000)
    half = 1.96 * v.std().item() / math.sqrt(len(v))
    assert ci.lo < 3 < ci.hi
    assert abs((ci.hi - ci.lo) / 2 - half) < 0.1 * half
    const = stats.mean_ci(torch.full((50,), 0.7, dtype=torch.float64))
    assert const.lo == const.hi == const.value == pytest.approx(0.7)
    # pairing removes the shared per-image variation: a small, consistent difference is detected
    base = torch.randn(300, generator=g, dtype=torch.float64) * 5
    a, b = base + 0.1, base
    d = stats.paired_diff_ci(a, b)
    assert d.value == pytest.approx(0.1)
    assert d.above(0.09)
    assert d.below(0.11)
    assert stats.verdict(d) == "holds"
    assert stats.verdict(stats.Interval(-0.2, -0.3, -0.1)) == "fails"
    assert stats.verdict(stats.Interval(0.01, -0.02, 0.04)) == "undecided"
    assert str(stats.Interval(0.5, 0.25, 0.75)) == "0.500 [0.250, 0.750]"


def test_spearman_interval_and_power():
    x = torch.arange(30.0)
    ci = stats.spearman_ci(x, x**3, n_boot=300)
    assert ci.value == pytest.approx(1.0)
    assert ci.lo == pytest.approx(1.0)
    assert abs(stats.spearman_power(20, 0.0, n_sim=1000) - 0.05) < 0.03  # the test's size
    assert stats.spearman_power(20, 0.8, n_sim=500) > 0.9
    assert stats.spearman_power(6, 0.5, n_sim=500) < 0.35  # six pairs cannot decide a moderate relation


def test_half_sample_interval_matches_the_spread_of_a_mean():
    g = torch.Generator().manual_seed(3)
    v = torch.randn(1000, generator=g, dtype=torch.float64)
    hs = stats.half_sample(lambda idx: v[idx].mean().item(), len(v), n_rep=400)
    boot = stats.mean_ci(v)
    assert hs.value == pytest.approx(v.mean().item())
    assert abs((hs.hi - hs.lo) - (boot.hi - boot.lo)) < 0.2 * (boot.hi - boot.lo)


@pytest.mark.parametrize(
    "lo, hi, min_effect, word",
    [
        (0.1, 0.3, 0.0, "holds"),
        (-0.3, -0.1, 0.0, "fails"),
        (-0.1, 0.1, 0.0, "undecided"),
        (0.06, 0.2, 0.05, "holds"),  # the whole interval above the smallest effect that counts
        (0.01, 0.2, 0.05, "holds weakly"),  # real, but may fall short of it
        (0.01, 0.04, 0.05, "fails"),  # real but confidently too small to count
        (-0.01, 0.04, 0.05, "fails"),
        (-0.01, 0.2, 0.05, "undecided"),
    ],
)
def test_verdict_rule_with_a_minimum_effect(lo, hi, min_effect, word):
    assert stats.verdict(stats.Interval((lo + hi) / 2, lo, hi), min_effect) == word


def test_verdict_refuses_a_negative_minimum_effect():
    with pytest.raises(ValueError, match="min_effect"):
        stats.verdict(stats.Interval(0, -1, 1), -0.1)


def test_nested_bootstrap_includes_the_spread_over_networks():
    """Two trained networks whose means differ by 1 (images identical otherwise): resampling networks widens the
    interval to about that spread, while a single network's interval is as narrow as its images allow."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(500, generator=g, dtype=torch.float64) * 0.1
    tab = torch.stack([base, base + 1.0])

    def mean(t, c, i):
        return tab[t][:, i].mean()

    two = stats.nested_bootstrap(mean, 2, 0, 500, n_boot=400)
    one = stats.nested_bootstrap(lambda t, c, i: tab[0][i].mean(), 1, 0, 500, n_boot=400)
    assert two.value == pytest.approx(base.mean().item() + 0.5)
    assert two.lo == pytest.approx(base.mean().item(), abs=0.02)  # both networks drawn twice the first one
    assert two.hi == pytest.approx(base.mean().item() + 1, abs=0.02)
    assert one.hi - one.lo < 0.03


def test_nested_bootstrap_p_value_is_small_above_zero_and_large_below():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(400, generator=g, dtype=torch.float64)
    up = stats.nested_bootstrap(lambda t, c, i: (v[i] + 0.5).mean(), 1, 1, 400, n_boot=500)
    down = stats.nested_bootstrap(lambda t, c, i: (v[i] - 0.5).mean(), 1, 1, 400, n_boot=500)
    assert up.p == pytest.approx(1 / 501)
    assert down.p == pytest.approx(1.0)


def test_nested_bootstrap_refuses_bad_counts():
    with pytest.raises(ValueError, match="at least 2 items"):
        stats.nested_bootstrap(lambda t, c, i: 0.0, 1, 1, 1)
    with pytest.raises(ValueError, match="trained network"):
        stats.nested_bootstrap(lambda t, c, i: 0.0, 0, 1, 10)


def test_holm_adjusted_p_values_known_answer():
    # sorted p = 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04 (made monotone), in the input order
    assert stats.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert np.all(np.array(stats.holm([0.001] * 5)) == pytest.approx(0.005))
    with pytest.raises(ValueError, match="p-values"):
        stats.holm([1.5])


def _distances(x: np.ndarray) -> np.ndarray:
    return np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))


def test_mantel_detects_shared_structure_and_not_its_absence():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(30, 3))
    a = _distances(pts)
    related = _distances(pts + 0.3 * rng.normal(size=pts.shape))
    unrelated = _distances(rng.normal(size=(30, 3)))
    yes = stats.mantel(a, related, n_perm=199)
    no = stats.mantel(a, unrelated, n_perm=199)
    assert yes["r"] > 0.7
    assert yes["p"] == pytest.approx(1 / 200)
    assert no["p"] > 0.05
    assert yes["pairs"] == 435  # 30 targets


def test_partial_mantel_removes_what_a_control_explains():
    """a and b both follow the control c (pixel distance, say): their plain Mantel correlation is high, the
    partial one is not significant; when b shares a component with a that c lacks, the partial test finds it."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(30, 2))
    c = _distances(base)
    a = _distances(np.column_stack([base, 0.2 * rng.normal(size=(30, 1))]))
    b = _distances(np.column_stack([base, 0.2 * rng.normal(size=(30, 1))]))
    assert stats.mantel(a, b, n_perm=199)["p"] < 0.01
    assert stats.mantel(a, b, [c], n_perm=199)["p"] > 0.05
    extra = rng.normal(size=(30, 1))
    a2 = _distances(np.column_stack([base, extra]))
    b2 = _distances(np.column_stack([base, extra + 0.1 * rng.normal(size=(30, 1))]))
    assert stats.mantel(a2, b2, [c], n_perm=199)["p"] < 0.01


def test_mantel_refuses_mismatched_matrices():
    with pytest.raises(ValueError, match="one shape"):
        stats.mantel(np.zeros((4, 4)), np.zeros((5, 5)))
    with pytest.raises(ValueError, match="square"):
        stats.mantel(np.zeros((2, 2)), np.zeros((2, 2)))
