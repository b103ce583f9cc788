"""Known-answer tests of claims 1-3 (sdrlib.claims.sparse): a planted code that is sparse per image, with two
populations of channels and class-specific supports, passes all three against an untrained-like control; the same
code made dense by a random rotation (same distances, same class information) fails all three."""

import pytest
import torch

from sdrlib import sparsity
from sdrlib.claims import planted, sparse


@pytest.fixture(scope="module")
def codes():
    labels = planted.labels_for(400, 10, seed=0)
    code = planted.sparse_code(labels, seed=1)
    controls = [planted.control_code(400, seed=s) for s in (10, 11, 12)]
    return labels, code, planted.dense_twin(code, seed=2), controls


def test_planted_codes_are_what_they_say(codes):
    labels, code, dense, _ = codes
    assert (code >= 0).all()
    assert (dense >= 0).all()
    assert torch.cdist(code.double(), code.double()) == pytest.approx(
        torch.cdist(dense.double(), dense.double()), abs=1e-5
    )
    assert sparsity.own_max_fraction(code).mean() < 0.25
    assert sparsity.own_max_fraction(dense).mean() > 0.9


def test_claim_1_holds_on_a_sparse_code_and_fails_on_its_dense_twin(codes):
    labels, code, dense, controls = codes
    sparse_res = sparse.sparsity_claim([code], controls, n_boot=200)
    dense_res = sparse.sparsity_claim([dense], controls, n_boot=200)
    assert [p.verdict for p in sparse_res.parts] == ["holds", "holds"]
    assert sparse_res.verdict == "holds"
    assert dense_res.verdict == "fails"
    assert dense_res.headline.name == "few"


def test_claim_2_holds_on_two_planted_populations_and_fails_on_the_dense_twin(codes):
    labels, code, dense, controls = codes
    assert sparse.selectivity_claim([code], controls, n_boot=60).verdict == "holds"
    dense_res = sparse.selectivity_claim([dense], controls, n_boot=60)
    assert dense_res.verdict == "fails"
    assert dense_res.headline.name == "two populations"


def test_claim_3_holds_on_class_supports_and_fails_on_the_dense_twin(codes):
    labels, code, dense, controls = codes
    assert sparse.subspaces_claim([code], controls, labels, n_boot=60).verdict == "holds"
    dense_res = sparse.subspaces_claim([dense], controls, labels, n_boot=60)
    assert dense_res.verdict == "fails"
    assert dense_res.headline.effect.hi < 0.01  # every channel of every image active: no contrast at all


def test_a_network_against_itself_is_not_a_finding(codes):
    """With the planted code as its own control, "sparser" and "learned" give 0: neither claim can hold."""
    labels, code, _, _ = codes
    res1 = sparse.sparsity_claim([code], [code], n_boot=100)
    assert res1.parts[1].effect.value == pytest.approx(0.0)
    assert res1.verdict == "fails"
    res2 = sparse.selectivity_claim([code], [code], n_boot=30)
    assert res2.parts[1].effect.value == pytest.approx(0.0)
    res3 = sparse.subspaces_claim([code], [code], labels, n_boot=30)
    assert res3.parts[0].effect.value == pytest.approx(0.0)


def test_claim_1_measures_raw_and_scaled(codes):
    labels, code, _, controls = codes
    names = [r["measure"] for r in sparse.sparsity_claim([code], controls, n_boot=50).measures]
    assert "Hoyer sparsity, raw" in names
    assert "Hoyer sparsity, per-channel scaled" in names
    assert "participation ratio, raw" in names


def test_dip_statistic_separates_one_mode_from_two():
    g = torch.Generator().manual_seed(0)
    one = torch.randn(300, generator=g).numpy()
    two = torch.cat([torch.randn(150, generator=g), torch.randn(150, generator=g) + 6]).numpy()
    crit = sparse.dip_critical(300)
    assert sparse.dip(one) < crit < sparse.dip(two)


def test_claims_refuse_mismatched_images(codes):
    labels, code, _, controls = codes
    with pytest.raises(ValueError, match="same images"):
        sparse.sparsity_claim([code[:10]], controls)
    with pytest.raises(ValueError, match="at least one trained"):
        sparse.subspaces_claim([], controls, labels)
    with pytest.raises(ValueError, match="labels cover"):
        sparse.subspaces_claim([code], controls, labels[:5])


def test_point_values_and_tables_agree_with_the_claims(codes):
    labels, code, dense, controls = codes
    pv = sparse.point_values(code, labels)
    assert pv["own-max active share"] == pytest.approx(sparsity.own_max_fraction(code).mean().item())
    assert pv["support contrast"] > 0.1
    assert sparse.point_values(dense, labels)["support contrast"] == pytest.approx(0.0, abs=1e-3)
    rows = sparse.network_table({"sparse": code, "dense": dense}, labels)
    assert [r["network"] for r in rows] == ["sparse", "dense"]
    assert rows[1]["own-max active share"] > 0.9
    grid = {"phi mid": torch.stack([code, dense]), "untrained phi mid": torch.stack(controls[:2])}
    by_sigma = sparse.sigma_table(grid, [0.0, 0.5], labels)
    assert by_sigma[0]["raw Hoyer, trained"] == pytest.approx(pv["raw Hoyer"])
    assert by_sigma[1]["dip of log CV, trained"] == pytest.approx(sparse.point_values(dense, labels)["dip of log CV"])


def test_dead_and_block_tables_count_what_they_say(codes):
    labels, code, _, controls = codes
    feats = {"phi mid": code, "untrained phi mid": controls[0], "pixels": code}
    dead = sparse.dead_table(feats)
    assert [r["representation"] for r in dead] == ["phi mid", "untrained phi mid"]  # baselines left out
    assert dead[0]["dead (< 1% of the largest maximum)"] == 32  # the planted floor channels (128 - 16 - 80)
    (row,) = sparse.block_table(feats, ["mid"], n_boot=100)
    assert row["live"] == 96


def test_weighted_contrast_equals_the_resampled_pairs(codes):
    """Claim 3's contrast on a bootstrap resample, computed from multiplicities, equals the direct count over the
    resampled pairs (copies of one image never paired)."""
    labels, code, _, _ = codes
    j = sparsity.jaccard_matrix(sparsity.own_max_active(code))
    idx = torch.randint(0, len(labels), (len(labels),), generator=torch.Generator().manual_seed(4))
    sub, lab = j[idx][:, idx], labels[idx]
    same, other = lab[:, None] == lab[None, :], idx[:, None] != idx[None, :]
    direct = (sub[same & other].mean() - sub[~same].mean()).item()
    assert sparse._support_contrast(j, labels, idx) == pytest.approx(direct, abs=1e-6)


def test_purity_of_top_images_is_high_for_selective_channels(codes):
    """On the planted code the most variable channels are the class-specific ones: their top images share a label;
    the least variable ones (on for every image) do not beyond chance."""
    labels, code, _, controls = codes
    (row,) = sparse.purity_table({"planted": code}, labels, k=8, share=0.15)  # 14 of 96: fewer than the 16 shared
    assert row["top images' purity, most variable"] > 0.9
    assert row["least variable"] < 0.3
    assert row["chance"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="share"):
        sparse.purity_table({"planted": code}, labels, share=0.9)
