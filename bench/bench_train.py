"""Benchmark: training throughput of the blind UNet against the machine's matrix-multiply rate,
measured side by side in one run.

On a CPU: images/s and achieved GFLOP/s of training steps (forward + backward + Adam) for the
`small` preset at 32 and 64 px, beside the GFLOP/s of a large sgemm on 1 and 2 threads; the
printed ratio says how much of the matmul rate the training loop reaches (aim: >= 70 % on 2 threads).
On a CUDA GPU (``--device cuda``): images/s and model FLOP utilisation (MFU) in bf16 of the `paper`
preset at 64x64, against the device's bf16 dense peak (``--peak-tflops``, default by device name).

    .venv/bin/python bench/bench_train.py                      # CPU: ~5 minutes on 2 cores, run on a quiet machine
    python bench/bench_train.py --device cuda --preset paper --size 64 --batch 256

Where the time goes on this 2-core CPU (torch.profiler, `small` at 32 px, 2 threads): about 80 % of a step is
oneDNN convolutions. Forward convolutions run at 75-110 % of the sgemm rate, their backward (input and weight
gradients) at 50-70 %, lowest for the 32-channel layers at full resolution; the rest is the scale norm, ReLU,
concatenations and Adam. Before the scale norm had its own backward (`unet._ScaleNormFn`), its generic
autograd graph (``x.std()`` and a divide) took about 20 % of the step.

Measured on this quiet 2-core CPU (2026-11-28, trainings paused, `python bench/bench_train.py`): sgemm 93 GFLOP/s on
1 thread, 183 on 2; `small` at 32 px 75 img/s (74.5 % of sgemm) on 1 thread and 131 img/s (66 %) on 2; at 64 px
16.4 img/s (65 %) and 28.2 img/s (57 %). The 2-thread aim is missed by 4 and 13 points: two threads speed the
step up 1.72-1.75x where sgemm gains 1.96x, and the 64 px step spends more of its time in the full-resolution
32-channel layers, whose backward convolutions are the slowest (above).

FLOPs are counted by torch.utils.flop_counter on one real training step (convolutions and matmuls,
forward and backward), so the figure is the network's arithmetic, not an estimate from parameters.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from sdrlib.unet import build

# Dense bf16 peaks (TFLOP/s, without sparsity) of common accelerators, for the MFU denominator.
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "T4": 65.0, "A10": 125.0}


def flops_per_step(model: torch.nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one training step's forward and backward pass on batch x (2 per multiply-add)."""
    with FlopCounterMode(display=False) as fc:
        loss = (model(x) - x).pow(2).mean()
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(fc.get_total_flops())


def time_training(
    preset: str, size: int, batch: int, channels: int, device: str, steps: int, bf16: bool, compile_: bool
) -> dict:
    """Images/s and achieved FLOP/s of `steps` timed Adam steps (after warm-up) at the given size."""
    torch.manual_seed(0)
    model = build(preset, in_channels=channels).to(device).to(memory_format=torch.channels_last)
    x = torch.rand(batch, channels, size, size, device=device).contiguous(memory_format=torch.channels_last)
    fl = flops_per_step(model, x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    step_model = torch.compile(model) if compile_ else model
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)

    def step() -> None:
        y = x + 0.2 * torch.randn_like(x)
        with amp:
            loss = (step_model(y).float() - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    blocks = []  # the median of blocks of 5 steps: one slow block (another tenant, a page fault) does not count
    for _ in range(max(steps // 5, 1)):
        t0 = time.perf_counter()
        for _ in range(5):
            step()
        sync()
        blocks.append((time.perf_counter() - t0) / 5)
    dt = sorted(blocks)[len(blocks) // 2]
    return {"img_per_s": batch / dt, "flop_per_s": fl / dt, "flops_per_image": fl / batch}


def sgemm_rate(threads: int, n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of an n x n float32 matrix product on this many CPU threads (the median of reps, the same
    statistic as the training steps': a best-of would flatter the denominator on a noisy machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    torch.set_num_threads(old)
    return 2 * n**3 / sorted(times)[len(times) // 2]


def cpu_report(a: argparse.Namespace) -> None:
    """The CPU table: training at each size on 2 threads (and 1), and sgemm on 1 and 2 threads."""
    gemm = {t: sgemm_rate(t) for t in (1, 2)}
    print(f"sgemm 2048^2: 1 thread {gemm[1] / 1e9:.1f} GFLOP/s, 2 threads {gemm[2] / 1e9:.1f} GFLOP/s")
    print(f"{'preset':8s} {'size':>4s} {'threads':>7s} {'img/s':>8s} {'GFLOP/s':>8s} {'GFLOP/img':>9s} {'/ sgemm':>8s}")
    for size in a.sizes:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            r = time_training(a.preset or "small", size, a.batch, a.channels, "cpu", a.steps, False, False)
            print(
                f"{a.preset or 'small':8s} {size:4d} {threads:7d} {r['img_per_s']:8.1f} {r['flop_per_s'] / 1e9:8.1f} "
                f"{r['flops_per_image'] / 1e9:9.3f} {r['flop_per_s'] / gemm[threads]:8.1%}"
            )


def cuda_report(a: argparse.Namespace) -> None:
    """The GPU line: bf16 training throughput and MFU of the chosen preset."""
    name = torch.cuda.get_device_name()
    peak = a.peak_tflops or next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
    for size in a.sizes:
        r = time_training(a.preset or "paper", size, a.batch, a.channels, "cuda", a.steps, True, a.compile)
        mfu = f"{r['flop_per_s'] / (peak * 1e12):.1%}" if peak else "unknown peak"
        print(
            f"{name}: {a.preset or 'paper'} at {size}x{size}, batch {a.batch}, bf16"
            f"{' compiled' if a.compile else ''}: {r['img_per_s']:.0f} img/s, "
            f"{r['flop_per_s'] / 1e12:.1f} TFLOP/s, MFU {mfu} of {peak} TFLOP/s"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--preset", default=None, help="default: small on CPU, paper on CUDA")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="default: 32 64 on CPU, 64 on CUDA")
    p.add_argument("--batch", type=int, default=None, help="default: 64 on CPU, 256 on CUDA")
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--steps", type=int, default=None, help="timed steps, in 5-step blocks (default: 30 CPU, 50 CUDA)")
    p.add_argument("--compile", action="store_true", help="CUDA: torch.compile the model")
    p.add_argument("--peak-tflops", type=float, default=None, help="CUDA: the device's dense bf16 peak")
    a = p.parse_args()
    gpu = a.device == "cuda"
    a.sizes = a.sizes or ([64] if gpu else [32, 64])
    a.batch = a.batch or (256 if gpu else 64)
    a.steps = a.steps or (50 if gpu else 30)
    (cuda_report if gpu else cpu_report)(a)


if __name__ == "__main__":
    main()
