"""The README's scale-up path, end to end at toy size: train on (fake) downsampled ImageNet 64x64 files, then run
a chapter with the paper profile on that checkpoint through `sdr book` (what CI can afford of the paper's run)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def fake_imagenet64(root: Path, n: int = 24, classes: int = 4) -> None:
    """The ten train batches and val_data.npz of downsampled ImageNet 64x64 (uint8 rows in C,H,W order, labels
    1..1000), each class a different mean brightness so that there is something to learn."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]:
        labels = (np.arange(n) % classes) + 1
        base = (labels[:, None] * 255 // (classes + 1)).astype(np.int16)
        data = np.clip(base + rng.integers(-40, 40, (n, 3 * 64 * 64)), 0, 255).astype(np.uint8)
        np.savez(root / f"{name}.npz", data=data, labels=labels.tolist())


def sdr(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sdrlib.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900
    )


@pytest.mark.slow
def test_train_on_imagenet64_files_then_run_a_chapter_with_the_paper_profile(tmp_path):
    data = tmp_path / "imagenet64"
    fake_imagenet64(data)
    env = {**os.environ, "SDR_DATA_IMAGENET64": str(data), "SDR_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "2"}
    run = tmp_path / "paper-in64"
    t = sdr(
        "train",
        "--preset",
        "tiny",
        "--data",
        "imagenet64",
        "--size",
        "32",
        "--steps",
        "4",
        "--batch",
        "8",
        "--n-eval",
        "8",
        "--eval-every",
        "4",
        "--no-progress",
        "--out",
        str(run),
        env=env,
    )
    assert t.returncode == 0, t.stderr[-2000:]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["data"] == "imagenet64"
    assert cfg["data_fingerprint"]["train"]["counts"]["train"] == 240
    out = tmp_path / "executed"
    small = [
        "-p",
        "references",
        json.dumps([str(run)]),
        "-p",
        "device",
        "cpu",
        "-p",
        "cache",
        "user",
        "-p",
        "n_images",
        "24",
        "-p",
        "n_noise",
        "2",
        "-p",
        "grid_classes",
        "4",
        "-p",
        "grid_per_class",
        "5",
        "-p",
        "grid_noise",
        "2",
        "-p",
        "n_noise_sweep",
        "1",
        "-p",
        "n_boot",
        "50",
        "-p",
        "n_boot_slow",
        "10",
    ]
    b = sdr("book", "--profile", "paper", "--chapters", "02", "--output-dir", str(out), "--no-build", *small, env=env)
    assert b.returncode == 0, (b.stdout[-2000:], b.stderr[-2000:])
    nb = nbformat.read(out / "02_sparse.ipynb", as_version=4)
    params = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'profile = "paper"' in params.source
    assert "n_images = 24" in params.source
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "paper-in64: step 4, data imagenet64" in text
