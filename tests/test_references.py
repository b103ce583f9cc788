"""The book's reference list (sdrlib.references): checkpoints/references.yaml and what is read from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdrlib import checkpoints, references


def test_every_reference_of_a_profile_is_a_shipped_checkpoint() -> None:
    for name in references.reference_names("cpu"):
        assert checkpoints.exists(checkpoints.REPO_CHECKPOINTS / name), name
        assert references.trained_networks(name)[0] == name


def test_a_profile_with_no_reference_is_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match="lists no reference checkpoint for profile 'nowhere'"):
        references.reference_names("nowhere")


def test_an_unknown_verdict_is_refused_naming_the_file(tmp_path: Path) -> None:
    f = tmp_path / "references.yaml"
    f.write_text("some-run:\n  profiles: [cpu]\n  expect: {denoiser: perhaps}\n")
    with pytest.raises(ValueError, match="some-run: unknown verdict"):
        references.references(path=f)


def test_an_entry_reads_with_its_defaults(tmp_path: Path) -> None:
    f = tmp_path / "references.yaml"
    f.write_text("a:\n  profiles: [cpu]\n  expect: {denoiser: holds}\nb:\n  profiles: []\n")
    refs = references.references(path=f)
    assert list(refs) == ["a", "b"]
    assert refs["b"] == {"profiles": [], "expect": {}, "seeds": [], "full_seeds": [], "history": {}, "recipe_of": None}
    assert list(references.references("cpu", path=f)) == ["a"]
    f.write_text("a:\n  profiles: [cpu]\nb:\n  profiles: []\n  recipe_of: c\n")
    with pytest.raises(ValueError, match="b: recipe_of 'c' is not an entry"):
        references.references(path=f)


def test_each_recipe_twin_sees_its_references_data_and_number_of_images() -> None:
    """The authors' recipe runs (#24 item 3) are compared with a reference at equal budget: same data set, crops,
    preset and images seen (steps times batch), and a recipe of their own recorded in their config."""
    twins = references.recipe_twins()
    assert set(twins) == {"fashion-mnist-small-32-authors", "textures-paper-small-64-authors"}
    for twin, ref in twins.items():
        a, b = (checkpoints.read_config(n) for n in (twin, ref))
        for k in ("data", "preset", "size", "crop"):
            assert a["train"].get(k) == b["train"].get(k), (twin, k)
        assert a["train"]["steps"] * a["train"]["batch"] == b["train"]["steps"] * b["train"]["batch"], twin
        assert a["recipe"] == twin and b.get("recipe") != twin


def test_the_chapters_names_stay_reachable_from_checkpoints() -> None:
    """The chapters call these as checkpoints.NAME; sdrlib.references and sdrlib.stopping own them."""
    for name in ("reference_names", "references", "seeds_of", "trained_networks", "expected_verdict", "recipe_twins"):
        assert getattr(checkpoints, name) is getattr(references, name)
