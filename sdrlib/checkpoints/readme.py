"""A checkpoint's human-readable side: the README written into its folder (the exact commands, wall time,
machine, PSNR tables along training) and a one-paragraph summary of a run."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from ..evaluate import format_table
from . import read_config, read_log, training_snapshots


def run_summary(run: str | Path) -> str:
    """A text summary of a run folder: steps, time, last loss, and the last PSNR table."""
    cfg = read_config(run)
    log = read_log(run)
    evals = [r for r in log if "eval" in r]
    losses = [r for r in log if "loss" in r]
    head = (
        f"{Path(run)}: preset {cfg['train']['preset']} on {cfg['train']['data']}, {cfg['n_params']:,} params, "
        f"step {cfg['step']}, {cfg['elapsed_s'] / 60:.1f} min on {cfg['device']}"
    )
    if losses:
        head += f", loss {losses[-1]['loss']:.3e}, {losses[-1]['img_per_s']} img/s"
    return head + (
        "\n" + format_table(evals[-1]["eval"], f"held-out PSNR at step {evals[-1]['step']}") if evals else ""
    )


def history_table(log: list[dict]) -> str:
    """Held-out denoised PSNR at every evaluation of a training log, one row per evaluation (Markdown)."""
    evals = [r for r in log if "eval" in r]
    if not evals:
        return ""
    sigmas = [row["sigma"] for row in evals[0]["eval"]]
    lines = [
        "| step | minutes | " + " | ".join(f"sigma {sg:g}" for sg in sigmas) + " |",
        "|---:|---:|" + "---:|" * len(sigmas),
    ]
    for r in evals:
        by = {row["sigma"]: row["psnr_denoised"] for row in r["eval"]}
        lines.append(
            f"| {r['step']:,} | {r['elapsed_s'] / 60:.0f} | "
            + " | ".join(f"{by[sg]:.2f}" if sg in by else "" for sg in sigmas)
            + " |"
        )
    return "\n".join(lines)


def readme_text(run: str | Path, machine: str | None = None, extra_tables: dict[str, str] | None = None) -> str:
    """A checkpoint's README: what it is, the exact commands, wall time, machine, PSNR table, snapshots."""
    cfg = read_config(run)
    log = read_log(run)
    tc = cfg["train"]
    evals = [r for r in log if "eval" in r]
    machine = (
        machine
        or f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {cfg.get('torch', '?')}, device {cfg['device']}"
    )
    snaps = training_snapshots(run)[:-1]
    lines = [
        f"# {Path(run).name}",
        "",
        f"Blind UNet denoiser, preset `{tc['preset']}` ({cfg['n_params']:,} parameters), trained on `{tc['data']}` "
        f"({cfg['n_train']:,} training images"
        + (f"; classes never trained on: {len(cfg['held_out_classes'])}" if cfg.get("held_out_classes") else "")
        + ").",
        "",
        "## How it was made",
        "",
        "```bash",
        *cfg.get("commands", [cfg.get("command", "?")]),
        "```",
        "",
        f"- steps: {cfg['step']:,} of batch {tc['batch']} ({cfg['step'] * tc['batch']:,} images seen)",
        f"- wall time: {cfg['elapsed_s'] / 60:.0f} min on {machine}",
        f"- sigma law `{tc['sigma_law']}` on [{tc['sigma_min']}, {tc['sigma_max']}], lr {tc['lr']} halved every "
        f"{tc['lr_halve_every']} steps, seed {tc['seed']}",
        "",
    ]
    if evals:
        lines += [
            "## Held-out PSNR at the end of training (from the log)",
            "",
            "```",
            format_table(evals[-1]["eval"], f"step {evals[-1]['step']}, {tc['n_eval']} held-out images"),
            "```",
            "",
        ]
    ev = Path(run) / "eval.json"
    if ev.is_file():
        e = json.loads(ev.read_text())
        lines += [
            f"## Final weights, `sdr eval` ({e['n']} held-out `{e['data']}` images, seed {e['seed']})",
            "",
            "```",
            format_table(e["rows"]),
            "```",
            "",
        ]
    if len(evals) > 1:
        lines += [f"## Held-out denoised PSNR (dB) along training ({tc['n_eval']} images)", "", history_table(log), ""]
    for title, table in (extra_tables or {}).items():
        lines += [f"## {title}", "", table, ""]
    if snaps:
        lines += [
            "## Intermediate snapshots (for the training-length studies)",
            "",
            *[f"- `{p.name}`: step {s:,}" for s, p in snaps],
            "",
        ]
    lines += [
        "Files: `model.safetensors` (weights), `config.json` (architecture, training config, sha256), "
        "`log.jsonl` (loss and held-out PSNR over training), `state.safetensors` (optimizer and RNG state: "
        "`sdr train --out <this folder> --resume` continues the run).",
        "",
    ]
    return "\n".join(lines)
