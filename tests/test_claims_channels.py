"""Known-answer tests of the top-image label measures of a channel (sdrlib.claims.channels): pair agreement of a
few labels, its chance level, and the agreement of each channel's top images on a planted code."""

import math

import pytest
import torch

from sdrlib.claims import channels


def test_pair_agreement_counts_the_pairs_of_distinct_items_that_share_a_label():
    assert channels.pair_agreement(torch.tensor([1, 1, 1])) == 1.0
    assert channels.pair_agreement(torch.tensor([0, 1, 2])) == 0.0
    assert channels.pair_agreement(torch.tensor([0, 0, 1, 1])) == pytest.approx(4 / 12)
    assert math.isnan(channels.pair_agreement(torch.tensor([3])))


def test_pair_chance_is_the_sum_of_squared_label_shares():
    assert channels.pair_chance(torch.tensor([0, 0, 1, 1])) == pytest.approx(0.5)
    assert channels.pair_chance(torch.tensor([0, 0, 0, 1])) == pytest.approx(0.75**2 + 0.25**2)
    assert channels.pair_chance(torch.tensor([2, 2, 2])) == pytest.approx(1.0)


def test_top_label_agreement_on_a_planted_code():
    labels = torch.arange(12) % 4  # images 0, 4, 8 have label 0; 1, 5, 9 label 1; ...
    phi = 0.01 * torch.rand(12, 3, generator=torch.Generator().manual_seed(0))
    phi[[0, 4, 8], 0] = torch.tensor([3.0, 2.0, 1.0])  # a pure channel: its top 3 images share label 0
    phi[[0, 1, 2], 1] = torch.tensor([3.0, 2.0, 1.0])  # a mixed one: labels 0, 1, 2
    phi[[0, 4, 1], 2] = torch.tensor([3.0, 2.0, 1.0])  # labels 0, 0, 1: 2 of the 6 ordered pairs agree
    got = channels.top_label_agreement(phi, labels, [0, 1, 2], k=3)
    assert got.dtype == torch.float64
    assert got.tolist() == pytest.approx([1.0, 0.0, 1 / 3])
    assert channels.top_label_agreement(phi, labels, torch.tensor([2]), k=3).tolist() == pytest.approx([1 / 3])
