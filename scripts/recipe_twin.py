"""Read a finished twin of another recipe (#24 item 3; references.yaml's ``recipe_of``) the way chapter 7 says:
measure its health, then execute chapters 1-4 on it alone into ``checkpoints/NAME/chapters/``, whole when its
health meets the bar and on its healthy fraction otherwise (``sdrlib.health.claims_reading``). Chapter 7's
claim x recipe table then reads those chapters. Each step is a command printed before it runs, so a step that
fails can be rerun by hand; every costly step caches beside the run, so rerunning this script resumes:

    .venv/bin/python scripts/recipe_twin.py fashion-mnist-small-32-authors            # after its training ends
    .venv/bin/python scripts/recipe_twin.py textures-paper-small-64-authors --wait    # or: wait for it first
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from sdrlib import checkpoints, health

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def step(cmd: list[str]) -> None:
    """Print one step's command, run it from the book's root, stop on its failure."""
    print("$", shlex.join(cmd), flush=True)
    t = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True)
    print(f"# done in {time.time() - t:.0f} s", flush=True)


def training_left(run: str) -> str | None:
    """Where a run's training stands while it is not finished ("step 40 of 100"); None once it is."""
    c = checkpoints.read_config(run)
    return f"step {c['step']:,} of {c['train']['steps']:,}" if c["step"] < c["train"]["steps"] else None


def wait_for(run: str, poll_s: float) -> None:
    """Block until the run's saved step reaches its configured length (its training wrote the last checkpoint)."""
    while left := training_left(run):
        print(f"{run}: {left}; waiting", flush=True)
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a twin listed with recipe_of in checkpoints/references.yaml")
    p.add_argument("--dead-bar", type=float, default=0.05, help="the health bar (chapter 7's dead_bar)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads of the health and sample steps")
    p.add_argument("--wait", action="store_true", help="wait for the run's training to finish first")
    p.add_argument("--poll", type=float, default=300.0, help="seconds between looks when waiting")
    a = p.parse_args(argv)
    twins = checkpoints.recipe_twins()
    if a.run not in twins:
        raise SystemExit(f"{a.run!r} is not a twin of another recipe (references.yaml recipe_of): {sorted(twins)}")
    if a.wait:
        wait_for(a.run, a.poll)
    elif left := training_left(a.run):
        raise SystemExit(f"{a.run} is still training ({left}): --wait for it")
    folder = checkpoints.resolve(a.run)
    py = str(BIN / "python")
    # its health.json, kept when it measured these weights (the report's cache), and its row in budget.json
    step([py, "scripts/health_study.py", "report", "--stage", "budget", "--references-only",
          "--threads", str(a.threads), "--runs", str(folder.relative_to(ROOT))])  # fmt: skip
    live = health.claims_reading(a.run, a.dead_bar)  # raises while training, or on a missing or stale health
    print(f"{a.run}: {json.loads((folder / 'health.json').read_text())}; read "
          + ("whole" if live == 0 else f"on its healthy fraction (live_only {live})"), flush=True)  # fmt: skip
    step([py, "scripts/reconstruction_samples.py", a.run, "--threads", str(a.threads), "--live-only", str(live)])
    book = [str(BIN / "sdr"), "book", "--chapters", "01", "02", "03", "04", "-p", "references", json.dumps([a.run])]
    book += ["-p", "live_only", str(live)] if live else []
    step(book + ["--output-dir", str((folder / "chapters").relative_to(ROOT)), "--no-build"])


if __name__ == "__main__":
    main()
