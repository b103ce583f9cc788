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
import dataclasses
import json
import re
from pathlib import Path

from .claims.catalogue import BY_KEY, CLAIMS
from .stats import VERDICTS, Interval, holm


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
    if number.p is not None:
        glue(glue_key(claim, reference, "p"), f"{number.p:.6f}", display=False)
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


def record_result(result, reference: str, fmt: str = ".3f", expected: str | None = None) -> dict:
    """Glue a claim's :class:`sdrlib.claims.rules.Result` for one reference (the deciding part's effect as the
    number, the combined verdict, the part and the networks it rests on) and return its row; AssertionError
    when ``expected`` differs, as :func:`record`."""
    from myst_nb import glue

    nets = f"{result.n_trained} trained, {result.n_control} control"
    glue(glue_key(result.claim, reference, "networks"), nets, display=False)
    glue(glue_key(result.claim, reference, "part"), result.headline.name, display=False)
    p_claim = max((p.effect.p for p in result.parts if p.effect.p is not None), default=None)  # all must hold
    number = dataclasses.replace(result.headline.effect, p=p_claim)
    row = record(result.claim, reference, number, result.verdict, fmt, expected)
    return {**row, "deciding part": result.headline.name, "networks": nets}


RULE = (
    "Each claim is tested by one or more parts, each an effect oriented so that a positive value supports the "
    "paper, with the smallest effect that counts stated in `sdrlib.claims.catalogue` before measuring. A part "
    "*holds* when its 95 % interval lies above both zero and that size, *holds weakly* when it lies above zero "
    "but may fall short of that size, *fails* when the whole interval lies below that size (a negative effect, or "
    "one confidently too small to count), and is *undecided* otherwise. A claim holds when every part holds and "
    "fails when any part fails; the number shown is the deciding part's (the first with the worst word). "
    "Intervals resample the trained networks the verdict rests on, the untrained control networks, then the "
    "images, wherever the chapter has several networks (the column *networks* says how many). Claims without "
    "listed parts are still tested by their chapter's older single-interval rule (smallest effect 0)."
)

COMPARED = (
    "Where references share a data set, each claim's verdicts side by side. The networks differ in everything "
    "their labels name (preset, recipe, training images seen), so a verdict that changes is tied to those "
    "differences together, not to one of them."
)


def _cell(chapter: str, claim: str, reference: str, what: str) -> str:
    """A glue reference to one value a chapter recorded."""
    return f"{{glue:text}}`{chapter}.ipynb::{glue_key(claim, reference, what)}:s`"


# the scoreboard's colour of each word (green, light green, red, grey), inline so the page needs no style sheet
COLOURS = {"holds": "#1a7f37", "holds weakly": "#6a9f2a", "fails": "#cf222e", "undecided": "#6e7781"}


def coloured(word: str) -> str:
    """A verdict word in its colour (inline HTML, which MyST passes to the page); another word as it is."""
    colour = COLOURS.get(word)
    return f'<span style="color:{colour};font-weight:600">{word}</span>' if colour else word


def _said(verdicts: dict[tuple[str, str], str] | None, chapter: str, claim: str, reference: str) -> str:
    """A scoreboard cell: the word the executed chapter glued, coloured; its glue reference when not read."""
    word = (verdicts or {}).get((claim, reference))
    return coloured(word) if word else _cell(chapter, claim, reference, "verdict")


def scoreboard(
    references: list[str],
    history: dict[str, dict[str, str]] | None = None,
    verdicts: dict[tuple[str, str], str] | None = None,
) -> list[str]:
    """Markdown lines of the scoreboard: one row per claim, one column per reference with the word its chapter
    glued (``verdicts``, read from the executed notebooks; coloured), then the retired references' verdicts as
    history columns (from references.yaml)."""
    history = history or {}
    head = "| claim | " + " | ".join(f"`{r}`" for r in references)
    head += "".join(f" | `{h}` (retired)" for h in history) + " |"
    lines = [head, "|---" * (1 + len(references) + len(history)) + "|"]
    for c in CLAIMS:
        cells = [_said(verdicts, c.chapter, c.key, r) for r in references]
        cells += [coloured(history[h].get(c.key, "not tested")) for h in history]
        number = c.claim.split(". ")[0] + ". " if ". " in c.claim else ""  # "1. " of "1. phi is sparse: ..."
        lines.append(f"| {number}{c.key} | " + " | ".join(cells) + " |")
    return lines


# What the page concludes for a claim from its references' words: where they agree, and where they part.
CONCLUDE = {
    "holds": "supported on {refs}",
    "holds weakly": "supported in direction on {refs}, but the effect may fall short of the smallest that counts",
    "fails": "not supported by what we measured on {refs}: the paper's wording does not describe these networks",
    "undecided": "not decided on {refs}: the intervals leave both answers open",
}


def conclusions(references: list[str], verdicts: dict[tuple[str, str], str]) -> list[str]:
    """Markdown bullets of "what we conclude": one per claim, its sentence picked by its references' verdicts
    (glued into the executed chapters), each reference's deciding number pasted beside it."""
    lines = []
    for c in CLAIMS:
        by_word: dict[str, list[str]] = {}
        for r in references:
            if (c.key, r) in verdicts:
                by_word.setdefault(verdicts[(c.key, r)], []).append(r)
        if not by_word:
            continue
        parts = []
        for word in VERDICTS:
            refs = by_word.get(word)
            if refs:
                named = " and ".join(f"`{r}` ({_cell(c.chapter, c.key, r, 'number')})" for r in refs)
                parts.append(CONCLUDE[word].format(refs=named))
        lines.append(f"- **{c.claim}**: " + "; ".join(parts) + ".")
    return lines


def network_comparison(
    networks: dict[str, tuple[str, str]],
    verdicts: dict[tuple[str, str], str],
    numbers: dict[tuple[str, str], str] | None = None,
) -> list[str]:
    """Markdown lines of "does a verdict depend on the network?": for each data set that two or more references
    share (``networks``: reference -> (data set, what the network is: preset, recipe)), one row per claim with each
    reference's verdict (and its deciding number with its interval, where ``numbers`` has it) and whether the
    verdicts agree, then the claims whose verdict changes. Claims some reference lacks are left out; no line when no
    data set has two references with verdicts."""
    numbers = numbers or {}

    def cell(claim: str, ref: str) -> str:
        number = numbers.get((claim, ref))
        return coloured(verdicts[(claim, ref)]) + (f" {number}" if number else "")

    by_data: dict[str, list[str]] = {}
    for r, (data, _) in networks.items():
        by_data.setdefault(data, []).append(r)
    lines = []
    for data, refs in by_data.items():
        claims = [c for c in CLAIMS if all((c.key, r) in verdicts for r in refs)]
        if len(refs) < 2 or not claims:
            continue
        lines += [
            f"**{data}**: " + ", ".join(f"`{r}` ({networks[r][1]})" for r in refs) + ".",
            "",
            "| claim | " + " | ".join(f"`{r}`" for r in refs) + " | same verdict |",
            "|---" * (len(refs) + 2) + "|",
        ]
        changed = []
        for c in claims:
            words = [verdicts[(c.key, r)] for r in refs]
            same = len(set(words)) == 1
            changed += [] if same else [c.key]
            lines.append(f"| {c.key} | " + " | ".join(cell(c.key, r) for r in refs) + f" | {'yes' if same else 'no'} |")
        lines += [
            "",
            f"{len(claims) - len(changed)} of {len(claims)} claims keep their verdict across these networks"
            + (f"; it changes for {', '.join(changed)}." if changed else "."),
            "",
        ]
    return lines


def network_label(config: dict) -> str:
    """What a network is, for the comparison's heading: its preset, its recipe when it was trained from a named one
    (``sdr train --recipe``; the references' own recipe is the appendix's), and the training images it saw (steps
    taken times the batch, all processes together) when its config records the step it stopped at."""
    recipe, step = config.get("recipe"), config.get("step")
    return (
        f"preset `{config['train']['preset']}`"
        + (f", recipe `{recipe}`" if recipe else "")
        + (f", {step * config['train']['batch'] / 1e6:.2f} M images seen" if step is not None else "")
    )


def network_of(config: dict) -> tuple[str, str]:
    """(data set, label) of a network, as the network comparison groups and names it."""
    return config["train"]["data"], network_label(config)


CHAPTERS = "chapters"  # where a run that is not a reference keeps its executed chapters: checkpoints/RUN/chapters/


def recipe_comparison(book: Path, twins: dict[str, str]) -> list[str]:
    """Markdown lines of the claim x recipe x data set table (#24 item 3): for each run of another recipe at a
    reference's budget (``twins``: run -> reference, references.yaml's ``recipe_of``), the run's verdicts, read
    from its chapters executed into ``checkpoints/RUN/chapters/``, beside the reference's in ``book``; where they
    are not executed yet, a line saying so and how far the run's training is."""
    from .checkpoints import read_config, resolve

    lines = []
    for twin, ref in twins.items():
        configs = {r: read_config(r) for r in (ref, twin)}
        said = page_verdicts(resolve(twin) / CHAPTERS, [twin])  # empty while none is executed
        if not said:
            c = configs[twin]
            lines += [
                f"`{twin}` ({network_label(c)}; to compare with `{ref}`): its chapters are not executed yet; its "
                f"training is at step {c['step']:,} of {c['train']['steps']:,}.",
                "",
            ]
            continue
        networks = {r: network_of(c) for r, c in configs.items()}
        numbers = {**page_numbers(book, [ref]), **page_numbers(resolve(twin) / CHAPTERS, [twin])}
        lines += network_comparison(networks, {**page_verdicts(book, [ref]), **said}, numbers)
    return lines


def recipe_changes(book: Path, twins: dict[str, str]) -> dict[str, set[str]]:
    """For each run of another recipe whose chapters are executed (``twins``: run -> reference), the claims whose
    verdict differs from its reference's in ``book`` (#24 item 3: which verdicts depend on the recipe); claims
    either one lacks are left out."""
    from .checkpoints import resolve

    out = {}
    for twin, ref in twins.items():
        said, ours = page_verdicts(resolve(twin) / CHAPTERS, [twin]), page_verdicts(book, [ref])
        if said:
            out[twin] = {c for (c, _), word in said.items() if ours.get((c, ref), word) != word}
    return out


def _glued_by_claim(book: Path, references: list[str], what: str) -> dict[tuple[str, str], object]:
    """One kind of value (``what``: "verdict", "p" ...) the executed chapters under ``book`` glued, by (claim,
    reference), in the page's order."""
    values = {c: glued(book / f"{c}.ipynb") for c in dict.fromkeys(c.chapter for c in CLAIMS)
              if (book / f"{c}.ipynb").is_file()}  # fmt: skip
    out = {}
    for c in CLAIMS:
        for r in references:
            v = values.get(c.chapter, {}).get(glue_key(c.key, r, what))
            if v is not None:
                out[(c.key, r)] = v
    return out


def page_verdicts(book: Path, references: list[str]) -> dict[tuple[str, str], str]:
    """The verdict words the executed chapters under ``book`` glued, by (claim, reference)."""
    return {k: str(v) for k, v in _glued_by_claim(book, references, "verdict").items()}


def page_numbers(book: Path, references: list[str]) -> dict[tuple[str, str], str]:
    """The deciding numbers with their intervals and the number of trained networks they rest on ("0.047 [0.038,
    0.056], 3 networks") that the executed chapters under ``book`` glued, by (claim, reference)."""
    nets = _glued_by_claim(book, references, "networks")  # "3 trained, 3 control"

    def with_networks(k: tuple[str, str], number: object) -> str:
        n = int(str(nets[k]).split()[0]) if k in nets else None
        return str(number) + ("" if n is None else f", {n} network{'s' if n > 1 else ''}")

    return {k: with_networks(k, v) for k, v in _glued_by_claim(book, references, "number").items()}


def family_table(pvalues: dict[tuple[str, str], float], alpha: float = 0.05) -> list[str]:
    """Markdown lines of Holm's correction across the page: each claim and reference with a p-value of "the
    effect is at most the smallest that counts" (the largest over its parts), adjusted over all of them."""
    if not pvalues:
        return ["No chapter recorded a p-value yet: the page has no family-wise statement."]
    keys = list(pvalues)
    adj = holm([pvalues[k] for k in keys])
    lines = [
        f"Holm's step-down correction over the {len(keys)} verdicts below that carry a p-value (family-wise error "
        f"{alpha:.0%}): a claim still *holds* family-wise when its adjusted p-value is below {alpha}.",
        "",
        "| claim | reference | p | Holm-adjusted p | holds family-wise |",
        "|---|---|---|---|---|",
    ]
    for (claim, ref), a in zip(keys, adj):
        lines.append(f"| {BY_KEY[claim].claim} | `{ref}` | {pvalues[(claim, ref)]:.4f} | {a:.4f} | "
                     f"{'yes' if a < alpha else 'no'} |")  # fmt: skip
    return lines


def page(
    references: list[str],
    history: dict[str, dict[str, str]] | None = None,
    pvalues: dict[tuple[str, str], float] | None = None,
    verdicts: dict[tuple[str, str], str] | None = None,
    networks: dict[str, tuple[str, str]] | None = None,
    numbers: dict[tuple[str, str], str] | None = None,
) -> str:
    """The Markdown of the verdict page: the scoreboard, the rule, Holm's correction, whether a verdict depends on
    the network (``networks``: reference -> (data set, what the network is); ``numbers``: the deciding numbers shown
    beside its verdicts), then a table per claim, one row per reference; every measured value is pasted from the
    chapters or computed from them."""
    nets = {r: n for r, n in (networks or {}).items() if r in references}
    compared = network_comparison(nets, verdicts or {}, numbers)
    lines = [
        "# Verdicts",
        "",
        "Every claim of the paper that the book tests, on every reference network. The values are pasted from "
        "the chapters' executed notebooks; none is typed here.",
        "",
        "## Scoreboard",
        "",
        *scoreboard(references, history, verdicts),
        "",
        *(["## What we conclude", "", *conclusions(references, verdicts), ""] if verdicts else []),
        "## How a verdict is reached",
        "",
        RULE,
        "",
        "## Family-wise",
        "",
        *family_table(pvalues or {}),
        "",
        *(["## Does a verdict depend on the network?", "", COMPARED, "", *compared] if compared else []),
    ]
    for c in CLAIMS:
        lines += [
            f"## {c.claim}",
            "",
            f"**Test**: {c.test}. **Control**: {c.control}. **Where**: {{doc}}`{c.chapter}`.",
            "",
        ]
        if c.parts:
            lines += [f"- part *{p.name}*: {p.measures}; counts from {p.min_effect}" for p in c.parts] + [""]
            lines += ["| reference | deciding part | number [95 % CI] | networks | verdict |", "|---|---|---|---|---|"]
            cols = ("part", "number", "networks", "verdict")
        else:
            lines += ["| reference | number [95 % CI] | verdict |", "|---|---|---|"]
            cols = ("number", "verdict")
        for r in references:
            lines.append(f"| `{r}` | " + " | ".join(_cell(c.chapter, c.key, r, w) for w in cols) + " |")
        lines.append("")
    return "\n".join(lines)


def page_pvalues(book: Path, references: list[str]) -> dict[tuple[str, str], float]:
    """The p-values the executed chapters under ``book`` glued, by (claim, reference), in the page's order."""
    return {k: float(v) for k, v in _glued_by_claim(book, references, "p").items()}


def render(book: Path, references: list[str]) -> str:
    """The verdict page for these references, with the retired references' verdicts from references.yaml and
    Holm's correction over the p-values glued into the executed chapters under ``book``."""
    from .checkpoints import read_config, resolve
    from .references import references as all_references

    history = {n: i["history"] for n, i in all_references().items() if i.get("history")}
    configs = {r: read_config(resolve(r)) for r in references}
    networks = {r: network_of(c) for r, c in configs.items()}
    verdicts = page_verdicts(Path(book), references)
    numbers = page_numbers(Path(book), references)
    return page(references, history, page_pvalues(Path(book), references), verdicts, networks, numbers)


def write_page(repo_root: Path, references: list[str]) -> Path:
    """Write ``book/verdicts.md`` under the repository root for these references (``sdr book`` does this
    before building), from the chapters executed there (:func:`render`)."""
    from .utils import write_text

    book = Path(repo_root) / "book"
    if not book.is_dir():
        raise ValueError(f"repo_root={str(repo_root)!r} has no book/ folder: pass the repository root, not the book")
    return write_text(book / "verdicts.md", render(book, references))


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
