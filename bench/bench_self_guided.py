"""Benchmark: self-guided reconstruction with phi matching through the encoder and middle block only (the
library's ``matching.phi_one_pass``) against the same sampler running the whole network (decoder included) at every
matching step. Both run side by side in one process on the same model, targets and seeds, on the `small`
and `paper` presets, with the authors' schedule shape (linspace(1, 0.03, 100) noise levels, up to 100 Adam
iterations each, stopping at 1 % of the first loss); ``--levels`` times the first few levels of it.

It prints, per preset: seconds per matching iteration of each path, the speed-up, the final relative phi
error of both (the two paths compute the same phi, so the comparison is at equal error), and the limit: the
ratio of the two paths' FLOPs per matching iteration (forward and backward, counted by
torch.utils.flop_counter), with the speed-up as a fraction of it.

Why the limit is not the forward ratio (about 2.8x for `small`, 4.6x for `paper`): phi's loss does not depend
on the decoder, so autograd's backward pass runs through the encoder and middle block only, in both paths, and
with the weights frozen it costs about one forward of them. Per iteration the whole network costs F_em + F_dec
+ F_em against 2 F_em, a ratio of 1 + F_dec / (2 F_em): about 1.9x and 2.8x from the forward ratios, 1.74x and
2.66x as counted. Measured on a quiet 2-core CPU (2026-11-28, 2 threads): 1.72x (99 % of 1.74x) and 2.76x
(104 %: the whole network's extra layers cost a little more than their FLOPs); before the scale norm had its own
backward, 1.59x and 2.47x.

With ``--profile``, the top operators of each path (torch.profiler), to see where time goes beyond the FLOPs.

    .venv/bin/python bench/bench_self_guided.py                     # ~15 minutes on 2 CPU cores
    .venv/bin/python bench/bench_self_guided.py --presets small --levels 5 --profile
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from sdrlib import matching, sampling, targets
from sdrlib.unet import build

SIZES = {"small": 32, "paper": 64, "paper-small": 64, "tiny": 16}


def whole_network_phi(model, y, block="mid"):
    """The straightforward phi1: a full forward pass (decoder included), then the block's spatial mean."""
    return model.blocks(y)[1][block].mean(dim=(2, 3))


def flops_per_iteration(model, y: torch.Tensor, phi_fn) -> float:
    """FLOPs of one matching iteration as phi_match runs it: phi of y and its loss forward, and the gradient
    with respect to the pixels y only (the weights are frozen, so no weight gradients)."""
    req = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    x = y.clone().requires_grad_(True)
    try:
        with FlopCounterMode(display=False) as fc:
            phi_fn(model, x, "mid").pow(2).mean().backward()
    finally:
        for p, r in zip(model.parameters(), req):
            p.requires_grad_(r)
    return float(fc.get_total_flops())


def run(model, mean, target, n, sched, max_iter, phi_fn) -> tuple[float, torch.Tensor, int]:
    """Seconds, samples and total matching iterations of one fixed-schedule run."""
    t0 = time.perf_counter()
    x, d = sampling.fixed_schedule(
        model,
        mean,
        target,
        n,
        sched,
        max_iter=max_iter,
        rel_tol=0.01,
        phi_fn=phi_fn,
        generator=torch.Generator().manual_seed(0),
    )
    return time.perf_counter() - t0, x, int(d.match_iterations.sum().item())


def bench(preset: str, a: argparse.Namespace) -> None:
    """Time both paths on one preset and print the comparison."""
    size = SIZES[preset]
    torch.manual_seed(0)
    model = build(preset, in_channels=3, gain_init="ones").eval()
    cond = torch.rand(a.n, 3, size, size, generator=torch.Generator().manual_seed(1))
    target = targets.image_target(model, cond, n_per=1, n_noise=2, grid=[0.03, 0.3, 1.0])
    mean = torch.full((1, 3, size, size), 0.5)
    sched = torch.linspace(1.0, 0.03, 100).tolist()[: a.levels]
    paths = {"encoder + middle": matching.phi_one_pass, "whole network": whole_network_phi}
    fl = {k: flops_per_iteration(model, cond, f) for k, f in paths.items()}
    res = {}
    for rep in range(a.repeats + 1):  # repetition 0 warms up; then alternate, keep the best
        for k in list(paths) if rep % 2 else list(paths)[::-1]:
            secs, x, iters = run(model, mean, target, a.n, sched if rep else sched[:1], a.max_iter, paths[k])
            if rep and (k not in res or secs < res[k][0]):
                res[k] = (secs, x, iters)
    err = {k: matching.relative_phi_error(model, v[1], target(torch.zeros(a.n))).mean().item() for k, v in res.items()}
    per = {k: res[k][0] / res[k][2] for k in res}
    speed, limit = per["whole network"] / per["encoder + middle"], fl["whole network"] / fl["encoder + middle"]
    print(
        f"{preset} at {size}x{size}, {a.n} samples, {len(sched)} levels, <= {a.max_iter} iterations, "
        f"{torch.get_num_threads()} threads"
    )
    for k in paths:
        print(
            f"  {k:17s}: {per[k] * 1e3:8.1f} ms per matching iteration ({res[k][2]} iterations, "
            f"{fl[k] / a.n / 1e9:.3f} GFLOP per sample-iteration), final relative phi error {err[k]:.4f}"
        )
    print(f"  speed-up {speed:.2f}x; FLOP ratio (the limit) {limit:.2f}x; speed-up / limit {speed / limit:.0%}")
    if a.profile:
        from torch.profiler import ProfilerActivity, profile

        for k, f in paths.items():
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                run(model, mean, target, a.n, sched[:2], min(a.max_iter, 10), f)
            print(f"  top operators, {k}:")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["small", "paper"])
    p.add_argument("--n", type=int, default=16, help="samples drawn at once")
    p.add_argument("--levels", type=int, default=3, help="how many of the schedule's 100 levels to time")
    p.add_argument("--max-iter", type=int, default=100, help="Adam iterations per matching, at most")
    p.add_argument("--repeats", type=int, default=1, help="timed repetitions of each (best is kept)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--profile", action="store_true", help="print the top operators of each path")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    for preset in a.presets:
        bench(preset, a)


if __name__ == "__main__":
    main()
