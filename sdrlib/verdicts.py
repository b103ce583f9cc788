"""The verdict page: one row per claim and reference, each cell filled from a chapter's computed values.

A chapter calls :func:`record` for each claim it tests; the call glues the number (with its interval)
and the verdict into the executed notebook under stable keys (myst-nb ``glue``), and checks the verdict
against the one ``checkpoints/references.yaml`` expects. :func:`page` writes ``book/verdicts.md``, whose
table pastes those keys from the chapters (``{glue:text}`chapter::key:s```), so no number on it is typed.
:func:`collect` reads the same values back from executed notebooks (``sdr verdicts``), for the terminal,
for a papermill sweep's output folder, and for writing ``expect`` in references.yaml from measurements.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from .claims.catalogue import BY_KEY, CLAIMS
from .stats import VERDICTS, Interval


def key_name(reference: str) -> str:
    """A reference as it appears in glue keys (a path's separators and dots become dashes)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", reference)


def glue_key(claim: str, reference: str, what: str) -> str:
    """The glue key of a number or verdict, e.g. ``sparsity--small-fashion-mnist--verdict``."""
    return f"{claim}--{key_name(reference)}--{what}"


def record(
    claim: str, reference: str, number: Interval, verdict: str, fmt: str = ".3f", expected: str | None = None
) -> dict:
    """Glue a claim's number and verdict for one reference into the notebook (for the verdict page), and
    return the row; raise AssertionError when ``expected`` (from references.yaml) differs from the verdict."""
    if claim not in BY_KEY:
        raise ValueError(f"unknown claim {claim!r}; expected one of {sorted(BY_KEY)}")
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; expected one of {VERDICTS}")
    from myst_nb import glue

    glue(glue_key(claim, reference, "number"), number.fmt(fmt), display=False)
    glue(glue_key(claim, reference, "verdict"), verdict, display=False)
    row = {
        "claim": BY_KEY[claim].claim,
        "reference": reference,
        "number [95 % CI]": number.fmt(fmt),
        "verdict": verdict,
    }
    if expected is not None and expected != verdict:
        raise AssertionError(
            f"{reference}: claim {claim!r} now {verdict} ({number.fmt(fmt)}), but "
            f"checkpoints/references.yaml expects {expected}: update the text and the file"
        )
    return row


def page(references: list[str]) -> str:
    """The Markdown of the verdict page: a table per claim, one row per reference, every value pasted."""
    lines = [
        "# Verdicts",
        "",
        "Every claim of the paper that the book tests, on every reference network: the test, the control, "
        "the measured number with its 95 % bootstrap interval, and the verdict. The values are pasted from "
        "the chapters' executed notebooks; none is typed here. A verdict is *holds* when the interval lies "
        "on the claim's side of zero, *fails* when it lies on the other side, *undecided* when it straddles "
        "zero, and *holds weakly* when it holds but by less than the size the chapter names.",
        "",
    ]
    for c in CLAIMS:
        lines += [
            f"## {c.claim}",
            "",
            f"**Test**: {c.test}. **Control**: {c.control}. **Where**: {{doc}}`{c.chapter}`.",
            "",
            "| reference | number [95 % CI] | verdict |",
            "|---|---|---|",
        ]
        for r in references:
            num = f"{{glue:text}}`{c.chapter}.ipynb::{glue_key(c.key, r, 'number')}:s`"
            ver = f"{{glue:text}}`{c.chapter}.ipynb::{glue_key(c.key, r, 'verdict')}:s`"
            lines.append(f"| `{r}` | {num} | {ver} |")
        lines.append("")
    return "\n".join(lines)


def write_page(repo_root: Path, references: list[str]) -> Path:
    """Write ``book/verdicts.md`` under the repository root for these references (``sdr book`` does this
    before building)."""
    from .utils import write_text

    book = Path(repo_root) / "book"
    if not book.is_dir():
        raise ValueError(f"repo_root={str(repo_root)!r} has no book/ folder: pass the repository root, not the book")
    return write_text(book / "verdicts.md", page(references))


def glued(notebook: str | Path) -> dict[str, object]:
    """The values glued into an executed notebook (myst-nb ``glue``), by name."""
    nb = json.loads(Path(notebook).read_text())
    out = {}
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []):
            sb = o.get("metadata", {}).get("scrapbook")
            if sb:
                out[sb["name"]] = ast.literal_eval(o["data"][sb["mime_prefix"] + "text/plain"])
    return out


def collect(folder: str | Path) -> list[dict]:
    """Every verdict glued into the executed chapters in ``folder`` (the book, or a sweep's output folder):
    one row per claim and reference, claims in the verdict page's order, references in the chapter's."""
    folder, rows = Path(folder), []
    values = {
        c: glued(folder / f"{c}.ipynb")
        for c in dict.fromkeys(c.chapter for c in CLAIMS)
        if (folder / f"{c}.ipynb").is_file()
    }
    if not values:
        raise FileNotFoundError(f"no executed chapter in {folder}: expected {CLAIMS[0].chapter}.ipynb, ...")
    for c in CLAIMS:
        for name, verdict in values.get(c.chapter, {}).items():
            head, tail = f"{c.key}--", "--verdict"  # glue_key(c.key, ref, "verdict") for some ref
            if not (name.startswith(head) and name.endswith(tail)):
                continue
            ref = name[len(head) : -len(tail)]
            number = values[c.chapter].get(glue_key(c.key, ref, "number"), "?")
            rows.append({"claim": c.key, "reference": ref, "number [95 % CI]": number, "verdict": verdict})
    return rows


def expect_yaml(rows: list[dict]) -> str:
    """The measured verdicts as ``expect`` entries for checkpoints/references.yaml, one per reference."""
    by_ref: dict[str, dict[str, str]] = {}
    for r in rows:
        by_ref.setdefault(r["reference"], {})[r["claim"]] = r["verdict"]
    return "\n".join(
        f"{ref}:\n  expect: {{{', '.join(f'{k}: {v}' for k, v in e.items())}}}" for ref, e in by_ref.items()
    )
