"""The one-command GPU check (#23): on a machine with a CUDA GPU, in one run of under 10 minutes,

1. the CUDA tests (``tests/test_devices.py``: ``sdr train``, ``sdr eval``, features and samplers on the GPU,
   beside the CPU simulations of a generator/device mismatch);
2. ``bench/bench_train.py --device cuda``, eager and compiled: model-only img/s and MFU of the `paper` preset at
   64x64 in bf16, and `sdr train`'s own loop at the same set-up as a share of it;
3. ``sdr train`` end to end for about a minute (eager, bf16, the same preset, size and batch, on the synthetic
   `shapes` set unless ``--data`` names another), then ``sdr eval --device cuda`` of what it trained;

and writes ONE JSON file of the results (pass/fail of each step, img/s, MFU, the goals of #23, versions, GPU):

    python scripts/gpu_check.py --out gpu_check.json

Exit status: 0 when every step passed, 1 when one failed (the JSON says which, with the tail of its output),
2 with a one-line message when torch sees no CUDA GPU. The JSON is rewritten after every step, so a run cut
short still leaves the steps it finished.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"compiled_mfu": 0.40, "train_share": 0.95}  # #23: compiled bench MFU, sdr train / bench


def run_step(cmd: list[str], timeout: float) -> dict:
    """Run one command from the repository root; its status, exit code, seconds and the tail of its output."""
    t0 = time.perf_counter()
    path = os.pathsep.join(x for x in (str(ROOT), os.environ.get("PYTHONPATH")) if x)
    try:
        p = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": path}
        )
        status, rc, out = ("passed" if p.returncode == 0 else "failed"), p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        status, rc = "timeout", None
        out = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
    return {"status": status, "rc": rc, "seconds": round(time.perf_counter() - t0, 1), "tail": out[-3000:]}


def junit_counts(path: Path) -> dict:
    """Tests, failures, errors and skips of a pytest JUnit XML report (empty when there is none)."""
    if not path.is_file():
        return {}
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}


def train_rate(log: list[dict], batch: int, skip: int = 100) -> float | None:
    """Images/s of a training log between its first line after ``skip`` steps and its last loss line."""
    lines = [r for r in log if "loss" in r and r["step"] >= skip]
    if len(lines) < 2 or lines[-1]["elapsed_s"] <= lines[0]["elapsed_s"]:
        return None
    return (lines[-1]["step"] - lines[0]["step"]) * batch / (lines[-1]["elapsed_s"] - lines[0]["elapsed_s"])


def versions() -> dict:
    """Python, torch, CUDA, cuDNN, the driver and the repository commit."""
    import torch

    def out(cmd: list[str]) -> str | None:
        try:
            return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=20).stdout.strip() or None
        except (OSError, subprocess.TimeoutExpired):
            return None

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "driver": out(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]),
        "git_commit": out(["git", "rev-parse", "HEAD"]),
        "git_dirty": bool(out(["git", "status", "--porcelain", "--untracked-files=no"])),
    }


def gpu() -> dict:
    """The GPU torch uses, and how many there are."""
    import torch

    p = torch.cuda.get_device_properties(0)
    return {
        "name": p.name,
        "count": torch.cuda.device_count(),
        "memory_gib": round(p.total_memory / 2**30, 1),
        "capability": f"{p.major}.{p.minor}",
        "multiprocessors": p.multi_processor_count,
    }


def summary(steps: dict) -> dict:
    """The headline figures and the goals of #23 from the steps' results."""
    eager = (steps.get("bench_eager", {}).get("result") or [{}])[0]
    comp = (steps.get("bench_compiled", {}).get("result") or [{}])[0]
    train = steps.get("train", {})
    s = {
        "all_passed": all(v.get("status") == "passed" for v in steps.values()),
        "bench_eager_img_per_s": eager.get("model_only", {}).get("img_per_s"),
        "bench_eager_mfu": eager.get("model_only", {}).get("mfu"),
        "bench_compiled_img_per_s": comp.get("model_only", {}).get("img_per_s"),
        "bench_compiled_mfu": comp.get("model_only", {}).get("mfu"),
        "train_loop_share_eager": eager.get("train_loop", {}).get("share_of_model_only"),
        "train_loop_share_compiled": comp.get("train_loop", {}).get("share_of_model_only"),
        "sdr_train_img_per_s": train.get("img_per_s"),
    }
    if s["sdr_train_img_per_s"] and s["bench_eager_img_per_s"] and train.get("same_setup_as_bench"):
        s["sdr_train_share_of_bench_eager"] = s["sdr_train_img_per_s"] / s["bench_eager_img_per_s"]
    mfu, shares = s["bench_compiled_mfu"], [s["train_loop_share_eager"], s["train_loop_share_compiled"]]
    s["goals"] = {
        f"compiled bench MFU >= {GOALS['compiled_mfu']:.0%}": None if mfu is None else mfu >= GOALS["compiled_mfu"],
        f"sdr train >= {GOALS['train_share']:.0%} of the bench": None
        if None in shares
        else min(shares) >= GOALS["train_share"],
    }
    return s


def check(a: argparse.Namespace, tmp: Path, report: dict, save) -> None:
    """Run the steps in order within the time budget, saving the report after each."""
    deadline = time.perf_counter() + a.budget
    steps = report["steps"]

    def left(cap: float) -> float:
        return max(min(cap, deadline - time.perf_counter()), 0.0)

    def step(name: str, title: str, cmd: list[str], cap: float) -> dict:
        t = left(cap)
        if t < 20:
            steps[name] = {"status": "skipped", "reason": "out of time (--budget)"}
        else:
            print(f"gpu_check: {title} ...", flush=True)
            steps[name] = run_step(cmd, t)
            print(f"gpu_check: {title}: {steps[name]['status']} ({steps[name]['seconds']} s)", flush=True)
        return steps[name]

    py = sys.executable
    junit = tmp / "junit.xml"
    tests = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_devices.py", f"--junitxml={junit}"]
    r = step("tests", "CUDA tests", tests, 300)
    r.update(junit_counts(junit))
    save()
    bench = [py, "bench/bench_train.py", "--device", "cuda", "--preset", a.preset, "--sizes", str(a.size)]
    bench += ["--batch", str(a.batch), "--e2e-steps", str(a.e2e_steps)]
    for name, extra, cap in (("bench_eager", [], 150), ("bench_compiled", ["--compile"], 240)):
        out = tmp / f"{name}.json"
        r = step(name, f"bench {name.split('_')[1]}", bench + extra + ["--json", str(out)], cap)
        if out.is_file():
            r["result"] = json.loads(out.read_text())
        save()
    run = tmp / "train"
    cmd = [py, "-m", "sdrlib.cli", "train", "--device", "cuda", "--bf16", "--preset", a.preset, "--data", a.data]
    cmd += ["--size", str(a.size), "--batch", str(a.batch), "--steps", "1000000", "--minutes", str(a.minutes)]
    cmd += ["--warmup", "200", "--ema", "0.999", "--log-every", "50", "--eval-every", "1000000", "--n-eval", "256"]
    r = step(
        "train", f"sdr train for {a.minutes} min", cmd + ["--no-progress", "--out", str(run)], 60 * a.minutes + 150
    )
    if (run / "log.jsonl").is_file():
        from sdrlib.checkpoints import read_log

        log = read_log(run)
        evals = [x for x in log if "eval" in x]
        r["steps_done"] = max((x["step"] for x in log), default=0)
        r["img_per_s"] = train_rate(log, a.batch)
        r["same_setup_as_bench"] = a.data == "shapes"
        r["eval_first_last"] = [evals[0]["eval"], evals[-1]["eval"]] if evals else None
    save()
    if r["status"] == "passed":
        rows = tmp / "eval.json"
        cmd = [py, "-m", "sdrlib.cli", "eval", str(run), "--device", "cuda", "--n", "256", "--save", str(rows)]
        e = step("eval", "sdr eval on the GPU", cmd, 90)
        if rows.is_file():
            e["rows"] = json.loads(rows.read_text())["rows"]
        save()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="the JSON file of the results")
    p.add_argument("--preset", default="paper", help="bench and training preset (default: paper)")
    p.add_argument("--size", type=int, default=64, help="image size of bench and training (default: 64)")
    p.add_argument("--batch", type=int, default=256, help="batch of bench and training (default: 256)")
    p.add_argument("--data", default="shapes", help="training set of the one-minute run (default: shapes)")
    p.add_argument("--minutes", type=float, default=1.0, help="length of the sdr train run (default: 1)")
    p.add_argument("--e2e-steps", type=int, default=300, help="timed steps of the bench's training-loop figure")
    p.add_argument("--budget", type=float, default=570, help="seconds for all the steps (default: 570)")
    a = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(
            f"gpu_check: no CUDA GPU visible to torch {torch.__version__} (built for CUDA {torch.version.cuda}); "
            "nothing was checked",
            file=sys.stderr,
        )
        return 2
    out = Path(a.out)
    if not out.parent.is_dir():
        print(f"gpu_check: --out {out}: folder {out.parent} does not exist", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from sdrlib.utils import write_json

    report = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "settings": vars(a),
        "gpu": gpu(),
        "versions": versions(),
        "steps": {},
    }

    def save() -> None:
        report["summary"] = summary(report["steps"])
        write_json(out, report)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        check(a, Path(tmp), report, save)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    save()
    s = report["summary"]
    print(f"gpu_check: {'all steps passed' if s['all_passed'] else 'some steps FAILED'}; goals {s['goals']}; {out}")
    return 0 if s["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
