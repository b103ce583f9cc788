"""The sparsity measures behind claims 1-3 (sdrlib.sparsity) on hand-built phi with known answers."""

import pytest
import torch

from sdrlib import sparsity


def test_sparsity_on_hand_built_phi():
    phi = torch.tensor([[1.0, 0.0, 0.05, 0.0], [0.5, 2.0, 0.00, 0.0], [0.0, 1.0, 1.00, 0.0]])
    m = sparsity.active_mask(phi, tau=0.1)
    assert m.tolist() == [[True, False, False, False], [True, True, False, False], [False, True, True, False]]
    assert sparsity.dead_channels(phi).tolist() == [False, False, False, True]
    torch.testing.assert_close(sparsity.active_fraction(phi, 0.1), torch.tensor([1 / 3, 2 / 3, 2 / 3]))
    torch.testing.assert_close(sparsity.channel_frequency(phi, 0.1), torch.tensor([2 / 3, 2 / 3, 1 / 3, 0.0]))
    split = sparsity.selectivity_split(sparsity.channel_frequency(phi, 0.1), sparsity.dead_channels(phi), 0.5, 0.9)
    assert split["selective"].tolist() == [False, False, True, False]
    assert split["dead"][3]


def test_jaccard_within_across():
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 1, 1, 1]], dtype=torch.bool)
    labels = torch.tensor([0, 0, 1, 1])
    o = sparsity.overlap_within_across(mask, labels)
    assert o["within"] == pytest.approx((1 + 1 + 2 / 3 + 2 / 3) / 4)
    assert o["across"] == pytest.approx((0 + 1 / 4 + 0 + 1 / 4) * 2 / 8)


def test_sparsity_summary_counts():
    phi = torch.zeros(10, 4)
    phi[:, 0] = 1.0  # non-selective: active everywhere
    phi[0, 1] = 1.0  # selective: active for one image in ten
    phi[:5, 2] = 1.0  # intermediate
    s = sparsity.sparsity_summary(phi)
    assert (s["dead"], s["selective"], s["non_selective"], s["intermediate"]) == (1, 1, 1, 1)
    assert s["active_frac_median"] == pytest.approx(0.5)  # five images at 1/3, four at 2/3, one at 1
