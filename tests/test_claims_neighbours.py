"""Known-answer tests of the nearest-neighbour measures (sdrlib.claims.neighbours): a query's ranking by
(standardised) Euclidean distance, and each image's leave-one-out label agreement with its nearest neighbours."""

import pytest
import torch

from sdrlib import analysis
from sdrlib.claims import neighbours


@pytest.fixture(scope="module")
def features() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(30, 5, generator=g, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.1, 3.0, 100.0])


def test_ranking_orders_by_standardised_euclidean_distance(features):
    order, dist = neighbours.ranking(features, 7)
    z = analysis.standardize(features)[0]
    d = (z - z[7]).pow(2).sum(1).sqrt()
    assert int(order[0]) == 7
    assert dist[0] == 0
    assert torch.equal(order, d.argsort(stable=True))
    assert torch.allclose(dist, d[order])
    raw, raw_dist = neighbours.ranking(features, 7, standardized=False)
    assert torch.equal(raw, (features - features[7]).norm(dim=1).argsort(stable=True))
    assert not torch.equal(raw, order)  # the large-scale coordinate dominates raw distances
    assert (raw_dist.diff() >= 0).all()


def test_ranking_keeps_the_query_first_beside_an_exact_copy(features):
    f = torch.cat([features[:5], features[2:3]])  # row 5 is a copy of row 2
    assert neighbours.ranking(f, 5)[0][:2].tolist() == [5, 2]
    assert neighbours.ranking(f, 2)[0][:2].tolist() == [2, 5]


def test_ranking_refuses_a_query_outside_the_set(features):
    for bad in (-1, 30):
        with pytest.raises(ValueError, match="query must be in \\[0, 29\\]"):
            neighbours.ranking(features, bad)


def test_neighbour_agreement_is_leave_one_out_nearest_label(features):
    labels = torch.arange(30) % 3
    z = analysis.standardize(features)[0]
    d = torch.cdist(z, z)
    d.fill_diagonal_(float("inf"))
    agree = neighbours.neighbour_agreement(features, labels)
    assert torch.equal(agree, (labels[d.argmin(1)] == labels).double())
    near3 = d.topk(3, largest=False).indices
    want3 = (labels[near3] == labels[:, None]).double().mean(1)
    assert torch.allclose(neighbours.neighbour_agreement(features, labels, 3), want3)


def test_neighbour_agreement_refuses_features_that_do_not_match_the_labels(features):
    with pytest.raises(ValueError, match="N = 29 labels"):
        neighbours.neighbour_agreement(features, torch.zeros(29, dtype=torch.long))
