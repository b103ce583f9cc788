"""Benchmark: one self-guided reconstruction with phi matching through the encoder and middle
block only (sdrlib.sampling) against a straightforward version that runs the whole network
(decoder included) at every matching step. Both run side by side in one process, on the same
model, target and seeds, and the script prints the ratio.

    .venv/bin/python bench/bench_self_guided.py --checkpoint small-fashion-mnist --steps 20
"""
from __future__ import annotations

import argparse
import time

import torch

from sdrlib import checkpoints, data, sampling
from sdrlib.unet import build


def full_network_phi1(model, y, block="mid"):
    """The straightforward phi1: a full forward pass (decoder included), then the block's spatial mean."""
    return model.blocks(y)[1][block].mean(dim=(2, 3))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="checkpoint (default: an untrained 'small' model)")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--n", type=int, default=4, help="samples drawn at once")
    p.add_argument("--steps", type=int, default=20, help="schedule length (the paper uses 100)")
    p.add_argument("--max-iter", type=int, default=20, help="Adam iterations per matching (fixed count)")
    p.add_argument("--repeats", type=int, default=2, help="timed repetitions of each (best is kept)")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    test = data.load(a.data, "test").subset(1, seed=0)
    model = checkpoints.load_model(a.checkpoint) if a.checkpoint else build("small", in_channels=test.images.shape[1]).eval()
    target = sampling.image_target(model, test.images, n_per=a.n, n_noise=4)
    mean = test.images.mean(dim=(0, 2, 3), keepdim=True).expand(1, -1, *test.images.shape[-2:])
    sched = torch.linspace(1.0, 0.03, a.steps).tolist()
    # rel_tol=0 forces exactly max_iter Adam steps in both versions, so the work is identical
    timings: dict[str, tuple[float, torch.Tensor]] = {}
    variants = (("encoder+middle only", sampling.phi1), ("whole network", full_network_phi1))
    for rep in range(a.repeats + 1):                  # repetition 0 warms up both, then alternate; keep the best
        for name, fn in variants if rep % 2 else variants[::-1]:
            t0 = time.perf_counter()
            x, _ = sampling.fixed_schedule(model, mean, target, a.n, sched if rep else sched[:1],
                                           max_iter=a.max_iter, rel_tol=0.0, phi_fn=fn,
                                           generator=torch.Generator().manual_seed(0))
            dt = time.perf_counter() - t0
            if rep and (name not in timings or dt < timings[name][0]):
                timings[name] = (dt, x)
    (tf, xf), (ts, xs) = timings["encoder+middle only"], timings["whole network"]
    print(f"model: {a.checkpoint or 'untrained small'}, {a.n} samples x {len(sched)} steps x {a.max_iter} Adam iterations")
    print(f"encoder+middle only : {tf:8.2f} s  ({tf / a.n:.2f} s per sample)")
    print(f"whole network       : {ts:8.2f} s  ({ts / a.n:.2f} s per sample)")
    print(f"speed-up            : {ts / tf:8.2f}x   (same samples: max |diff| = {(xf - xs).abs().max().item():.2e})")


if __name__ == "__main__":
    main()
