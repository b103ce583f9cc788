"""The verdict page (sdrlib.verdicts): the scoreboard with history columns, Holm's correction computed from the
glued p-values, the parts' columns for claims tested by the claims layer."""

import pytest

from sdrlib import verdicts
from sdrlib.claims import catalogue


def test_scoreboard_pastes_each_reference_and_prints_history():
    lines = verdicts.scoreboard(["ref-a"], {"old": {"sparsity": "fails"}})
    assert lines[0] == "| claim | `ref-a` | `old` (retired) |"
    row = next(r for r in lines if r.startswith("| 1. sparsity |"))  # the claim's number and key: a narrow column
    assert verdicts.glue_key("sparsity", "ref-a", "verdict") in row
    assert row.endswith("| fails |")
    denoiser = next(r for r in lines if r.startswith("| denoiser |"))
    assert denoiser.endswith("| not tested |")  # a claim the retired reference's history does not name


def test_family_table_applies_holm_across_the_page():
    lines = verdicts.family_table({("sparsity", "a"): 0.01, ("subspaces", "a"): 0.04, ("selectivity", "b"): 0.02})
    body = [r for r in lines if r.startswith("| ") and "reference" not in r]
    # sorted 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04
    assert [r.split(" | ")[3] for r in body] == ["0.0300", "0.0400", "0.0400"]
    assert [r.rstrip(" |").rsplit("| ", 1)[1] for r in body] == ["yes", "yes", "yes"]
    assert "no family-wise statement" in verdicts.family_table({})[0]


def test_page_shows_parts_and_networks_for_claims_with_parts():
    text = verdicts.page(["ref-a"])
    assert verdicts.glue_key("sparsity", "ref-a", "networks") in text
    assert verdicts.glue_key("sparsity", "ref-a", "part") in text
    for c in catalogue.CLAIMS:  # a claim with parts shows its deciding part; one without, the single interval
        assert (verdicts.glue_key(c.key, "ref-a", "part") in text) == bool(c.parts), c.key
    for part in catalogue.BY_KEY["sparsity"].parts:
        assert f"part *{part.name}*" in text
        assert f"counts from {part.min_effect}" in text


def test_record_result_needs_a_known_claim():
    with pytest.raises(ValueError, match="unknown claim"):
        verdicts.record("nope", "ref", verdicts.Interval(0, 0, 0), "holds")
