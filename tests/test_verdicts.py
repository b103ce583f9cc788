"""The verdict page (sdrlib.verdicts): the scoreboard with history columns, Holm's correction computed from the
glued p-values, the parts' columns for claims tested by the claims layer."""

import re
from pathlib import Path

import pytest

from sdrlib import book, verdicts
from sdrlib.claims import catalogue

ROOT = Path(__file__).resolve().parent.parent


def test_scoreboard_pastes_each_reference_and_prints_history():
    lines = verdicts.scoreboard(["ref-a"], {"old": {"sparsity": "fails"}})
    assert lines[0] == "| claim | `ref-a` | `old` (retired) |"
    row = next(r for r in lines if r.startswith("| 1. sparsity |"))  # the claim's number and key: a narrow column
    assert verdicts.glue_key("sparsity", "ref-a", "verdict") in row  # not read from a notebook: its glue reference
    assert row.endswith(f"| {verdicts.coloured('fails')} |")
    denoiser = next(r for r in lines if r.startswith("| denoiser |"))
    assert denoiser.endswith("| not tested |")  # a claim the retired reference's history does not name


def test_scoreboard_colours_the_words_the_chapters_glued():
    lines = verdicts.scoreboard(["ref-a"], {}, {("sparsity", "ref-a"): "holds weakly"})
    row = next(r for r in lines if r.startswith("| 1. sparsity |"))
    assert row == f"| 1. sparsity | {verdicts.coloured('holds weakly')} |"
    assert verdicts.COLOURS["holds weakly"] in row
    assert verdicts.coloured("not tested") == "not tested"
    assert len(set(verdicts.COLOURS.values())) == len(verdicts.COLOURS) == 4


def test_conclusions_pick_one_sentence_per_word_and_paste_the_numbers():
    """Two references that agree share one sentence; references that part get one clause per word; a claim with no
    verdict read is left out; every number is a glue reference, never typed."""
    said = {("sparsity", "a"): "fails", ("sparsity", "b"): "fails", ("subspaces", "a"): "holds"}
    said[("subspaces", "b")] = "undecided"
    lines = verdicts.conclusions(["a", "b"], said)
    assert len(lines) == 2
    sparsity, subspaces = lines
    assert sparsity.startswith(f"- **{catalogue.BY_KEY['sparsity'].claim}**: not supported by what we measured on")
    assert sparsity.count("not supported") == 1
    assert verdicts.glue_key("sparsity", "a", "number") in sparsity
    assert verdicts.glue_key("sparsity", "b", "number") in sparsity
    assert "supported on `a`" in subspaces
    assert "not decided on `b`" in subspaces
    assert subspaces.index("supported on") < subspaces.index("not decided")  # the page's order of words


def test_the_page_concludes_only_from_verdicts_read_back():
    assert "## What we conclude" not in verdicts.page(["a"])
    text = verdicts.page(["a"], verdicts={("sparsity", "a"): "fails"})
    assert "## What we conclude" in text
    assert text.index("## Scoreboard") < text.index("## What we conclude") < text.index("## How a verdict")


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


# ------------------------------------------------------------------ the committed page and book


def test_the_verdict_page_is_generated_from_the_references_file():
    """book/verdicts.md pastes every claim for every reference of checkpoints/references.yaml; none is typed."""
    from sdrlib import checkpoints, verdicts

    page = (ROOT / "book" / "verdicts.md").read_text()
    want = verdicts.render(ROOT / "book", checkpoints.reference_names("cpu"))
    assert page == want, "run sdr book --html to regenerate it"
    for claim in verdicts.CLAIMS:
        for ref in checkpoints.reference_names("cpu"):
            assert verdicts.glue_key(claim.key, ref, "verdict") in page


def test_write_verdicts_writes_the_page_the_build_uses(tmp_path):
    """The HTML build's own call (book.write_verdicts) writes book/verdicts.md, equal to the committed page."""
    import shutil

    from sdrlib import checkpoints, verdicts

    (tmp_path / "book").mkdir()
    for nb in (ROOT / "book").glob("*.ipynb"):  # the executed chapters the page's Holm correction reads
        shutil.copy(nb, tmp_path / "book" / nb.name)
    out = book.write_verdicts(tmp_path)
    assert out.read_text() == (ROOT / "book" / "verdicts.md").read_text()
    assert out.read_text() == verdicts.render(tmp_path / "book", checkpoints.reference_names("cpu"))
    with pytest.raises(ValueError, match="repository root"):  # the book folder itself, a common slip
        book.write_verdicts(tmp_path / "book")


def test_the_executed_book_reaches_the_verdicts_the_references_file_expects():
    """Read back from the committed notebooks: every claim on every cpu reference has a verdict, its number
    lies inside its own interval, and it is the verdict references.yaml expects where it names one."""
    from sdrlib import checkpoints, stats, verdicts

    rows = {(r["claim"], r["reference"]): r for r in verdicts.collect(ROOT / "book")}
    for ref in checkpoints.reference_names("cpu"):
        expect = checkpoints.references()[ref]["expect"]
        for claim in verdicts.CLAIMS:
            r = rows[(claim.key, verdicts.key_name(ref))]
            value, lo, hi = map(float, re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", r["number [95 % CI]"]).groups())
            assert lo <= value <= hi, r
            assert r["verdict"] in stats.VERDICTS, r
            assert r["verdict"] == expect.get(claim.key, r["verdict"]), (ref, claim.key, r["verdict"])
    assert verdicts.expect_yaml(list(rows.values())).count("expect:") == len({k[1] for k in rows})


def test_network_comparison_lists_only_data_sets_with_several_references_and_names_the_changed_claims():
    """Planted: two Fashion-MNIST networks that agree on sparsity and part on distances, one textures network
    (no comparison), and a claim one network lacks (left out)."""
    nets = {"fm-small": ("fashion-mnist", "preset `small`"), "fm-paper": ("fashion-mnist", "preset `paper`"),
            "tex": ("textures", "x")}  # fmt: skip
    said = {
        ("sparsity", "fm-small"): "fails",
        ("sparsity", "fm-paper"): "fails",
        ("distances", "fm-small"): "holds",
        ("distances", "fm-paper"): "undecided",
        ("subspaces", "fm-small"): "holds",
        ("sparsity", "tex"): "holds",
    }
    lines = verdicts.network_comparison(nets, said)
    assert lines[0] == "**fashion-mnist**: `fm-small` (preset `small`), `fm-paper` (preset `paper`)."
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| claim")]
    assert [r.split(" | ")[0] for r in rows] == ["| sparsity", "| distances"]  # the catalogue's order; no subspaces
    assert rows[0].endswith("| yes |") and rows[1].endswith("| no |")
    assert lines[-2] == "1 of 2 claims keep their verdict across these networks; it changes for distances."
    assert not any("textures" in line for line in lines)
    assert verdicts.network_comparison({"tex": ("textures", "x")}, said) == []
    # with the deciding numbers: each verdict followed by its number and interval, where one was glued
    numbered = verdicts.network_comparison(nets, said, {("distances", "fm-small"): "0.073 [0.059, 0.085]"})
    assert (
        f"| distances | {verdicts.coloured('holds')} 0.073 [0.059, 0.085] | {verdicts.coloured('undecided')} | no |"
        in numbered
    )
    assert verdicts.network_label({"train": {"preset": "small"}}) == "preset `small`"
    assert verdicts.network_label({"train": {"preset": "small"}, "recipe": "fm-authors"}) == (
        "preset `small`, recipe `fm-authors`"
    )
    # the images seen: the step it stopped at times the global batch (0.93 M for 14,500 steps of 64)
    assert verdicts.network_label({"train": {"preset": "paper", "batch": 256}, "step": 9234}) == (
        "preset `paper`, 2.36 M images seen"
    )
    assert "## Does a verdict depend on the network?" in verdicts.page(["fm-small", "fm-paper"], verdicts=said,
                                                                       networks=nets)  # fmt: skip
    assert "## Does a verdict depend" not in verdicts.page(["fm-small"], verdicts=said, networks=nets)


def _glued_notebook(path: Path, values: dict[str, str]) -> None:
    """An executed notebook holding these glued values, as myst-nb's glue writes them."""
    import json

    outputs = [{"output_type": "display_data", "metadata": {"scrapbook": {"name": k, "mime_prefix": "x/"}},
                "data": {"x/text/plain": repr(v)}} for k, v in values.items()]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": outputs}]}))


def test_recipe_comparison_sets_a_run_of_another_recipe_beside_its_reference(tmp_path, monkeypatch):
    """Planted: a reference whose book says sparsity fails and distances holds, and a twin of another recipe whose
    chapters say sparsity fails and distances is undecided: one table, distances named as the changed claim; a
    twin with no executed chapters gets a line with its training's progress instead."""
    import json

    from sdrlib import checkpoints

    def run(name, step, recipe=None):
        (tmp_path / "ck" / name).mkdir(parents=True)
        cfg = {"format": checkpoints.FORMAT, "train": {"preset": "small", "data": "fashion-mnist", "batch": 64,
               "steps": 14500}, "step": step, **({"recipe": recipe} if recipe else {})}  # fmt: skip
        (tmp_path / "ck" / name / "config.json").write_text(json.dumps(cfg))

    monkeypatch.setenv("SDR_CHECKPOINTS", str(tmp_path / "ck"))
    run("ref", 14500), run("twin", 14500, "twin"), run("late", 1091, "late")
    chapter = {c.key: c.chapter for c in verdicts.CLAIMS}
    _glued_notebook(tmp_path / "book" / f"{chapter['sparsity']}.ipynb",
                    {verdicts.glue_key("sparsity", "ref", "verdict"): "fails"})  # fmt: skip
    _glued_notebook(tmp_path / "book" / f"{chapter['distances']}.ipynb",
                    {verdicts.glue_key("distances", "ref", "verdict"): "holds",
                     verdicts.glue_key("distances", "ref", "number"): "0.09 [0.07, 0.11]",
                     verdicts.glue_key("distances", "ref", "networks"): "3 trained, 3 control"})  # fmt: skip
    _glued_notebook(tmp_path / "ck" / "twin" / verdicts.CHAPTERS / f"{chapter['sparsity']}.ipynb",
                    {verdicts.glue_key("sparsity", "twin", "verdict"): "fails"})  # fmt: skip
    _glued_notebook(tmp_path / "ck" / "twin" / verdicts.CHAPTERS / f"{chapter['distances']}.ipynb",
                    {verdicts.glue_key("distances", "twin", "verdict"): "undecided",
                     verdicts.glue_key("distances", "twin", "number"): "0.01 [-0.02, 0.04]",
                     verdicts.glue_key("distances", "twin", "networks"): "1 trained, 3 control"})  # fmt: skip
    lines = verdicts.recipe_comparison(tmp_path / "book", {"twin": "ref", "late": "ref"})
    assert lines[0] == ("**fashion-mnist**: `ref` (preset `small`, 0.93 M images seen), `twin` (preset `small`, "
                        "recipe `twin`, 0.93 M images seen).")  # fmt: skip
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| claim")]
    assert rows == [
        f"| sparsity | {verdicts.coloured('fails')} | {verdicts.coloured('fails')} | yes |",
        f"| distances | {verdicts.coloured('holds')} 0.09 [0.07, 0.11], 3 networks | {verdicts.coloured('undecided')} "
        "0.01 [-0.02, 0.04], 1 network | no |",
    ]  # the twin's number read from its own chapters, each with the trained networks it rests on
    assert "1 of 2 claims keep their verdict across these networks; it changes for distances." in lines
    assert lines[-2].startswith("`late` (preset `small`, recipe `late`, 0.07 M images seen; to compare with `ref`)")
    assert lines[-2].endswith("its training is at step 1,091 of 14,500.")
    # which verdicts depend on the recipe: the planted change, and no entry for a twin with no executed chapters
    assert verdicts.recipe_changes(tmp_path / "book", {"twin": "ref", "late": "ref"}) == {"twin": {"distances"}}
