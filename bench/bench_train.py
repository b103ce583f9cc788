"""Benchmark: training throughput of the blind UNet against the machine's matrix-multiply rate,
measured side by side in one run.

On a CPU: images/s and achieved GFLOP/s of training steps (forward + backward + Adam) for the
`small` preset at 32 and 64 px, beside the GFLOP/s of a large sgemm on 1 and 2 threads; the
printed ratio says how much of the matmul rate the training loop reaches (aim: >= 70 % on 2 threads).
On a CUDA GPU (``--device cuda``): images/s and model FLOP utilisation (MFU) in bf16 of the `paper`
preset at 64x64, against the device's bf16 dense peak (``--peak-tflops``, default by device name); then the
same network, size and batch trained end to end by `sdr train`'s own loop (``sdrlib.train.train``: batches
drawn from a synthetic set held on the device, noise, loss, fused Adam, EMA, log) and its share of the
model-only rate (``--e2e-steps``; 0 skips it). ``--json PATH`` also writes the figures as JSON.

    .venv/bin/python bench/bench_train.py                      # CPU: ~5 minutes on 2 cores, run on a quiet machine
    .venv/bin/python bench/bench_train.py --malloc-ab --steps 20   # + the malloc A/B: ~12 minutes
    python bench/bench_train.py --device cuda --preset paper --sizes 64 --batch 256 [--compile]

Where the time goes on this 2-core CPU (torch.profiler, `small` at 32 px, 2 threads): about 80 % of a step is
oneDNN convolutions. Forward convolutions run at 75-110 % of the sgemm rate, their backward (input and weight
gradients) at 50-70 %, lowest for the 32-channel layers at full resolution; the rest is the scale norm, ReLU,
concatenations and Adam. Before the scale norm had its own backward (`unet._ScaleNormFn`), its generic
autograd graph (``x.std()`` and a divide) took about 20 % of the step.

Measured on this quiet 2-core CPU (2026-11-28, trainings paused, `python bench/bench_train.py`): sgemm 93 GFLOP/s on
1 thread, 183 on 2; `small` at 32 px 75 img/s (74.5 % of sgemm) on 1 thread and 131 img/s (66 %) on 2; at 64 px
16.4 img/s (65 %) and 28.2 img/s (57 %). The 2-thread aim is missed by 4 and 13 points: two threads speed the
step up 1.72-1.75x where sgemm gains 1.96x. At 64 px (torch.profiler, 2 threads, 5 steps) convolutions take
only 56 % of the step's operator time (backward 38 %, forward 16 %); memory-bound element-wise passes take
about 38 %: multiplies and subtractions, mostly the scale norm's (19 %), ReLU and its backward (11 %),
concatenations (4 %). Those scale worse with threads than a matrix product does.

Part of the shortfall is the kernel, not the arithmetic: glibc's malloc maps every tensor above its mmap
threshold (32 MB at most) afresh and unmaps it when freed, so each 64 px step page-faults a few hundred thousand
4 KB pages back in. The `kernel` column (system CPU time over all CPU time in the timed steps) reads 12-16 % at
64 px and 2-5 % at 32 px. `--malloc-ab` measures the cure, interleaved in fresh processes: with
GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (malloc advises transparent huge pages), on a slower moment of the same
machine (sgemm 158 GFLOP/s on 2 threads), 101 -> 109 img/s at 32 px (x1.07, 59 -> 64 % of sgemm) and 23.3 -> 27.6
img/s at 64 px (x1.18, 55 -> 65 %, kernel 16 -> 10 %). The trained weights are bit-identical either way.
Disabling mmap (mallopt M_MMAP_MAX = 0) removed the faults too but gained nothing measurable without huge pages.

FLOPs are counted by torch.utils.flop_counter on one real training step (convolutions and matmuls,
forward and backward), so the figure is the network's arithmetic, not an estimate from parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import resource  # Unix: the kernel's share of the step (page faults)
except ImportError:  # pragma: no cover - Windows
    resource = None

import torch
from torch.utils.flop_counter import FlopCounterMode

from sdrlib.train import make_optimizer
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
    model.check_finite = False  # as `sdr train` runs it: no read-back of the input at every step
    x = torch.rand(batch, channels, size, size, device=device).contiguous(memory_format=torch.channels_last)
    fl = flops_per_step(model, x)
    opt = make_optimizer(model, 1e-4, device)  # the training loop's Adam (fused on CUDA)
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
    r0 = resource.getrusage(resource.RUSAGE_SELF) if resource else None
    for _ in range(max(steps // 5, 1)):
        t0 = time.perf_counter()
        for _ in range(5):
            step()
        sync()
        blocks.append((time.perf_counter() - t0) / 5)
    dt = sorted(blocks)[len(blocks) // 2]
    kernel = float("nan")
    if r0:  # CPU time spent in the kernel (mostly page faults on freshly mapped tensors) over all CPU time
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        sys_s, user_s = r1.ru_stime - r0.ru_stime, r1.ru_utime - r0.ru_utime
        kernel = sys_s / max(sys_s + user_s, 1e-9)
    return {"img_per_s": batch / dt, "flop_per_s": fl / dt, "flops_per_image": fl / batch, "kernel": kernel}


E2E_DATA = {3: "shapes", 1: "ovals"}  # synthetic sets (nothing to download) by number of image channels


def time_train_loop(
    preset: str, size: int, batch: int, channels: int, device: str, steps: int, bf16: bool, compile_: bool
) -> dict:
    """Images/s of `sdr train`'s own loop at the same preset, size and batch (EMA on, as the recipes train),
    over its log lines after a warm-up of 50 steps (compilation and the first evaluation fall before it)."""
    from sdrlib.checkpoints import read_log
    from sdrlib.train import TrainConfig, train

    if channels not in E2E_DATA:
        raise ValueError(f"the end-to-end run needs 1 or 3 image channels (data {E2E_DATA}), got {channels}")
    every, warm = 25, 50
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            preset=preset,
            data=E2E_DATA[channels],
            size=size,
            batch=batch,
            lr=1e-4,
            ema=0.999,
            steps=warm + every * max(steps // every, 2),
            log_every=every,
            eval_every=10**9,
            ckpt_every=10**9,
            n_eval=64,
            bf16=bf16,
            compile=compile_,
            device=device,
            progress=False,
            out=str(Path(tmp) / "run"),
        )
        t0 = time.perf_counter()
        train(cfg)
        wall = time.perf_counter() - t0
        log = [r for r in read_log(cfg.out) if "loss" in r and r["step"] >= warm]
    first, last = log[0], log[-1]
    rate = (last["step"] - first["step"]) * batch / max(last["elapsed_s"] - first["elapsed_s"], 1e-9)
    return {"img_per_s": rate, "steps": cfg.steps, "timed_steps": last["step"] - first["step"], "wall_s": wall}


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
    head = f"{'preset':8s} {'size':>4s} {'threads':>7s} {'img/s':>8s} {'GFLOP/s':>8s} {'GFLOP/img':>9s} {'/ sgemm':>8s}"
    print(head + f" {'kernel':>7s}")
    for size in a.sizes:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            r = time_training(a.preset or "small", size, a.batch, a.channels, "cpu", a.steps, False, False)
            print(
                f"{a.preset or 'small':8s} {size:4d} {threads:7d} {r['img_per_s']:8.1f} {r['flop_per_s'] / 1e9:8.1f} "
                f"{r['flops_per_image'] / 1e9:9.3f} {r['flop_per_s'] / gemm[threads]:8.1%} {r['kernel']:7.1%}"
            )
    if a.malloc_ab:
        malloc_ab(a, gemm[2])


HUGEPAGES = "glibc.malloc.hugetlb=1"  # glibc >= 2.35: malloc advises transparent huge pages for what it maps


def child_line(a: argparse.Namespace, size: int, env: dict) -> dict:
    """One 2-thread training measurement in a fresh process with the given environment (GLIBC_TUNABLES is read
    only at process start)."""
    cmd = [sys.executable, __file__, "--child", str(size), "--batch", str(a.batch), "--steps", str(a.steps)]
    cmd += ["--preset", a.preset or "small", "--channels", str(a.channels)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def malloc_ab(a: argparse.Namespace, gemm2: float) -> None:
    """A/B, interleaved in fresh processes: glibc's default malloc against huge-page-advised malloc, 2 threads."""
    base = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    print(f"\nmalloc A/B, 2 threads, {a.rounds} interleaved rounds (medians): default vs GLIBC_TUNABLES={HUGEPAGES}")
    for size in a.sizes:
        runs = {"default": [], "hugepages": []}
        for _ in range(a.rounds):
            runs["default"].append(child_line(a, size, base))
            runs["hugepages"].append(child_line(a, size, {**base, "GLIBC_TUNABLES": HUGEPAGES}))
        med = {k: sorted(v, key=lambda r: r["img_per_s"])[len(v) // 2] for k, v in runs.items()}
        d, h = med["default"], med["hugepages"]
        print(
            f"{size:4d} px: {d['img_per_s']:6.1f} img/s ({d['flop_per_s'] / gemm2:.1%} of sgemm,"
            f" kernel {d['kernel']:.1%})"
            f" -> {h['img_per_s']:6.1f} img/s ({h['flop_per_s'] / gemm2:.1%}, kernel {h['kernel']:.1%}):"
            f" x{h['img_per_s'] / d['img_per_s']:.2f}"
        )


def cuda_report(a: argparse.Namespace) -> list[dict]:
    """The GPU lines: bf16 training throughput and MFU of the chosen preset, model only and in `sdr train`."""
    name = torch.cuda.get_device_name()
    peak = a.peak_tflops or next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
    preset, rows = a.preset or "paper", []
    for size in a.sizes:
        r = time_training(preset, size, a.batch, a.channels, "cuda", a.steps, True, a.compile)
        mfu = r["flop_per_s"] / (peak * 1e12) if peak else None
        print(
            f"{name}: {preset} at {size}x{size}, batch {a.batch}, bf16{' compiled' if a.compile else ''}: "
            f"model only {r['img_per_s']:.0f} img/s, {r['flop_per_s'] / 1e12:.1f} TFLOP/s, "
            f"MFU {f'{mfu:.1%}' if mfu is not None else 'unknown peak'} of {peak} TFLOP/s"
        )
        row = {"gpu": name, "preset": preset, "size": size, "batch": a.batch, "channels": a.channels, "bf16": True}
        row |= {"compiled": a.compile, "peak_tflops": peak, "model_only": {**r, "mfu": mfu}}
        if a.e2e_steps:
            e = time_train_loop(preset, size, a.batch, a.channels, "cuda", a.e2e_steps, True, a.compile)
            e["share_of_model_only"] = e["img_per_s"] / r["img_per_s"]
            e["mfu"] = mfu * e["share_of_model_only"] if mfu is not None else None
            print(
                f"{name}: sdr train's loop, same set-up: {e['img_per_s']:.0f} img/s "
                f"= {e['share_of_model_only']:.1%} of model only ({e['timed_steps']} timed steps, {e['wall_s']:.0f} s "
                "in all)"
            )
            row["train_loop"] = e
        rows.append(row)
    return rows


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
    p.add_argument(
        "--e2e-steps",
        type=int,
        default=None,
        help="CUDA: timed steps of sdr train's own loop beside the model-only figure (default 400; 0: skip)",
    )
    p.add_argument("--json", default=None, metavar="PATH", help="CUDA: also write the figures to this JSON file")
    p.add_argument(
        "--malloc-ab",
        action="store_true",
        help=f"CPU: also measure 2-thread training with GLIBC_TUNABLES={HUGEPAGES}, interleaved with the default",
    )
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of --malloc-ab")
    p.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args()
    gpu = a.device == "cuda"
    a.sizes = a.sizes or ([64] if gpu else [32, 64])
    a.batch = a.batch or (256 if gpu else 64)
    a.steps = a.steps or (50 if gpu else 30)
    a.e2e_steps = a.e2e_steps if a.e2e_steps is not None else 400
    if a.child:  # one measurement for malloc_ab, as a JSON line
        torch.set_num_threads(2)
        r = time_training(a.preset or "small", a.child, a.batch, a.channels, "cpu", a.steps, False, False)
        print(json.dumps(r))
        return
    if not gpu:
        cpu_report(a)
        return
    rows = cuda_report(a)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
