"""Markdown tables of the chapters' rows (one number format for the whole table)."""

from __future__ import annotations

from typing import Mapping, Sequence


def markdown_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None, floatfmt: str = ".2f") -> str:
    """Rows of dicts as a Markdown table (floats formatted with ``floatfmt``, integers with thousands separators)."""
    if not rows:
        raise ValueError("markdown_table needs at least one row")
    cols = list(columns or rows[0].keys())

    def cell(v) -> str:
        if isinstance(v, float):
            return format(v, floatfmt)
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def psnr_markdown(tables: Mapping[str, Sequence[dict]], floatfmt: str = ".2f") -> str:
    """A psnr_versus_sigma result as a Markdown table: one row per sigma, the noisy input and every method."""
    names = list(tables)
    first = tables[names[0]]
    rows = []
    for k, r in enumerate(first):
        row = {"σ": f"{r['sigma']:g}", "σ × 255": f"{r['sigma'] * 255:.1f}", "noisy": r["psnr_noisy"]}
        row.update({n: tables[n][k]["psnr_denoised"] for n in names})
        rows.append(row)
    return markdown_table(rows, floatfmt=floatfmt)
