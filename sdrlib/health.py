"""Health of a trained middle block (the recipe study): how many channels are dead, by the exact
rule and by the relative rule, and whether its phi already separates held-out images (10-NN)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from . import analysis, data, sparsity, stats
from .checkpoints import read_config, resolve, training_data_kwargs, weights_sha256
from .representation import phi
from .stopping import STOP_SLOPE, rule_met
from .unet import UNet


@torch.no_grad()
def middle_health(
    model: UNet,
    base: torch.Tensor,
    base_labels: torch.Tensor,
    query: torch.Tensor,
    query_labels: torch.Tensor,
    sigma: float = 0.2,
    n_noise: int = 1,
    k: int = 10,
    rel: float = 0.01,
    seed: int = 0,
    per_query: bool = False,
) -> dict:
    """Dead middle channels (exactly zero; maximum below ``rel`` of the largest channel's maximum, both
    over the query images) and the 10-NN label agreement of standardised phi, queries against ``base``;
    with ``per_query``, also each query's agreement (what a bootstrap interval resamples)."""
    pq = phi(model, query, sigma, n_noise, seed=seed)
    pb = phi(model, base, sigma, n_noise, seed=seed + 1)
    tr, te = analysis.standardize(pb.double(), pq.double())
    per = analysis.knn_per_query(tr, base_labels, k, query=te, query_labels=query_labels)["agreement"]
    out = {
        "channels": pq.shape[1],
        "dead_zero": int(sparsity.dead_channels(pq).sum()),
        "dead_relative": int(sparsity.relative_dead(pq, rel).sum()),
        "knn_agreement": per.mean().item(),
    }
    if per_query:
        out["knn_per_query"] = [round(v, 4) for v in per.tolist()]
    return out


def query_split(config: dict) -> str:
    """The split a run's health is measured on: its validation split when it kept one (an arm of the recipe study,
    whose measures choose), else the test split (a reference, measured for the record, never for a choice)."""
    return data.VALIDATION if training_data_kwargs(config).get("val") else "test"


def study_sets(config: dict, n_base: int, n_query: int) -> dict[str, data.ImageSet]:
    """The images a run of the recipe study is measured on, from its own data set (name, size, crop, band):
    "base", ``n_base`` of its training crops (the 10-NN base), and "query", ``n_query`` crops of
    ``query_split(config)``; both drawn with seed 0, the same for every run of a stage."""
    name, kw = config["train"]["data"], training_data_kwargs(config)
    return {
        "base": data.load(name, "train", **kw).subset(n_base, seed=0),
        "query": data.load(name, query_split(config), **kw).subset(n_query, seed=0),
    }


# ------------------------------------------------------------------ reading the recipe study (chapter 7)
# scripts/health_study.py writes book/health/<stage>.json: per arm (and per reference measured with it) its
# TrainConfig ("config") and one row per snapshot ("rows": middle_health's measures, PSNR, CPU minutes).


def run_size(run: dict) -> int:
    """The patch size a run trained on (its config leaves it empty at the data set's default, 32)."""
    return run["config"].get("size") or 32


def knn_interval(row: dict) -> str:
    """The 95 % bootstrap interval of a snapshot's 10-NN agreement over its held-out queries."""
    if "knn_per_query" not in row:
        return "not stored"
    ci = stats.mean_ci(torch.tensor(row["knn_per_query"]))
    return f"[{ci.lo:.3f}, {ci.hi:.3f}]"


def snapshot_measures(row: dict) -> dict:
    """A snapshot's measures as table columns: dead channels, 10-NN with its interval, held-out PSNR."""
    return {
        "dead (relative)": row["dead_relative"],
        "exactly zero": row["dead_zero"],
        "channels": row["channels"],
        "10-NN": row["knn_agreement"],
        "10-NN 95 % CI": knn_interval(row),
        **{f"PSNR σ={s}": row.get(f"psnr {s}", float("nan")) for s in ("0.05", "0.1", "0.2", "0.4")},
    }


def pick_arm(arms: dict[str, dict], dead_bar: float, min_size: int | None = None, split: str = data.VALIDATION) -> str:
    """The recipe study's rule: among the arms (of at least ``min_size`` pixels) whose last snapshot has at most
    ``dead_bar`` of its middle channels dead, the one whose middle block separates validation crops best (10-NN);
    if none meets the bar, the one with the smallest fraction of dead channels.

    Every arm must have been measured on ``split`` (its report's "query_split"; a report written before the study
    kept one was measured on "test"): the default refuses a choice read on the test split. ``split="test"`` only
    replays the choice as first made, for the record."""
    wrong = {a: r.get("query_split", "test") for a, r in arms.items() if r.get("query_split", "test") != split}
    if wrong:
        raise ValueError(f"arms measured on another split than {split!r}: {wrong}; a choice reads the validation split")
    if min_size is not None:
        arms = {a: r for a, r in arms.items() if run_size(r) >= min_size}
    if not arms:
        raise ValueError(f"no arm trained on patches of at least {min_size} pixels")
    last = {a: r["rows"][-1] for a, r in arms.items()}
    healthy = [a for a, r in last.items() if r["dead_relative"] <= dead_bar * r["channels"]]
    if healthy:
        return max(healthy, key=lambda a: last[a]["knn_agreement"])
    return min(last, key=lambda a: last[a]["dead_relative"] / last[a]["channels"])


def stage_rows(stage: dict, chosen: str | None = None) -> list[dict]:
    """One row per arm of a stage (and per reference measured with it): its last snapshot's measures."""
    out = []
    for kind, runs in (("arm", stage["arms"]), ("reference", stage.get("references", {}))):
        for name, r in runs.items():
            last, tc = r["rows"][-1], r["config"]
            label = (name + (" ✔ chosen" if name == chosen else "")) if kind == "arm" else f"reference `{name}`"
            minutes = last["cpu_min"] or r.get("elapsed_min", float("nan"))  # older runs kept wall time only
            out.append(
                {
                    "run": label,
                    "preset": tc["preset"],
                    "size": run_size(r),
                    "steps": last["step"],
                    "minutes (1 thread)": minutes,
                    **snapshot_measures(last),
                }
            )
    return out


def stopping_line(run: dict) -> str:
    """A reference's stopping-rule line: CPU-hours (for a run trained on a GPU, its wall time: its "minutes (1
    thread)" are the host's CPU time), the final PSNR slope against the rule, the full-rate one."""
    gpu = str(run.get("config", {}).get("device", "")).startswith("cuda")
    cost = (
        f"trained on a GPU, {run.get('elapsed_min', float('nan')):.1f} minutes of wall time (its CPU minutes are the "
        "host's)"
        if gpu
        else f"{run.get('cpu_hours', float('nan')):.1f} CPU-hours"
    )
    if run.get("psnr_slope") is None:  # a report from before it kept the slope, or a log too sparse to read it
        return f": {cost}; no held-out PSNR in its last 1,000 steps, so the stopping rule cannot be read" if gpu else ""
    full = run.get("psnr_slope_full_rate")
    at_full = f"; at full rate (to step {full['before_step']:,}) {full['slope']:+.3f}" if full else ""
    return (
        f": {cost}; PSNR at σ = 0.1 over the last 1,000 steps {run['psnr_slope']:+.3f} dB "
        f"per 1,000 steps, stopping rule (below {STOP_SLOPE}) {rule_met(run['psnr_slope'])}{at_full}"
    )


# ------------------------------------------------------------------ how a run's claims are read (#24 item 3)


def claims_reading(run: str | Path, dead_bar: float, rel: float = 0.01) -> float:
    """Chapters 3-4's ``live_only`` for a finished run (a twin of another recipe): 0.0, every channel, when its final
    health (``health.json``, written by ``scripts/health_study.py report``) meets the bar of at most ``dead_bar`` of
    its middle channels dead by the relative rule; else ``rel``, its healthy fraction. A ValueError says what is
    missing: a run still training, or one whose health is not measured yet or was measured on earlier weights."""
    path = resolve(run)
    cfg = read_config(path)
    if cfg["step"] < cfg["train"]["steps"]:
        raise ValueError(f"{path.name} is still training (step {cfg['step']:,} of {cfg['train']['steps']:,})")
    if not (path / "health.json").is_file():
        raise ValueError(
            f"{path.name} has no health.json: measure it first (scripts/health_study.py report --stage budget "
            f"--references-only --runs {path})"
        )
    h = json.loads((path / "health.json").read_text())
    if "sha256" in h and h["sha256"] != weights_sha256(cfg):
        raise ValueError(f"{path.name}'s health.json measured other weights than its final ones: measure it again")
    return 0.0 if h["dead_relative"] <= dead_bar * h["channels"] else rel
