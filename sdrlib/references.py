"""The book's reference checkpoints: ``checkpoints/references.yaml``, the one list of which checkpoints each
profile analyses, their extra training seeds, and the verdict each claim is expected to reach on each. Adding a
reference is one entry there, no code."""

from __future__ import annotations

from pathlib import Path

from .stats import VERDICTS

REFERENCES = Path(__file__).resolve().parent.parent / "checkpoints" / "references.yaml"  # beside the checkpoints


def references(profile: str | None = None, path: str | Path | None = None) -> dict[str, dict]:
    """The reference checkpoints of ``checkpoints/references.yaml`` ({name: {"profiles", "expect", "seeds",
    "full_seeds", "history", "recipe_of"}}; ``history``: a retired reference's verdicts as the book then measured
    them; ``recipe_of``: the reference whose budget a run of another recipe shares), those of one profile when
    given (e.g. "cpu"), in file order."""
    import yaml

    f = Path(path or REFERENCES)
    refs = yaml.safe_load(f.read_text()) or {}
    for name, info in refs.items():
        said = {**(info.get("expect") or {}), **(info.get("history") or {})}
        bad = {k: v for k, v in said.items() if v not in VERDICTS}
        if bad:
            raise ValueError(f"{f}: {name}: unknown verdict(s) {bad}; expected one of {VERDICTS}")
        if info.get("recipe_of") is not None and info["recipe_of"] not in refs:
            raise ValueError(f"{f}: {name}: recipe_of {info['recipe_of']!r} is not an entry of the file")
    return {
        n: {
            "profiles": i.get("profiles", []),
            "expect": i.get("expect") or {},
            "seeds": i.get("seeds", []),
            "full_seeds": i.get("full_seeds", []),
            "history": i.get("history") or {},
            "recipe_of": i.get("recipe_of"),
        }
        for n, i in refs.items()
        if profile is None or profile in i.get("profiles", [])
    }


def recipe_twins() -> dict[str, str]:
    """The runs of another recipe at a reference's budget ({run: reference}, ``recipe_of`` in references.yaml),
    whose verdicts the appendix sets beside the reference's."""
    return {n: i["recipe_of"] for n, i in references().items() if i["recipe_of"]}


def seeds_of(name: str) -> list[str]:
    """The extra training seeds listed for a reference in references.yaml (same recipe, reduced budget)."""
    return references().get(name, {}).get("seeds", [])


def trained_networks(name: str) -> list[str]:
    """The trained networks a reference's verdicts rest on: the reference itself, then the full-budget seeds of
    its recipe listed under ``full_seeds`` in references.yaml (the reduced-budget ``seeds`` are not among them)."""
    return [name, *references().get(name, {}).get("full_seeds", [])]


def reference_names(profile: str) -> list[str]:
    """The names of the references a profile analyses; a clear error when references.yaml lists none (the
    paper profile expects a paper-preset checkpoint you trained: pass it with -p references)."""
    names = list(references(profile))
    if not names:
        raise ValueError(
            f"checkpoints/references.yaml lists no reference checkpoint for profile {profile!r}: "
            "train one (README, 'Scale up') and pass it with -p references '[\"runs/NAME\"]', "
            "or add it to checkpoints/references.yaml"
        )
    return names


def expected_verdict(name: str, claim: str) -> str | None:
    """The verdict ``references.yaml`` expects of ``claim`` on reference ``name`` (None: report only)."""
    return references().get(name, {}).get("expect", {}).get(claim)
