"""Data-parallel training under torchrun (gloo on the CPU): two processes sharing each global batch take the
same steps as one process with that batch and seed, and rank 0 alone writes."""

import os
import subprocess
import sys

import pytest
import torch

from sdrlib import checkpoints

ARGS = [
    "train",
    "--preset",
    "tiny",
    "--data",
    "fashion-mnist",
    "--batch",
    "8",
    "--max-train",
    "256",
    "--n-eval",
    "16",
    "--steps",
    "12",
    "--ckpt-every",
    "6",
    "--eval-every",
    "6",
    "--log-every",
    "3",
    "--eval-sigmas",
    "0.2",
    "--threads",
    "1",
    "--no-progress",
    "--hflip",
    "--ema",
    "0.9",
]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    one = run([sys.executable, "-m", "sdrlib.cli", *ARGS, "--out", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr[-2000:]
    two = run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "sdrlib.cli",
            *ARGS,
            "--out",
            str(tmp_path / "two"),
        ]
    )
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = checkpoints.load(tmp_path / "one", weights="raw"), checkpoints.load(tmp_path / "two", weights="raw")
    assert b.config["processes"] == 2
    assert a.config["processes"] == 1
    assert b.config["step"] == 12
    wa, wb = a.model.state_dict(), b.model.state_dict()
    worst = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert worst < 1e-5, f"2-process weights differ from 1-process by {worst:.2e}"
    ea, eb = (
        checkpoints.load(tmp_path / "one").model.state_dict(),
        checkpoints.load(tmp_path / "two").model.state_dict(),
    )
    assert max((ea[k] - eb[k]).abs().max().item() for k in ea) < 1e-5
    la, lb = [r["loss"] for r in a.log if "loss" in r], [r["loss"] for r in b.log if "loss" in r]
    assert len(la) == len(lb)
    assert all((abs(p - q) < 1e-06 * max(1, abs(p)) for p, q in zip(la, lb)))
    assert sorted(p.name for p in (tmp_path / "two").iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in (tmp_path / "one").iterdir() if not p.name.startswith(".")
    )


def test_batch_must_split_evenly(tmp_path, monkeypatch):
    from sdrlib import distributed

    monkeypatch.setattr(distributed, "setup", lambda device: distributed.Dist(0, 3, torch.device("cpu")))
    from sdrlib.train import TrainConfig, train

    with pytest.raises(ValueError, match="divisible by the number of processes"):
        train(TrainConfig(preset="tiny", batch=8, steps=1, progress=False, out=str(tmp_path / "r")))
