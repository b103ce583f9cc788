"""How parts combine into a claim's verdict (sdrlib.claims.rules), and the catalogue of claims."""

import pytest

from sdrlib.claims import catalogue, rules
from sdrlib.stats import Interval


def part(lo: float, hi: float, min_effect: float = 0.0, name: str = "p") -> rules.Part:
    return rules.Part(name, Interval((lo + hi) / 2, lo, hi), min_effect)


def test_every_part_must_hold():
    assert rules.combine([part(0.1, 0.2), part(0.3, 0.4)]) == "holds"
    assert rules.combine([part(0.1, 0.2), part(-0.4, -0.3)]) == "fails"
    assert rules.combine([part(0.1, 0.2), part(-0.1, 0.3)]) == "undecided"
    assert rules.combine([part(0.1, 0.2), part(0.01, 0.3, 0.05)]) == "holds weakly"
    assert rules.combine([part(-0.1, 0.3), part(-0.4, -0.3)]) == "fails"  # a failing part decides


def test_the_deciding_part_is_the_first_worst_one():
    parts = [part(0.1, 0.2, name="a"), part(-0.1, 0.3, name="b"), part(-0.2, 0.3, name="c")]
    assert rules.deciding(parts).name == "b"
    res = rules.Result("sparsity", tuple(parts), 1, 3)
    assert res.verdict == "undecided"
    assert res.headline.name == "b"
    assert [r["word"] for r in res.rows()] == ["holds", "undecided", "undecided"]
    assert res.rows()[0]["networks (trained, control)"] == "1, 3"


def test_a_claim_needs_a_part():
    with pytest.raises(ValueError, match="at least one part"):
        rules.combine([])


def test_catalogue_parts_state_their_minimum_effects():
    for c in catalogue.CLAIMS:
        for p in c.parts:
            assert p.min_effect >= 0, (c.key, p.name)
    assert catalogue.BY_KEY["sparsity"].part("sparser").min_effect > 0
    with pytest.raises(ValueError, match="no part 'nope'"):
        catalogue.BY_KEY["sparsity"].part("nope")
