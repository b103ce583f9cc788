"""Known answers for the analysis functions the chapters call: the k-NN vote and its tie rule, the overlap
ratio, the relative dead-channel rule."""

import math

import pytest
import torch

from sdrlib import analysis, sparsity, stats


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


# ------------------------------------------------------------------ chapter 3's tables, by hand

# six training images on a line and two held-out queries; "x" finds for each query two neighbours of its label among
# three, "reversed" (the line read backwards, 12 - x) one of three, and the vote goes wrong
SIX = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
SIX_LABELS = torch.tensor([0, 0, 1, 1, 1, 0])
QUERIES, QUERY_LABELS = torch.tensor([[0.9], [11.2]]), torch.tensor([0, 1])


def six_features():
    train = {"x": SIX, "reversed": 12 - SIX}
    test = {"x": QUERIES, "reversed": QUERIES}
    return train, test


def test_knn_by_representation_on_six_points():
    train, test = six_features()
    per = analysis.knn_by_representation(train, SIX_LABELS, test, QUERY_LABELS, k=3)
    assert list(per) == ["x", "reversed"]
    # x: 0.9 -> 1, 0, 2 (labels 0, 0, 1); 11.2 -> 11, 12, 10 (labels 1, 0, 1)
    assert per["x"]["agreement"].tolist() == pytest.approx([2 / 3, 2 / 3])
    assert per["x"]["correct"].tolist() == [1.0, 1.0]
    # reversed: 0.9 -> 1, 0, 2 of 12 - x, that is images 4, 5, 3 (labels 1, 0, 1); 11.2 -> images 1, 0, 2 (0, 0, 1)
    assert per["reversed"]["agreement"].tolist() == pytest.approx([1 / 3, 1 / 3])
    assert per["reversed"]["correct"].tolist() == [0.0, 0.0]
    some = analysis.knn_by_representation(train, SIX_LABELS, test, QUERY_LABELS, 3, keys=["reversed", "texture", "x"])
    assert list(some) == ["reversed", "x"]  # the order asked for; a representation the data lack is skipped
    with pytest.raises(ValueError, match="no held-out ones"):
        analysis.knn_by_representation(train, SIX_LABELS, {"x": QUERIES}, QUERY_LABELS, 3)
    with pytest.raises(ValueError, match="none of the representations"):
        analysis.knn_by_representation(train, SIX_LABELS, test, QUERY_LABELS, 3, keys=["texture"])


def test_knn_intervals_and_paired_differences_on_six_points():
    train, test = six_features()
    per = analysis.knn_by_representation(train, SIX_LABELS, test, QUERY_LABELS, k=3)
    scores = analysis.knn_intervals(per, 3, n_boot=50, seed=4)
    assert list(scores) == ["3-NN agreement", "3-NN accuracy"]
    assert list(scores["3-NN agreement"]) == ["x", "reversed"]
    assert scores["3-NN agreement"]["x"].value == pytest.approx(2 / 3)
    assert scores["3-NN accuracy"]["reversed"].value == 0.0
    assert scores["3-NN agreement"]["reversed"] == stats.mean_ci(per["reversed"]["agreement"], 50, seed=4)
    diffs = analysis.paired_differences(per, "x", "agreement", n_boot=50)
    assert list(diffs) == ["reversed"]
    assert (diffs["reversed"].value, diffs["reversed"].lo, diffs["reversed"].hi) == pytest.approx((1 / 3,) * 3)
    assert analysis.side_of_zero(diffs["reversed"]) == "better"
    with pytest.raises(ValueError, match="not among"):
        analysis.paired_differences(per, "phi mid")


def test_side_of_zero():
    assert analysis.side_of_zero(stats.Interval(-0.2, -0.3, -0.1)) == "worse"
    assert analysis.side_of_zero(stats.Interval(0.0, -0.1, 0.1)) == "tied"
    assert analysis.side_of_zero(stats.Interval(0.2, 0.1, 0.3), above="higher") == "higher"


def test_cluster_table_on_two_separated_groups():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    x = (labels * 10.0 + torch.tensor([0.0, 0.1, 0.2, 0.3, 0.0, 0.1, 0.2, 0.3]))[:, None]
    feats = {"a": x, "b": torch.cat([x, -x], 1)}
    rows, scores = analysis.cluster_table(feats, labels, ["b", "c", "a"], multiples=[1, 2, 10], restarts=2, n_rep=20)
    # 1 x, 2 x and 10 x two labels, capped at half of 8 images: 2 and 4 clusters, each once
    assert [(r["clusters"], r["representation"]) for r in rows] == [(2, "b"), (2, "a"), (4, "b"), (4, "a")]
    assert list(scores) == [f"k-means {n}: {m}" for n in (2, 4) for m in ("nmi", "ari", "purity")]
    for m in ("nmi", "ari", "purity"):  # two clusters are the two groups: perfect on every half too
        iv = scores[f"k-means 2: {m}"]["a"]
        assert (iv.value, iv.lo, iv.hi) == pytest.approx((1.0, 1.0, 1.0))
        assert rows[1][m] is iv
    assert scores["k-means 4: purity"]["b"].value == 1.0  # four clusters split the groups: still pure
    assert scores["k-means 4: nmi"]["b"].value < 1.0


def test_probe_table_on_separable_data():
    g = torch.Generator().manual_seed(0)
    ytr, yte = torch.arange(40) % 2, torch.arange(20) % 2
    xtr = torch.randn(40, 3, generator=g) + 10 * ytr[:, None]
    xte = torch.randn(20, 3, generator=g) + 10 * yte[:, None]
    train, test = {"phi mid": xtr, "pixels": xtr}, {"phi mid": xte, "pixels": xte}
    rows, scores = analysis.probe_table(train, ytr, test, yte, ["phi mid", "texture stats", "pixels"], epochs=100,
                                        max_epochs=1000, n_boot=50)  # fmt: skip
    assert [r["representation"] for r in rows] == ["phi mid", "pixels"]
    assert list(rows[0]) == ["representation", "ours (standardised)", analysis.AUTHORS_PROBE, "epochs (authors')"]
    assert list(rows[1]) == ["representation", "ours (standardised)"]  # the authors' protocol is a probe of phi
    assert scores["probe, ours"]["pixels"].value == 1.0
    assert scores["probe, authors'"]["phi mid"].value == 1.0
    assert list(scores["probe, authors'"]) == ["phi mid"]
    assert 100 <= rows[0]["epochs (authors')"] <= 1000


def test_class_differences_by_hand():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    a = torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0, 0.0])  # per class: 1/2, 1, 0
    b = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 1.0])  # per class: 1, 1/3, 1
    rows = analysis.class_differences(a, b, labels, ["zero", "one", "two, a long name"], ("φ", "px"), width=3)
    assert [r["class"] for r in rows] == ["two", "one", "zer"]  # |-1| > |2/3| > |-1/2|
    assert rows[1] == pytest.approx({"class": "one", "queries": 3, "φ": 1.0, "px": 1 / 3, "difference": 2 / 3})
    assert len(analysis.class_differences(a, b, labels, ["0", "1", "2"], top=2)) == 2
    with pytest.raises(ValueError, match="one shape"):
        analysis.class_differences(a[:5], b, labels, ["0", "1", "2"])


def test_knn_versus_sigma_by_hand():
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    grid = torch.tensor([[0.0, 1, 2, 10, 11, 12], [0.0, 10, 1, 11, 2, 12]])[:, :, None]
    # level 0: both nearest others share the label; level 1 (labels interleaved along the line): 1/2, 0, 1/2,
    # 1/2, 0, 1/2
    assert analysis.knn_versus_sigma(grid, labels, k=2) == pytest.approx([1.0, 1 / 3])
    with pytest.raises(ValueError, match="grid must be"):
        analysis.knn_versus_sigma(grid[0], labels)


# ------------------------------------------------------------------ k-NN, clusters, probes and sample distances on
# planted data (moved from test_representation.py)


def clustered(n_per=20, n_cls=3, dim=6, spread=0.01, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(dim)[:n_cls] * 5
    labels = torch.arange(n_cls).repeat_interleave(n_per)
    return centres[labels] + spread * torch.randn(len(labels), dim, generator=g), labels


def test_knn_on_clusters_and_on_noise():
    f, y = clustered()
    s = analysis.knn_scores(f, y, k=5)
    assert s["agreement"] == 1.0
    assert s["accuracy"] == 1.0
    g = torch.Generator().manual_seed(1)
    r = analysis.knn_scores(torch.randn(600, 4, generator=g), torch.randint(0, 3, (600,), generator=g), k=10)
    assert abs(r["agreement"] - 1 / 3) < 0.05  # chance level for 3 balanced classes
    with pytest.raises(ValueError, match="k must be"):
        analysis.knn_scores(f, y, k=len(y))


def test_kmeans_perfect_clusters_give_nmi_1():
    f, y = clustered()
    s = analysis.kmeans_scores(f, y, restarts=3)
    assert s == {"nmi": pytest.approx(1.0), "ari": pytest.approx(1.0), "purity": pytest.approx(1.0)}


def test_linear_probe_separable_and_chance():
    f, y = clustered(spread=0.5)
    ft, yt = clustered(spread=0.5, seed=1)
    assert analysis.linear_probe(f, y, ft, yt, epochs=100)["test_accuracy"] == 1.0
    g = torch.Generator().manual_seed(0)
    noise = analysis.linear_probe(
        torch.randn(300, 5, generator=g),
        torch.randint(0, 2, (300,), generator=g),
        torch.randn(300, 5, generator=g),
        torch.randint(0, 2, (300,), generator=g),
    )
    assert abs(noise["test_accuracy"] - 0.5) < 0.1


def test_compare_ranks_a_clustered_feature_above_noise():
    f, y = clustered(n_per=30, spread=1.0)
    ft, yt = clustered(n_per=30, spread=1.0, seed=1)
    g = torch.Generator().manual_seed(0)
    rows = analysis.compare(
        {"good": f, "noise": torch.randn(f.shape, generator=g)},
        y,
        {"good": ft, "noise": torch.randn(ft.shape, generator=g)},
        yt,
        k=5,
        kmeans_restarts=2,
        probe_epochs=50,
    )
    good, noise = rows
    assert good["knn_agreement"] > 0.9
    assert good["nmi"] > 0.8
    assert good["probe_accuracy"] > 0.9
    assert noise["knn_agreement"] < 0.5
    assert noise["nmi"] < 0.2


def test_sample_distances_known_answers():
    a = torch.zeros(2, 1, 2, 2)
    b = torch.stack([torch.full((1, 2, 2), 0.5), torch.full((1, 2, 2), 1.0), torch.zeros(1, 2, 2)])
    d, i = analysis.nearest_image(a + 0.1, b, chunk=2)
    torch.testing.assert_close(d, torch.tensor([0.1, 0.1], dtype=torch.float64))
    assert i.tolist() == [2, 2]
    torch.testing.assert_close(analysis.rms_distance(a, b)[0], torch.tensor([0.5, 1.0, 0.0], dtype=torch.float64))
    assert analysis.mean_pairwise(b) == pytest.approx((0.5 + 0.5 + 1.0) * 2 / 6)
    assert analysis.energy_distance(b, b) == pytest.approx(0.0, abs=1e-12)
    assert analysis.energy_distance(a, b) > 0
