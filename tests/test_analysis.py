"""Known answers for the analysis functions the chapters call: the k-NN vote and its tie rule, the overlap
ratio, the relative dead-channel rule."""

import math

import pytest
import torch

from sdrlib import analysis, sparsity


def test_vote_majority_and_tie_to_the_nearer_label():
    nl = torch.tensor(
        [
            [2, 1, 1, 0],  # 1 has two votes: majority
            [0, 1, 0, 1],  # tie 0/1: label 0's neighbours rank nearer (ranks 0+2 < 1+3)
            [1, 0, 1, 0],  # tie: label 1's rank nearer
            [1, 0, 0, 1],  # tie with equal rank sums: the smaller label
            [3, 3, 3, 3],
        ]
    )
    assert analysis.vote(nl, 4).tolist() == [1, 0, 1, 0, 3]


def test_knn_predict_on_a_line():
    base = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    q = torch.tensor([[0.4], [6.4], [5.6], [30.0]])
    assert analysis.knn_predict(base, labels, q, k=3).tolist() == [0, 1, 0, 1]
    # k = 2 at 6.1: neighbours 10 (label 1, dist 3.9) and 2 (label 0, dist 4.1): tie, nearer wins
    assert analysis.knn_predict(base, labels, torch.tensor([[6.1]]), k=2).tolist() == [1]
    with pytest.raises(ValueError, match="k must be"):
        analysis.knn_predict(base, labels, q, k=7)


def test_knn_per_query_averages_to_knn_scores():
    g = torch.Generator().manual_seed(0)
    f, y = torch.randn(200, 3, generator=g), torch.randint(0, 4, (200,), generator=g)
    per = analysis.knn_per_query(f, y, 5)
    s = analysis.knn_scores(f, y, 5)
    assert per["agreement"].mean().item() == pytest.approx(s["agreement"])
    assert per["correct"].mean().item() == pytest.approx(s["accuracy"])


def test_overlap_ratio_known_values_and_zero_guard():
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 1, 1, 1]], dtype=torch.bool)
    labels = torch.tensor([0, 0, 1, 1])
    within, across = (1 + 1 + 2 / 3 + 2 / 3) / 4, (1 / 4 + 1 / 4) / 8 * 2
    assert sparsity.overlap_ratio(mask, labels) == pytest.approx(within / across)
    disjoint = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=torch.bool)
    assert math.isnan(sparsity.overlap_ratio(disjoint, labels))  # across = 0: no ratio, no division error
    assert math.isnan(sparsity.overlap_ratio(mask, torch.zeros(4, dtype=torch.long)))  # one class only


def test_relative_dead_rule():
    phi = torch.tensor([[10.0, 0.05, 0.0, 0.2], [5.0, 0.09, 0.0, 0.0]])
    # channel maxima 10, 0.09, 0, 0.2; 1 % of the largest is 0.1
    assert sparsity.relative_dead(phi, 0.01).tolist() == [False, True, True, False]
    assert sparsity.dead_channels(phi).tolist() == [False, False, True, False]


def test_threshold_free_sparsity_known_values():
    # 4 images x 4 channels; every channel peaks at 1 somewhere, so normalising changes nothing
    eye = torch.eye(4)
    flat = torch.ones(4, 4)
    assert torch.allclose(sparsity.hoyer(eye), torch.ones(4))  # one channel per image: maximally sparse
    assert torch.allclose(sparsity.hoyer(flat), torch.zeros(4), atol=1e-6)  # all equal: not sparse
    assert torch.allclose(sparsity.participation_ratio(eye), torch.full((4,), 0.25))
    assert torch.allclose(sparsity.participation_ratio(flat), torch.ones(4))
    assert torch.allclose(sparsity.top_mass(flat, 1), torch.full((4,), 0.25))
    mixed = torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 4)
    assert torch.allclose(
        sparsity.participation_ratio(mixed, torch.tensor([True, True, False, False])), torch.ones(4)
    )  # two live channels, both active
    # a channel 50x larger does not dominate: each channel is read relative to its own maximum
    scaled = eye * torch.tensor([50.0, 1.0, 1.0, 1.0])
    assert torch.allclose(sparsity.hoyer(scaled), torch.ones(4))
    # ... but one 1000x larger leaves the others below 1 % of it: dead by the relative rule
    assert sparsity.relative_dead(eye * torch.tensor([1000.0, 1.0, 1.0, 1.0])).tolist() == [False, True, True, True]


def test_overlap_ratio_ignores_an_image_paired_with_its_own_copy():
    """A bootstrap resample repeats images; with their ids, a copy does not count as a same-class pair."""
    mask = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 1], [0, 1, 0, 1]], dtype=torch.bool)
    labels = torch.tensor([0, 0, 1, 1])
    idx = torch.tensor([0, 0, 1, 2, 3, 3])
    plain = sparsity.overlap_ratio(mask, labels)
    assert sparsity.overlap_ratio(mask[idx], labels[idx], idx) == pytest.approx(plain, rel=0.2)
    assert sparsity.overlap_ratio(mask[idx], labels[idx]) > sparsity.overlap_ratio(mask[idx], labels[idx], idx)
