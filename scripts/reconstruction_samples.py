"""Draw, and cache beside a reference, the sample sets that claims 5 and 6 read (sdrlib.claims.reconstruction):
fixed-schedule self-guided samples of held-out targets guided by the trained network's phi, by the phi of untrained
networks of the same architecture (one per control seed) and by as many leading pixel-PCA coefficients as phi has
channels. They take CPU-hours, so they run here, one job per reference and guide, resumable (every finished run
is a file in ``checkpoints/<name>/features/``, named by its parameters), and chapter 4 re-reads them:

    .venv/bin/python scripts/reconstruction_samples.py fashion-mnist-small-32 --guides phi
    .venv/bin/python scripts/reconstruction_samples.py fashion-mnist-small-32 --guides "untrained phi" "pixel pca"
    .venv/bin/python scripts/reconstruction_samples.py fashion-mnist-small-32-authors --live-only 0.01  # a sick twin

The defaults are the ones chapter 4 passes: at least 30 targets spread evenly over the held-out classes
(``representation.stratified_indices``), the schedule of 20 noise levels, <= 25 Adam iterations per matching.
A run read on its healthy fraction (chapter 4's ``live_only``, ``sdrlib.health.claims_reading``) passes the same
``--live-only``: every guide is then restricted to live channels (``sample_runs.guide_restriction``).
"""

from __future__ import annotations

import argparse
import time

import torch

from sdrlib import checkpoints, sample_runs, sampling


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", help="a shipped reference (checkpoints/references.yaml) or a checkpoint folder")
    p.add_argument("--guides", nargs="+", default=list(sample_runs.GUIDES), choices=sample_runs.GUIDES)
    p.add_argument("--targets", type=int, default=30, help="held-out targets (claims 5-6 decide from 30)")
    p.add_argument("--per-target", type=int, default=10, help="samples per target of the phi guide (claim 6)")
    p.add_argument("--per-target-control", type=int, default=5, help="samples per target of each control guide")
    p.add_argument("--control-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=20, help="noise levels of the fixed schedule (the paper: 100)")
    p.add_argument("--match-iter", type=int, default=25)
    p.add_argument("--match-lr", type=float, default=0.01)
    p.add_argument("--noise-target", type=int, default=10, help="noise draws of the targets' phi_sigma")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--live-only", type=float, default=0.0, help="> 0: read on the healthy fraction (chapter 4)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ck = checkpoints.load(a.reference)
    rows = sample_runs.target_rows(ck, a.targets, a.seed)
    schedule = sampling.fixed_schedule_sigmas(a.steps)
    jobs = [("phi", 0, a.per_target)] if "phi" in a.guides else []
    jobs += [("untrained phi", s, a.per_target_control) for s in a.control_seeds if "untrained phi" in a.guides]
    jobs += [("pixel pca", 0, a.per_target_control)] if "pixel pca" in a.guides else []
    for guide, control_seed, n_per in jobs:
        t0 = time.perf_counter()
        out = sample_runs.guided(ck, rows, n_per, schedule, a.match_lr, a.match_iter, a.noise_target, a.seed,
                                 cache_in="reference", guide=guide, control_seed=control_seed,
                                 live=a.live_only)  # fmt: skip
        drawn, here = out["seconds_per_sample"].item(), time.perf_counter() - t0
        print(f"{a.reference}: {guide} (control seed {control_seed}): {len(out['samples'])} samples of {len(rows)} "
              f"targets, {drawn:.1f} s per sample when drawn; {here:.0f} s here", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
