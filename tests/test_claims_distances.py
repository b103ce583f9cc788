"""Known-answer tests of claim 4 (sdrlib.claims.distances): a planted sparse code and its dense rotated twin carry
the same class information, so both beat controls that carry none; a control that carries the classes as well as
the code does is not beaten."""

import pytest
import torch

from sdrlib.claims import distances, planted


@pytest.fixture(scope="module")
def split():
    labels = planted.labels_for(800, 10, seed=0)
    code = planted.sparse_code(labels, seed=1)
    dense = planted.dense_twin(code, seed=2)
    noise = [planted.control_code(800, seed=s) for s in (10, 11, 12)]
    tr, te = torch.arange(600), torch.arange(600, 800)

    def agree(x):
        return distances.knn_agreement(x[tr], labels[tr], x[te], labels[te], k=10)

    return agree, code, dense, noise


def test_claim_4_holds_on_the_sparse_code_and_on_its_dense_twin(split):
    agree, code, dense, noise = split
    controls = {"untrained": [agree(n) for n in noise], "pixels-like": [agree(noise[0] * 2 + 1)]}
    for x in (code, dense):
        res = distances.distances_claim([agree(x)], controls, n_boot=300)
        assert res.verdict == "holds"
        assert res.n_control == 3


def test_claim_4_fails_against_a_control_as_good_as_the_code(split):
    agree, code, _, noise = split
    res = distances.distances_claim([agree(code)], {"the code itself": [agree(code)]}, n_boot=200)
    assert res.parts[0].effect.value == pytest.approx(0.0)
    assert res.verdict == "fails"  # confidently below the smallest effect that counts


def test_the_best_control_is_chosen_per_resample(split):
    agree, code, _, noise = split
    a = agree(code)
    res = distances.distances_claim([a], {"weak": [a * 0.5], "strong": [a * 0.9]}, n_boot=200)
    assert res.parts[0].effect.value == pytest.approx(0.1 * a.mean().item())


def test_controls_with_several_networks_must_match(split):
    agree, code, _, noise = split
    a = agree(code)
    with pytest.raises(ValueError, match="as many each"):
        distances.distances_claim([a], {"x": [a, a], "y": [a, a, a]})
    with pytest.raises(ValueError, match="same 200 queries"):
        distances.distances_claim([a], {"x": [a[:10]]})
