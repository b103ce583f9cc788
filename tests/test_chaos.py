"""Crash safety of training: a run killed with SIGKILL at random moments, many of them while a checkpoint
is being written, always leaves a readable checkpoint, loses at most one checkpoint interval, and once
resumed to the end gives weights bitwise equal to those of an uninterrupted run with the same seed."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sdrlib import checkpoints

STEPS, EVERY = 120, 3  # long enough for 10 kills to land however fast a step is (faster steps after #23)
ARGS = [
    "train",
    "--preset",
    "tiny",
    "--data",
    "digits",
    "--batch",
    "8",
    "--max-train",
    "400",
    "--n-eval",
    "16",
    "--steps",
    str(STEPS),
    "--ckpt-every",
    str(EVERY),
    "--eval-every",
    "20",
    "--log-every",
    "5",
    "--eval-sigmas",
    "0.2",
    "--threads",
    "1",
    "--no-progress",
    "--ema",
    "0.9",
    "--warmup",
    "5",
]


def sdr(out: Path, *extra: str) -> subprocess.Popen:
    """Start `sdr train` on ``out`` in a child process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "sdrlib.cli", *ARGS, "--out", str(out), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def committed_step(out: Path) -> int:
    """The step of the checkpoint a reader sees now (0 when none was ever committed); it must load."""
    if not (out / checkpoints.CONFIG).exists() and not (out / checkpoints.PENDING / checkpoints.COMMIT).exists():
        return 0
    ck = checkpoints.load(out, with_state=True, weights="raw")
    checkpoints.load_model(out)  # the default (EMA) weights load too
    return int(ck.config["step"])


def sealed_step(out: Path) -> int:
    """The step of a sealed new version waiting in .next/ (0: none)."""
    try:
        if (out / checkpoints.PENDING / checkpoints.COMMIT).exists():
            return json.loads((out / checkpoints.PENDING / checkpoints.CONFIG).read_text())["step"]
    except (OSError, ValueError):
        pass
    return 0


def kill_when(proc: subprocess.Popen, out: Path, mode: str, seen: int, rng: random.Random) -> int:
    """SIGKILL the run at a chosen moment: a random delay after it commits a new checkpoint ("trained"),
    a few milliseconds after a new version starts being written ("writing"), or the moment the new
    version is sealed and being moved in ("sealed"). Returns the step readers must see after the kill:
    the sealed version's step in "sealed" mode, otherwise ``seen``. (On a loaded machine the poll can
    miss a short sealed window and catch a later one, so the step is the one observed, not seen + EVERY.)"""
    t_end, must_see = time.time() + 120, seen
    while time.time() < t_end and proc.poll() is None:
        if mode == "trained" and checkpoints.exists(out) and checkpoints.read_config(out)["step"] > seen:
            time.sleep(rng.uniform(0, 0.3))
            break
        if mode == "writing" and (out / checkpoints.PENDING).exists():
            time.sleep(rng.uniform(0, 0.01))
            break
        if mode == "sealed" and (s := sealed_step(out)) > seen:
            must_see = s
            break
        time.sleep(0.0002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return must_see


@pytest.mark.slow
def test_sigkill_anywhere_loses_at_most_one_interval_and_resumes_bit_exactly(tmp_path):
    ref = tmp_path / "reference"
    p = sdr(ref)
    assert p.wait(timeout=600) == 0, p.stderr.read()

    out, rng = tmp_path / "killed", random.Random(0)
    kills, seen, started, landed = 0, 0, False, set()
    for mode in ["trained", "writing", "sealed"] * 6:
        proc = sdr(out, *(["--resume"] if started else []))
        must_see = kill_when(proc, out, mode, seen, rng)
        if proc.returncode == 0:  # it finished before the kill: nothing more to do
            break
        kills += 1
        pending = out / checkpoints.PENDING
        landed.add(
            "sealed" if (pending / checkpoints.COMMIT).exists() else "unsealed" if pending.exists() else "between"
        )
        step = committed_step(out)  # loads, whatever the moment of the kill
        assert step >= seen, f"a kill ({mode}) lost a committed checkpoint: step {seen} -> {step}"
        if mode == "sealed":  # the new version was whole: readers must see it
            assert step >= must_see > seen, f"killed once step {must_see} was sealed: readers see step {step}"
        seen, started = step, started or step > 0
    assert {"sealed", "unsealed"} <= landed, f"kills landed only {landed}"
    assert kills >= 10, f"only {kills} kills landed before the run ended"
    proc = sdr(out, *(["--resume"] if started else []))  # resume to the end
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    a = checkpoints.load(ref, weights="raw").model.state_dict()
    b = checkpoints.load(out, weights="raw").model.state_dict()
    assert checkpoints.read_config(out)["step"] == STEPS
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    ea, eb = (
        checkpoints.load(ref, weights="ema").model.state_dict(),
        checkpoints.load(out, weights="ema").model.state_dict(),
    )
    assert all(torch.equal(ea[k], eb[k]) for k in ea), "resumed EMA weights differ"
    assert not (out / checkpoints.PENDING).exists()
