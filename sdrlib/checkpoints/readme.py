"""A checkpoint's human-readable side: the README written into its folder (the exact commands, wall time,
machine, PSNR tables along training) and a one-paragraph summary of a run."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from ..evaluate import format_table
from ..recipes import describe
from ..stopping import STOP_SLOPE, eval_key, full_rate_slope, psnr_slope, rule_met
from .store import EMA, STATE, WEIGHTS, read_config, read_log, training_snapshots

NOTES = "notes.md"  # a run's hand-written notes, copied into its README under "Notes"


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
    slope = psnr_slope(log)
    if slope is not None:
        head += f"; PSNR at sigma 0.1 {slope:+.3f} dB per 1,000 steps over the last 1,000"
    return head + (
        "\n" + format_table(evals[-1]["eval"], f"held-out PSNR at step {evals[-1]['step']}") if evals else ""
    )


def recipe_text(tc: dict) -> str:
    """One line naming a run's training recipe: learning rate and its schedule, EMA, gain init, crop."""
    parts = [f"lr {tc['lr']}"]
    if tc.get("warmup"):
        parts.append(f"linear warm-up {tc['warmup']:,} steps")
    if tc.get("decay", "none") != "none":
        hold, n = tc.get("hold_steps", 0), tc["decay_steps"]
        span = f"{n:,} steps and held there for the last {hold:,}" if hold else f"the last {n:,} steps"
        parts.append(f"{tc['decay']} decay to lr x {tc.get('lr_final', 0.1)} over {span}")
    if tc.get("lr_halve_every"):
        parts.append(f"halved every {tc['lr_halve_every']:,} steps")
    if tc.get("ema"):
        parts.append(f"EMA {tc['ema']}")
    parts.append(f"gain init `{tc.get('gain_init') or 'paper'}`")
    if tc.get("crop"):
        parts.append(f"random {tc['crop']}x{tc['crop']} crops")
    return ", ".join(parts)


def history_table(log: list[dict]) -> str:
    """Held-out denoised PSNR at every evaluation of a training log, one row per evaluation (Markdown); of the
    EMA weights when the run kept an EMA."""
    key = eval_key(log)
    evals = [r for r in log if key in r]
    if not evals:
        return ""
    sigmas = [row["sigma"] for row in evals[0][key]]
    lines = [
        "| step | minutes | " + " | ".join(f"sigma {sg:g}" for sg in sigmas) + " |",
        "|---:|---:|" + "---:|" * len(sigmas),
    ]
    for r in evals:
        by = {row["sigma"]: row["psnr_denoised"] for row in r[key]}
        lines.append(
            f"| {r['step']:,} | {r['elapsed_s'] / 60:.0f} | "
            + " | ".join(f"{by[sg]:.2f}" if sg in by else "" for sg in sigmas)
            + " |"
        )
    return "\n".join(lines)


def command_lines(commands: list[str]) -> list[str]:
    """The commands that made a checkpoint, a run of the same command (a resume, once per session) written once
    with how many times it ran."""
    out: list[tuple[str, int]] = []
    for c in commands:
        if out and out[-1][0] == c:
            out[-1] = (c, out[-1][1] + 1)
        else:
            out.append((c, 1))
    return [c if n == 1 else f"{c}  # run {n} times" for c, n in out]


def readme_text(run: str | Path, machine: str | None = None, extra_tables: dict[str, str] | None = None) -> str:
    """A checkpoint's README: what it is, the exact commands, wall time, machine, PSNR table, snapshots."""
    cfg = read_config(run)
    log = read_log(run)
    tc = cfg["train"]
    key = eval_key(log)
    which = "EMA weights" if key == "eval_ema" else "weights"
    evals = [r for r in log if key in r]
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
        *command_lines(cfg.get("commands", [cfg.get("command", "?")])),
        "```",
        "",
        f"- steps: {cfg['step']:,} of batch {tc['batch']} ({cfg['step'] * tc['batch']:,} images seen)",
        f"- wall time: {cfg['elapsed_s'] / 60:.0f} min on {machine}"
        + (f" ({cfg['cpu_s'] / 3600:.1f} CPU-hours)" if cfg.get("cpu_s") else ""),
        f"- recipe: {recipe_text(tc)}; sigma law `{tc['sigma_law']}` on [{tc['sigma_min']}, {tc['sigma_max']}], "
        f"seed {tc['seed']}",
        f"- named recipe: {describe(cfg)}",
    ]
    slope = psnr_slope(log)
    if slope is not None:
        lines.append(
            f"- held-out PSNR at sigma 0.1 over the last 1,000 steps: {slope:+.3f} dB per 1,000 steps (the references' "
            f"stopping rule, below {STOP_SLOPE:+.2f}: {rule_met(slope)})"
        )
    full = full_rate_slope(log, tc)
    if full is not None:
        lines.append(
            f"- the same slope over the 1,000 steps before the decay starts (step {full[0]:,}, full rate): "
            f"{full[1]:+.3f} dB per 1,000 steps (part of the fall to the final slope is the smaller steps)"
        )
    lines.append("")
    if evals:
        lines += [
            f"## Held-out PSNR at the end of training ({which}, from the log)",
            "",
            "```",
            format_table(evals[-1][key], f"step {evals[-1]['step']}, {tc['n_eval']} held-out images"),
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
        lines += [
            f"## Held-out denoised PSNR (dB) along training ({which}, {tc['n_eval']} images)",
            "",
            history_table(log),
            "",
        ]
    for title, table in (extra_tables or {}).items():
        lines += [f"## {title}", "", table, ""]
    notes = Path(run) / NOTES
    if notes.is_file():  # what the numbers cannot say (why the run stopped where it did), kept across rewrites
        lines += ["## Notes", "", notes.read_text().strip(), ""]
    if snaps:
        lines += [
            "## Intermediate snapshots (for the training-length studies)",
            "",
            *[f"- `{p.name}`: step {s:,}" for s, p in snaps],
            "",
        ]
    lines += [files_text(Path(run)), ""]
    return "\n".join(lines)


def files_text(run: Path) -> str:
    """The README's line on a checkpoint's files; a run kept without its optimiser state (a finished seed) or as its
    EMA weights alone says it cannot be resumed."""
    if (run / WEIGHTS).is_file() and not (run / STATE).is_file():
        ema = " and `ema.safetensors` (the EMA weights: the network `sdrlib.checkpoints.load` gives)"
        return (
            f"Files: `model.safetensors` (the raw weights){ema if (run / EMA).is_file() else ''}, `config.json` "
            "(architecture, training config, sha256; its hash of `state.safetensors` is the run's record of the file "
            "not kept here), `log.jsonl` (loss and held-out PSNR over training). The optimizer state was not kept: "
            "the run is finished and cannot be resumed."
        )
    if (run / WEIGHTS).is_file() or not (run / EMA).is_file():
        return (
            "Files: `model.safetensors` (weights), `config.json` (architecture, training config, sha256), "
            "`log.jsonl` (loss and held-out PSNR over training), `state.safetensors` (optimizer and RNG state: "
            "`sdr train --out <this folder> --resume` continues the run)."
        )
    return (
        "Files: `ema.safetensors` (the EMA weights: the network `sdrlib.checkpoints.load` gives), `config.json` "
        "(architecture, training config, sha256; its hashes of `model.safetensors` and `state.safetensors` are the "
        "run's record of files not kept here), `log.jsonl` (loss and held-out PSNR over training). The raw weights "
        "and the optimizer state were not kept: the run cannot be resumed."
    )
