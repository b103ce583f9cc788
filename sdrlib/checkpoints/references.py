"""The reference checkpoints of the book: ``checkpoints/references.yaml`` (which checkpoints each profile
analyses, their extra training seeds, the verdict each claim is expected to reach on each), and a
checkpoint's own data set, refused when this machine builds it from other sources (fingerprint)."""

from __future__ import annotations

from pathlib import Path

from ..stats import VERDICTS
from . import REPO_CHECKPOINTS, Checkpoint, read_config

REFERENCES = REPO_CHECKPOINTS / "references.yaml"  # the one list of reference checkpoints and their verdicts


def references(profile: str | None = None, path: str | Path | None = None) -> dict[str, dict]:
    """The reference checkpoints of ``checkpoints/references.yaml`` ({name: {"profiles", "expect", "seeds",
    "full_seeds", "history"}}; ``history``: a retired reference's verdicts as the book then measured them), those
    of one profile when given (e.g. "cpu"), in file order."""
    import yaml

    f = Path(path or REFERENCES)
    refs = yaml.safe_load(f.read_text()) or {}
    for name, info in refs.items():
        said = {**(info.get("expect") or {}), **(info.get("history") or {})}
        bad = {k: v for k, v in said.items() if v not in VERDICTS}
        if bad:
            raise ValueError(f"{f}: {name}: unknown verdict(s) {bad}; expected one of {VERDICTS}")
    return {
        n: {
            "profiles": i.get("profiles", []),
            "expect": i.get("expect") or {},
            "seeds": i.get("seeds", []),
            "full_seeds": i.get("full_seeds", []),
            "history": i.get("history") or {},
        }
        for n, i in refs.items()
        if profile is None or profile in i.get("profiles", [])
    }


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


class DataMismatch(ValueError):
    """The data set built on this machine is not the one a checkpoint was trained on."""


def data_kwargs(config: dict) -> dict:
    """The ``data.load`` arguments (size, crop) of a checkpoint's training data."""
    tc = config.get("train", {})
    return config.get("data_kwargs") or {"size": tc.get("size")}


def load_data(checkpoint: "Checkpoint | str | Path", split: str = "test", check: bool = True, **kwargs):
    """The checkpoint's own data set (same name, size and crop), refused with one message saying how to get
    the right data when the sources found here differ from those it was trained on (fingerprint)."""
    from .. import data

    config = checkpoint.config if isinstance(checkpoint, Checkpoint) else read_config(checkpoint)
    name = config["train"]["data"]
    ds = data.load(name, split, **{**data_kwargs(config), **kwargs})
    want = (config.get("data_fingerprint") or {}).get(split)
    if check and want and not kwargs:
        got = ds.fingerprint()
        if got["sha256"] != want["sha256"]:
            where = getattr(checkpoint, "path", None) or checkpoint
            raise DataMismatch(
                f"{where} was trained on {name!r} built from {_sources(want)} ({want['classes']} classes), but this "
                f"machine builds it from {_sources(got)} ({got['classes']} classes); {data.how_to_get(name)}"
            )
    return ds


def _sources(fp: dict) -> str:
    return (
        ", ".join(f"{k}={v['images'] if isinstance(v, dict) else v}" for k, v in fp.get("sources", {}).items())
        or "unknown sources"
    )
