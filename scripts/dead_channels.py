"""Why do middle-block channels die? Train the `small` preset on textures for a few hundred steps
under several scale-norm gain initialisations and learning rates, and count dead middle channels
(phi identically zero on held-out images, sigma = 0.2) at snapshots along the way.

    .venv/bin/python scripts/dead_channels.py --steps 300 --out runs/dead     # ~20 min on 2 CPU cores

Each variant is an ordinary `sdr train` run (resumable, logged), so any of them can be continued.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sdrlib import checkpoints, feature_cache, sparsity
from sdrlib.plots.tables import markdown_table
from sdrlib.train import TrainConfig, train

VARIANTS = [("paper", 1e-3), ("positive", 1e-3), ("ones", 1e-3), ("paper", 1e-4)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="textures")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--n", type=int, default=300, help="held-out images for the dead-channel count")
    p.add_argument("--out", default="runs/dead")
    a = p.parse_args()
    snaps = tuple(s for s in (25, 50, 100, 200) if s < a.steps)
    rows = []
    for gain, lr in VARIANTS:
        out = Path(a.out) / f"{gain}-lr{lr:g}"
        if not (out / checkpoints.CONFIG).is_file():
            train(
                TrainConfig(
                    preset="small",
                    data=a.data,
                    holdout_every=5,
                    hflip=True,
                    steps=a.steps,
                    lr=lr,
                    gain_init=gain,
                    snapshots=snaps,
                    eval_every=a.steps,
                    ckpt_every=a.steps,
                    n_eval=128,
                    out=str(out),
                ),
                command=f"scripts/dead_channels.py ({gain}, lr {lr:g})",
            )
        row = {"gain init": gain, "lr": lr}
        for step, path in checkpoints.training_snapshots(out):
            f, _ = feature_cache.checkpoint_features(path, "test", a.n, 0.2, 1, blocks=["mid"], control=False)
            row[f"dead @ {step}"] = sparsity.sparsity_summary(f["phi mid"])["dead"]
        ev = [r for r in checkpoints.read_log(out) if "eval" in r][-1]["eval"]
        row["PSNR @ 0.2"] = next(e["psnr_denoised"] for e in ev if abs(e["sigma"] - 0.2) < 1e-9)
        rows.append(row)
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
