# ---
# jupyter:
#   jupytext:
#     formats: ipynb,src//py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["remove-cell"]
# In Colab: install the book's library, and the Debian packages that hold the
# data its reference checkpoints were trained on. Elsewhere: check that sdrlib
# is installed. (Written by `sdr book --sync` from _config.yml's repository.)
import os
import subprocess
import sys

REPO = "https://github.com/sdrlib/sdr-book"
if "google.colab" in sys.modules:
    HERE = "/content/sdr-book"
    DEBS = ["dataset-fashion-mnist", "ufoai-textures", "opencv-doc",
            "mate-backgrounds", "plasma-workspace-wallpapers"]
    apt = f"apt-get install -y -qq {' '.join(DEBS)} >/dev/null"
    subprocess.run(f"{apt} || (apt-get update -qq && {apt})", shell=True,
                   check=True)
    if not os.path.isdir(HERE):
        subprocess.run(["git", "clone", "--depth", "1", REPO, HERE], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e",
                    f"{HERE}[baselines,digits]"], check=True)
    sys.path.insert(0, HERE)
else:
    try:
        import sdrlib  # noqa: F401
    except ImportError:
        print(f"sdrlib is not installed for this kernel: in a clone of {REPO}"
              " run `make setup` and pick its .venv kernel (or pip install -e)")

# %% [markdown]
# # Appendix: training a healthy middle block
#
# The verdicts of chapters 2-4 are only as fair as the networks they are measured on. The first references
# of this book lost a large part of their middle block early in training: channels whose largest value over
# a thousand held-out images is below 1 % of the largest channel's (*dead* by the relative rule used
# throughout the book), many of them exactly zero. A dead channel cannot be sparse or selective, so a
# reference with a third of its middle block dead tests the paper's claims on a different network from the
# paper's. This page is the study that chose the training recipe of the references that replace them, run by
# `scripts/health_study.py` (its docstring has the commands) on colour textures, the set where the problem
# was worst, with the measurements stored in `book/health/*.json`.
#
# For every arm and at eight snapshots along its run, on held-out crops: dead middle channels (relative rule,
# and exact zeros), the middle block's 10-NN label agreement (standardised $\phi$ at $\sigma = 0.2$, 1,000
# held-out queries against 3,000 training crops), and held-out PSNR (the EMA weights when the arm keeps one).
#
# **Stage 1, the screen**: which lever keeps the middle block alive? 800 steps of the `small` preset at
# 32×32, one change at a time: a learning-rate warm-up, a lower learning rate, and the scale norm's gains
# initialised to 1 instead of the authors' small random values.
#
# **Stage 2, equal compute**: the old recipe against the chosen one, and 32×32 against 64×64 patches
# (`small`, and the cheaper `paper-small` preset), each arm given the same 45 minutes of one CPU thread
# (its step count set from a timed pilot, so a 4× costlier arm takes 4× fewer steps).
#
# At each stage one rule, applied to the measurements (`sdrlib.health.pick_arm`), chooses the arm: among the
# arms that meet the health bar at their last snapshot, the one whose middle block separates validation crops
# best (10-NN); if none meets it, the one with the fewest dead channels. At stage 2 the arm becomes the
# textures reference, so only arms trained on patches of at least `reference_size` pixels compete: at 32×32
# the middle block is 4×4 and most of its receptive field (84 pixels for `small`) is zero padding, far from
# the paper's 64×64 images and 80×80 texture patches. The 10-NN scores of arms at different patch sizes are
# measured on different crops, so they rank arms within a size, not across sizes.
#
# **No choice reads the test split.** The study was first run with its queries and PSNR log on the held-out
# test crops, the crops whose verdicts chapters 1-5 then read. It is re-run here with a validation split: every
# arm of the `-val` stages keeps a band of each photograph out of training (the fifth of its longer axis just
# before the test strip, `data.load(..., val=0.2)`), logs its PSNR on crops of that band, and is measured on
# them; `pick_arm` refuses arms measured on any other split. The first study stays on this page as the record
# of the choice as first made (replayed with `split="test"`), and the page says whether the choice changes.

# %% tags=["parameters"]
profile = "cpu"                  # this page reads stored measurements: every profile shows the same
stages = ["screen-val", "budget-val"]  # book/health/<stage>.json (scripts/health_study.py report): the choices
first_study = ["screen", "budget"]     # the same stages as first run, measured on the test split: the record
chosen = {}                      # the arm chosen per stage; empty: picked by the rule below from the measurements
dead_bar = 0.05                  # the health bar: at most this fraction of middle channels dead
reference_size = 64              # stage 2 chooses the textures reference: only arms on patches this large compete
device = "auto"                  # unused here (nothing is computed on a device); kept for a uniform interface
seed = 0

# %% tags=["remove-cell"]
# `papermill -p NAME VALUE` passes text: give each parameter the type of its default
# above (a ValueError names a value that does not fit).
from sdrlib.book import chapter_defaults, coerce

coerce(globals(), chapter_defaults("07"))

# %%
import json
from pathlib import Path

import torch
from IPython.display import Markdown, display

from sdrlib import checkpoints, health, plots, stats, verdicts

study = {s: json.loads(Path(f"health/{s}.json").read_text())
         for s in stages + first_study if Path(f"health/{s}.json").is_file()}
print(f"profile {profile}, seed {seed}, device {device}: stages measured: {', '.join(study) or 'none yet'}")
chosen = {stage: chosen.get(stage) or health.pick_arm(study[stage]["arms"], dead_bar,
                                                        reference_size if stage.startswith("budget") else None,
                                                        split="test" if stage in first_study else "val")
          for stage in study}
print("chosen:", chosen)
# the stage each section shows: its validation run once measured, else the first study's
screen, budget = (next((s for s in (f"{k}-val", k) if s in study), None) for k in ("screen", "budget"))
print(f"shown: {screen}, {budget}")


# %% [markdown]
# ## Stage 1: the screen
#
# The last snapshot of each arm (800 steps), measured on validation crops; below it the first study's table,
# measured on test crops.

# %%
for stage in dict.fromkeys((screen, "screen")):  # the stage shown, then the first study's (once when the same)
    if stage in study:
        display(Markdown(f"**{stage}** (queries: {study[stage]['protocol']['query']})\n\n" + plots.markdown_table(
            health.stage_rows(study[stage], chosen.get(stage)), floatfmt=".3f")))
if screen:
    for metric, label in (("dead_relative", "dead middle channels (relative rule)"),
                          ("knn_agreement", "middle-block 10-NN agreement")):
        arms = study[screen]["arms"]
        fig = plots.lines([r["step"] for r in next(iter(arms.values()))["rows"]],
                          {a: [r[metric] for r in v["rows"]] for a, v in arms.items()},
                          "training step", label, title=f"{screen}: {label} along training")

# %% [markdown]
# The screen fixed the learning rate of the recipe that stage 2 and the new references use. Where the rule's
# pick and that learning rate differ, the cell below says by how much, paired over the same validation crops:
# a difference whose interval holds zero is one the screen cannot resolve.

# %%
if screen and budget:
    recipe = study[budget]["arms"][chosen[budget]]["config"]
    same = [a for a, r in study[screen]["arms"].items()
            if r["config"]["lr"] == recipe["lr"] and r["config"].get("gain_init") == recipe.get("gain_init")
            and r["config"].get("warmup", 0) > 0]
    recipe_arm = same[0] if same else None
    if recipe_arm and recipe_arm != chosen[screen]:
        rows = {a: study[screen]["arms"][a]["rows"][-1] for a in (chosen[screen], recipe_arm)}
        gap = stats.paired_diff_ci(*(torch.tensor(rows[a]["knn_per_query"]) for a in (chosen[screen], recipe_arm)))
        display(Markdown(f"The rule picks **{chosen[screen]}**; the recipe's screen arm is **{recipe_arm}** "
                         f"(lr {recipe['lr']:g}), behind it by {gap.fmt('+.3f')} in 10-NN, paired over the same "
                         f"crops, with {rows[recipe_arm]['dead_relative']} dead channels against "
                         f"{rows[chosen[screen]]['dead_relative']}. "
                         + ("The screen does not separate the two learning rates."
                            if gap.lo <= 0 <= gap.hi else "The screen separates them.")))
        assert gap.lo <= 0, f"the screen prefers {chosen[screen]} over the recipe's learning rate: {gap}"
    elif recipe_arm:
        print(f"the rule picks the recipe's own screen arm: {recipe_arm}")

# %% [markdown]
# ## Stage 2: equal compute
#
# Each arm had the same 45 minutes of one CPU thread. The curves are drawn against the snapshot number
# (snapshot k ends k/8 of the budget), so arms of different cost per step line up in CPU time.

# %%
for stage in dict.fromkeys((budget, "budget")):  # the stage shown, then the first study's (once when the same)
    if stage in study:
        display(Markdown(f"**{stage}** (queries: {study[stage]['protocol']['query']})\n\n" + plots.markdown_table(
            health.stage_rows(study[stage], chosen.get(stage)), floatfmt=".3f")))
if budget:
    arms = study[budget]["arms"]
    for metric, label in (("dead_relative", "dead middle channels (relative rule)"),
                          ("knn_agreement", "middle-block 10-NN agreement"), ("psnr 0.1", "held-out PSNR at σ = 0.1")):
        fig = plots.lines(list(range(len(next(iter(arms.values()))["rows"]))),
                          {a: [r.get(metric, float("nan")) for r in v["rows"]] for a, v in arms.items()},
                          "snapshot (0 = untrained, 8 = end of the budget)", label,
                          title=f"equal compute: {label}")

# %% [markdown]
# Health is not free. At the same patch size and compute, the recipes differ in denoising quality as well as in
# dead channels; the cell below states by how much (the old recipe's raw weights against the new one's EMA,
# held-out PSNR at the end of the budget).

# %%
if budget:
    arms = study[budget]["arms"]
    v1_name = next(a for a in arms if a.startswith("v1"))
    v1_size = health.run_size(arms[v1_name])
    for a, r in arms.items():
        if a == v1_name or health.run_size(r) != v1_size:
            continue
        new, old = r["rows"][-1], arms[v1_name]["rows"][-1]
        gaps = ", ".join(f"σ = {s}: {new[f'psnr {s}'] - old[f'psnr {s}']:+.2f} dB"
                         for s in ("0.05", "0.1", "0.2", "0.4") if f"psnr {s}" in new and f"psnr {s}" in old)
        display(Markdown(f"**{a}** against **{v1_name}** (both {v1_size}×{v1_size}, 45 CPU-minutes): held-out "
                         f"PSNR {gaps}; dead middle channels {new['dead_relative']} against {old['dead_relative']} "
                         f"of {new['channels']}; 10-NN {new['knn_agreement']:.3f} against {old['knn_agreement']:.3f}."))

# %% [markdown]
# ## The references trained with the chosen recipe
#
# The chosen recipe, trained for at least 4 CPU-hours and until held-out PSNR at σ = 0.1 improves by less
# than 0.05 dB per 1,000 steps (the stopping rule), gave the references that chapters 1-5 read (their READMEs
# in `checkpoints/` hold the commands). Where a reference stopped before the rule was met, the line above its
# table says so, with the slope at its end and at its full learning rate (the 1,000 steps before the decay;
# the rule read at the decayed rate alone can flatter a run, as smaller steps also flatten PSNR). The same
# measures as the arms', on each reference's own data and held-out images, at each snapshot kept along its
# training:

# %%
measured = study.get("budget", {}).get("references", {})  # measured on their test split, for the record
refs = {n: r for n, r in measured.items() if n not in checkpoints.recipe_twins()}  # twins: the authors' section
for name, r in refs.items():
    rows = [{"step": row["step"], "minutes (1 thread)": row.get("cpu_min", float("nan")),
             **health.snapshot_measures(row)} for row in r["rows"]]
    tc, px = r["config"], health.run_size(r)
    display(Markdown(f"**`{name}`** ({tc['preset']}, {tc['data']}, {px}×{px}){health.stopping_line(r)}\n\n"
                     + plots.markdown_table(rows, floatfmt=".3f")))
if not refs:
    print("no reference measured yet: scripts/health_study.py report --stage budget --runs checkpoints/<name> ...")

# %% [markdown]
# ## Does the choice change on a validation split?
#
# The same rule, on the same arms retrained without their validation band, read on that band's crops instead of
# the test crops:

# %%
for k in ("screen", "budget"):
    if f"{k}-val" in study and k in study:
        now, first = chosen[f"{k}-val"], chosen[k]
        display(Markdown(f"**{k}**: on validation crops the rule picks **{now}**; on test crops it picked **{first}**"
                         + (": the choice is unchanged." if now == first else ": **the choice changes**.")))
    else:
        print(f"{k}: {'not yet re-run on a validation split' if k in study else 'not measured'}")

# %% [markdown]
# ## The authors' recipe at equal budget
#
# Does a verdict depend on the recipe? Each reference has a twin trained with the authors' recipe instead of the
# one chosen above: their small random scale-norm gains, their loss weighting and noise range, and their
# learning-rate schedule (SPEC), with the reference's preset, data, crops, batch and steps, so that it sees the same
# number of images (`sdrlib.recipes`; each twin's `notes.md`). Once a twin's training is done, chapters 1-4 are
# executed on it into `checkpoints/NAME/chapters/` (`sdr book --chapters 01 02 03 04 -p references '["NAME"]'
# --output-dir checkpoints/NAME/chapters --no-build`; `scripts/recipe_twin.py NAME` measures its health, draws its
# sample sets and runs that command as the rule below says), and its verdicts stand beside its reference's, claim by
# claim, each with the number of trained networks its interval rests on. A twin that ends above the health bar
# (more than `dead_bar` of its middle channels dead) is read on its healthy fraction: chapter 3 with
# `-p live_only 0.01` keeps each network's channels live on its training images, where dead channels would otherwise
# be z-scored up to noise (`sdrlib.claims.distances.live_columns`, with planted tests); chapter 2's measures read
# live channels already; chapter 4 with the same `-p live_only 0.01` guides with each network's live channels only
# and gives the pixel-PCA control as many coefficients as the trained network has live channels, never more
# dimensions than the phi it faces (`sdrlib.sample_runs.guide_restriction`, with planted tests; its sample sets are
# drawn by `scripts/reconstruction_samples.py NAME --live-only 0.01`).

# %%
display(Markdown("\n".join(verdicts.recipe_comparison(Path("."), checkpoints.recipe_twins()))))

# %% [markdown]
# Which verdicts depend on the recipe on every data set where a twin's chapters are executed: a claim whose verdict
# differs between the reference and its twin on each of them. Both twins end far above the health bar (their dead
# channels are printed further down), so the comparison is between a healthy network and a sick one read on its
# live channels: it says what the authors' recipe at our budget does to each claim, not what it would do if
# it kept its channels alive.

# %%
changed = verdicts.recipe_changes(Path("."), checkpoints.recipe_twins())
on_all = sorted(set.intersection(*changed.values())) if changed else []
print(f"read on {len(changed)} of {len(checkpoints.recipe_twins())} twins; the verdict changes with the recipe on "
      f"every one for: {', '.join(on_all) or 'no claim'}; on some only for: "
      f"{', '.join(sorted(set().union(*changed.values()) - set(on_all))) or 'no claim'}")

# %% [markdown]
# How each twin's chapters are to be read, by the rule above (`sdrlib.health.claims_reading`, from its final
# health): the command that executes them, or what it still waits for.

# %%
for twin in checkpoints.recipe_twins():
    if twin in measured:  # its final health, as the rule reads it
        last = measured[twin]["rows"][-1]
        print(f"{twin}: step {last['step']:,}, {last['dead_relative']} of {last['channels']} middle channels dead, "
              f"10-NN {last['knn_agreement']:.3f}")
    try:
        live = health.claims_reading(twin, dead_bar)
    except ValueError as e:
        print(f"{twin}: not yet: {e}")
        continue
    how = "whole" if live == 0 else f"on its healthy fraction (live_only {live})"
    print(f"{twin}: read {how}: sdr book --chapters 01 02 03 04 -p references '[\"{twin}\"]'"
          + (f" -p live_only {live}" if live else "") + f" --output-dir checkpoints/{twin}/chapters --no-build")

# %% [markdown]
# ## What this page claims, checked
#
# The chosen recipe meets the health bar (at most `dead_bar` of the middle channels dead by the relative
# rule) at the end of each stage, and the old recipe does not; the chosen recipe's middle block separates
# held-out crops better (10-NN) than the old one's; and every reference trained with it meets the bar at the
# end of its training.

# %%
for stage, arm in chosen.items():
    if stage not in study or arm not in study[stage]["arms"]:
        continue
    arms = study[stage]["arms"]
    new = arms[arm]["rows"][-1]
    old_name = next(a for a in arms if a.startswith("v1"))
    old = arms[old_name]["rows"][-1]
    print(f"{stage}: {arm}: {new['dead_relative']} of {new['channels']} dead, 10-NN {new['knn_agreement']:.3f}; "
          f"{old_name}: {old['dead_relative']} dead, 10-NN {old['knn_agreement']:.3f}")
    assert new["dead_relative"] <= dead_bar * new["channels"], f"{stage}: the chosen arm fails the health bar"
    assert old["dead_relative"] > dead_bar * old["channels"], f"{stage}: the old recipe meets the bar after all"
    same = [{k: arms[a]["config"].get(k) for k in ("data", "size", "crop")} for a in (arm, old_name)]
    if "knn_per_query" in new and "knn_per_query" in old and same[0] == same[1]:
        # the same held-out crops (same data set, size and seed): a paired bootstrap over queries
        diff = stats.paired_diff_ci(torch.tensor(new["knn_per_query"]), torch.tensor(old["knn_per_query"]))
        print(f"  10-NN, chosen - old, paired over the same queries: {diff.fmt('+.3f')}")
        assert diff.lo > 0, f"{stage}: the chosen arm's 10-NN is not better than the old recipe's (interval {diff})"
    elif "knn_per_query" in new and "knn_per_query" in old:
        # different crops (another patch size): the two intervals must not overlap
        a, b = (stats.mean_ci(torch.tensor(r["knn_per_query"])) for r in (new, old))
        print(f"  10-NN, chosen {a} against old {b} (different crops: unpaired)")
        assert a.lo > b.hi, f"{stage}: the chosen arm's 10-NN interval overlaps the old recipe's"
    else:
        assert new["knn_agreement"] > old["knn_agreement"], f"{stage}: the chosen arm's 10-NN is not better"
for name, r in refs.items():
    last = r["rows"][-1]
    print(f"reference {name}: step {last['step']}, {last['dead_relative']} of {last['channels']} dead, "
          f"10-NN {last['knn_agreement']:.3f}")
    assert last["dead_relative"] <= dead_bar * last["channels"], f"reference {name} fails the health bar"
