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
# # Distances mean something?
#
# The paper's second finding: two images whose $\phi$ vectors are close in Euclidean distance tend to
# have the same semantic content, so that nearest neighbours, clustering and a linear read-out in
# $\phi$ space recover class labels. We test it the way one tests any representation, by scores
# against labels, and against baselines that cost nothing:
#
# - **pixels**: the image itself as a vector;
# - **colour stats**: the mean and standard deviation of each colour channel (2 or 6 numbers);
# - **untrained phi**: the same spatial means from an untrained network of the same architecture;
# - **the other blocks**: spatial means of the encoder and decoder blocks of the trained network.
#
# The scores (labels: the class for Fashion-MNIST, the source photograph for textures):
#
# - **k-NN agreement**: for each held-out image, the fraction of its `k` nearest training images that
#   share its label (precision at `k`); **k-NN accuracy** is the majority vote;
# - **NMI / ARI / purity** of k-means++ (10 restarts, as many clusters as labels) on the held-out images;
# - **probe**: held-out accuracy of one linear layer trained on the training images' features.
#
# Features are standardised (each dimension z-scored with training statistics) before distances are
# taken, so that a few high-variance channels cannot decide every distance; the raw distances are
# reported too. A network with many dead channels would have their tiny variations z-scored up to the size of
# the live ones; such a run is read on its **healthy fraction** (`live_only`): every network, trained and untrained,
# keeps only the channels live on its training images, so that the choice never reads the queries. The references
# are healthy and read whole.

# %% tags=["parameters"]
profile = "cpu"                  # "cpu", "colab" or "paper": the scale these values were chosen for
references = []                  # checkpoints to analyse; empty: those of checkpoints/references.yaml
n_train = 3000                   # training images: the k-NN base and the probe's training set
n_test = 1000                    # held-out queries
sigma = 0.196                    # noise level of phi: the paper's 50/255
n_noise = 20                     # noise draws averaged per image (the paper: 20)
k = 10
control_seeds = [0, 1, 2]        # untrained control networks of claim 4 (0: the features' own untrained twin)
texture_stats = True             # textures: add the Portilla-Simoncelli statistics as a baseline
cluster_multiples = [1, 2, 10]   # k-means with this many times as many clusters as labels
cluster_keys = ["phi mid", "untrained phi mid", "pixels", "colour stats", "texture stats", "phi dec3", "phi enc3"]
kmeans_restarts = 10             # the authors: k-means++ with 10 restarts
probe_keys = ["phi mid", "untrained phi mid", "pixels", "colour stats", "texture stats", "phi dec3", "phi enc3"]
probe_epochs = 300               # our probe (standardised features, Adam 1e-2)
probe_max_epochs = 3000          # the authors' probe (raw phi, Adam 1e-3) runs until its loss stops improving
grid_sigmas = [0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.13, 0.16, 0.2,
               0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
grid_classes = 30                # the noise-level grid of chapter 2 (cached beside each reference)
grid_per_class = 10
grid_noise = 20
n_noise_sweep = 4                # noise draws for the training-length sweep
n_query = 4                      # queries in the neighbour figures
n_boot = 1000                    # bootstrap resamples of per-query scores
n_boot_slow = 200                # ... of clustering scores
live_only = 0.0                  # > 0: read every network on its healthy fraction, the channels live on the
                                 # training images (dead: maximum < live_only x the largest); for an unhealthy run
cache = "reference"              # "reference": features cached beside each checkpoint (committed); "user": ~/.cache
device = "auto"                  # "auto": a GPU when there is one; "cpu", "cuda", ...
seed = 0

# %% tags=["remove-cell"]
# `papermill -p NAME VALUE` passes text: give each parameter the type of its default
# above (a ValueError names a value that does not fit).
from sdrlib.book import chapter_defaults, coerce

coerce(globals(), chapter_defaults("03"))

# %%
import torch
from IPython.display import Markdown, display

from sdrlib import analysis, checkpoints, feature_cache, plots, representation, verdicts
from sdrlib.claims import distances as distance_claims
from sdrlib.utils import pick_device

dev = pick_device(device)
study = distance_claims.Study(n_train, n_test, sigma, n_noise, k, seed, cache, dev, live_only)  # every network alike
sweep = distance_claims.Study(n_train, n_test, sigma, n_noise_sweep, k, seed, cache, dev, live_only)  # along training
names = references or checkpoints.reference_names(profile)
refs = {name: checkpoints.load(name, device=dev) for name in names}
train_f, train_i, test_f, test_i = {}, {}, {}, {}
for name, ck in refs.items():
    texture = ck.config["train"]["data"] == "textures" and texture_stats
    train_f[name], train_i[name] = feature_cache.checkpoint_features(
        ck, "train", n_train, sigma, n_noise, seed=seed, cache_in=cache, texture=texture)
    test_f[name], test_i[name] = feature_cache.checkpoint_features(
        ck, "test", n_test, sigma, n_noise, seed=seed + 1, cache_in=cache, texture=texture)
    if live_only > 0:  # the healthy fraction: each network's phi on the channels live on its training images
        n_all = train_f[name]["phi mid"].shape[1]
        train_f[name], test_f[name] = distance_claims.live_features(train_f[name], test_f[name], live_only)
        print(f"{name}: read on its healthy fraction, {train_f[name]['phi mid'].shape[1]} of {n_all} middle "
              f"channels live on the training images (rule: maximum below {live_only} of the largest is dead)")
    print(f"{name}: {len(train_i[name])} training and {len(test_i[name])} held-out images of "
          f"{ck.config['train']['data']}, {len(train_i[name].classes)} labels, phi at sigma {sigma} ({n_noise} draws)")

# %% [markdown]
# ## Nearest neighbours, seen
#
# For a few held-out images: their 8 nearest training images in the trained middle block's $\phi$
# (standardised), and in pixel space.

# %%
for name in refs:
    tr, te = train_f[name], test_f[name]
    q = torch.arange(n_query) * (len(test_i[name]) // n_query)
    idx = {}
    for key, label in (("phi mid", "φ mid"), ("pixels", "pixels")):
        a, b = analysis.standardize(tr[key].double(), te[key].double())
        idx[label] = analysis.neighbours(a, b[q], 8)
    fig = plots.neighbour_rows(test_i[name].images[q], train_i[name].images, idx,
                               suptitle=f"{name}: held-out query (left) and its 8 nearest training images")

# %% [markdown]
# ## Nearest neighbours, scored, with intervals
#
# For every representation: the `k`-NN label agreement of each held-out query against the training images
# (standardised features), and its mean with a bootstrap interval over queries. Differences between
# representations are *paired*: both are scored on the same queries, and the interval resamples queries
# jointly, so it is much narrower than the two separate intervals suggest.

# %%
knn, knn_rows = {}, {}
scores = {}   # scores[name][metric][representation]: an Interval, for the block comparison
for name in refs:
    knn[name] = analysis.knn_by_representation(train_f[name], train_i[name].labels, test_f[name],
                                               test_i[name].labels, k)
    scores[name] = analysis.knn_intervals(knn[name], k, n_boot, seed)
    knn_rows[name] = [{"representation": key, "dim": train_f[name][key].shape[1],
                       **{metric: str(by_key[key]) for metric, by_key in scores[name].items()}} for key in knn[name]]
    display(Markdown(f"**{name}**, {len(test_i[name].classes)} labels, chance {1 / len(test_i[name].classes):.3f}\n\n"
                     + plots.markdown_table(knn_rows[name])))

# %% [markdown]
# **The middle block against its controls and against the other blocks**, paired over queries
# (`k`-NN agreement, trained middle block minus each alternative):

# %%
pair_rows = []
for name in refs:
    diffs = analysis.paired_differences(knn[name], "phi mid", "agreement", n_boot, seed)
    pair_rows += [{"reference": name, "φ mid minus": key, "difference [95 % CI]": str(d),
                   "middle block": analysis.side_of_zero(d)} for key, d in diffs.items()]
display(Markdown(plots.markdown_table(pair_rows)))

# %% [markdown]
# ## Clusters
#
# k-means++ (`kmeans_restarts` restarts) on the held-out images, at several cluster counts: as many
# clusters as labels, twice and ten times as many (the authors clustered ImageNet into many more clusters
# than classes), capped at half the number of images. NMI, ARI and purity against the labels. The
# interval comes from random halves of the images with the clustering held fixed (a bootstrap would
# count duplicated images as agreeing pairs): it is the uncertainty of the score, not of the k-means run.
# Purity rises with the number of clusters by construction, so compare representations at the same count.

# %%
clu_rows = {}
for name in refs:
    clu_rows[name], clu_scores = analysis.cluster_table(test_f[name], test_i[name].labels, cluster_keys,
                                                        cluster_multiples, kmeans_restarts, n_boot_slow, seed)
    scores[name].update(clu_scores)
    display(Markdown(f"**{name}**\n\n" + plots.markdown_table(clu_rows[name])))

# %% [markdown]
# ## Linear probes: ours and the authors'
#
# One linear layer trained on the training images' features, scored on the held-out ones. **Ours**:
# standardised features, Adam at 1e-2, `probe_epochs` epochs, on every representation. **The authors'**,
# on the $\phi$ representations: raw $\phi$ at $\sigma = 50/255$, Adam at 1e-3, no weight decay, trained
# until the loss stops improving (at most `probe_max_epochs` epochs). Intervals resample the held-out images.

# %%
probe_rows = []
for name in refs:
    rows, probe_scores = analysis.probe_table(train_f[name], train_i[name].labels, test_f[name], test_i[name].labels,
                                              probe_keys, probe_epochs, probe_max_epochs, n_boot, seed)
    scores[name].update(probe_scores)
    probe_rows += [{"reference": name, **row} for row in rows]
display(Markdown(plots.markdown_table(probe_rows)))

# %% [markdown]
# ## Class by class
#
# Where does the middle block help? `k`-NN accuracy per class (majority vote of the `k` neighbours) for the
# middle block and for pixels; for textures, the 15 photographs on which the two differ most.

# %%
for name in refs:
    rows = analysis.class_differences(knn[name]["phi mid"]["correct"], knn[name]["pixels"]["correct"],
                                      test_i[name].labels, test_i[name].classes, ("φ mid", "pixels"), top=15)
    display(Markdown(f"**{name}**\n\n" + plots.markdown_table(rows, floatfmt=".2f")))

# %% [markdown]
# ## Photographs the denoiser never saw
#
# The texture reference was trained with every fifth photograph held out entirely (its config lists
# them). On those photographs alone, a good score cannot come from having memorised them: it must come
# from what the representation does with new images.

# %%
for name, ck in refs.items():
    held = ck.config.get("held_out_classes") or []
    if not held:
        continue
    classes = train_i[name].classes
    keep = torch.tensor([classes.index(c) for c in held])
    unseen_train, unseen_train_labels = analysis.restrict(train_f[name], train_i[name].labels, keep)
    unseen_test, unseen_test_labels = analysis.restrict(test_f[name], test_i[name].labels, keep)
    per = analysis.knn_by_representation(unseen_train, unseen_train_labels, unseen_test, unseen_test_labels,
                                         min(k, 5),
                                         ["phi mid", "untrained phi mid", "pixels", "colour stats", "texture stats"])
    metric = f"{min(k, 5)}-NN agreement"
    held_scores = analysis.mean_intervals(per, {metric: "agreement"}, n_boot, seed)
    rows = [{"representation": key, metric: str(iv)} for key, iv in held_scores[metric].items()]
    display(Markdown(f"**{name}**: {len(held)} unseen photographs, {len(unseen_train_labels)} training and "
                     f"{len(unseen_test_labels)} held-out patches\n\n" + plots.markdown_table(rows)))

# %% [markdown]
# ## How it depends on the noise level, and on training
#
# `k`-NN agreement of the middle block's $\phi_\sigma$ on the 20-level grid of chapter 2 (20 draws),
# leave-one-out among the grid's images (up to `grid_classes` classes, `grid_per_class` images each), for the
# trained and the untrained network; then along training, on the main image sets.

# %%
for name, ck in refs.items():
    g, gims = feature_cache.checkpoint_grid(ck, grid_sigmas, "test", grid_classes, grid_per_class,
                                             grid_noise, seed, cache_in=cache)
    k_grid = min(k, grid_per_class - 1)
    curves = {"trained φ mid": analysis.knn_versus_sigma(g["phi mid"], gims.labels, k_grid),
              "untrained φ mid": analysis.knn_versus_sigma(g["untrained phi mid"], gims.labels, k_grid)}
    pix = analysis.knn_scores(analysis.standardize(representation.pixels(gims.images).double())[0], gims.labels,
                              k_grid)["agreement"]
    curves["pixels"] = [pix] * len(grid_sigmas)
    fig = plots.lines(grid_sigmas, curves, "σ", f"{k_grid}-NN agreement (leave-one-out)",
                      title=f"{name}: versus noise level ({len(gims)} images)")
    agreement = scores[name][f"{k}-NN agreement"]
    along = distance_claims.training_curve(checkpoints.training_snapshots(ck.path)[:-1],
                                           (train_i[name].labels, test_i[name].labels), sweep)
    steps = [(0, agreement["untrained phi mid"].value), *along, (ck.config["step"], agreement["phi mid"].value)]
    fig = plots.lines([s for s, _ in steps], {"φ mid": [v for _, v in steps],
                                              "pixels": [agreement["pixels"].value] * len(steps)},
                      "training step", f"{k}-NN agreement", title=f"{name}: along training (step 0 = untrained)")

# %% [markdown]
# ## A map of $\phi$
#
# Two-dimensional pictures of the held-out images' middle-block $\phi$ (standardised): PCA, and t-SNE.
# For textures, colours are the material of the photograph (grass, rock, wood, ...), a coarser label
# than the photograph itself.

# %%
for name in refs:
    ims = test_i[name]
    labels, lnames = ims.labels, ims.classes
    if ims.groups is not None and len(ims.classes) > 20:
        labels, lnames = ims.groups, ims.group_names
    for method in ("pca", "tsne"):
        xy = analysis.embed_2d(test_f[name]["phi mid"], method, seed=seed)
        fig = plots.scatter_2d(xy, labels, lnames, title=f"{name}: φ mid, {method.upper()}")

# %% [markdown]
# ## Across training seeds
#
# Where `checkpoints/references.yaml` lists more training seeds of a reference's recipe (a reduced budget,
# stated in their READMEs): the middle block's `k`-NN agreement for each, and its margin over the better of
# pixels and the untrained middle block, with the mean and standard deviation across seeds. The reference's
# own values head the rows, outside the spread (it trained for longer).

# %%
seed_rows = []
for name in refs:
    runs = checkpoints.seeds_of(name)
    if not runs:
        continue
    # the reference first, for comparison (not in the spread: a larger budget), then its seeds
    got = distance_claims.seed_margins({f"{name}, the reference": refs[name], **{run: run for run in runs}}, study)
    seed_rows += [{"reference": name, "run": f"{r['run']} ({r['steps']:,} steps)", "φ mid": r["phi mid"],
                   "margin over the better control": r["margin"]} for r in got]
    mid_sd = distance_claims.spread([r["phi mid"] for r in got[1:]])
    margin_sd = distance_claims.spread([r["margin"] for r in got[1:]])
    seed_rows.append({"reference": name, "run": f"mean ± sd over {len(got) - 1} seeds",
                      "φ mid": f"{mid_sd[0]:.3f} ± {mid_sd[1]:.3f}",
                      "margin over the better control": f"{margin_sd[0]:.3f} ± {margin_sd[1]:.3f}"})
if seed_rows:
    display(Markdown(plots.markdown_table(seed_rows, floatfmt=".3f")))
else:
    print("no reference lists extra training seeds in checkpoints/references.yaml")

# %% [markdown]
# ## Does another block do better?
#
# The verdict below on the paper's choice of block rests on `k`-NN agreement alone. Every other score of
# this chapter, read the same way and reported beside it: the middle block against the best other block of the
# same trained network, metric by metric (`sdrlib.claims.distances.other_metrics_table`). These intervals are not
# paired (the verdict's own interval, below, is), so "apart" means the two intervals do not overlap.

# %%
block_rows = {}
for name in refs:
    block_rows[name] = distance_claims.other_metrics_table(scores[name])
    display(Markdown(f"**{name}**: {distance_claims.other_metrics_summary(block_rows[name])}\n\n"
                     + plots.markdown_table(block_rows[name])))

# %% [markdown]
# ## What this chapter claims, checked
#
# **Claim 4**: the middle block's distances are semantic. Stated before measuring (`sdrlib.claims.catalogue`):
# its `k`-NN agreement must beat the **best of every cheap control** this chapter measures (raw pixels, colour
# statistics, texture statistics where computed, and untrained networks of the same architecture, one per
# seed in `control_seeds`) by at least 0.02, paired over queries; the best control is chosen anew in every
# resample, and the interval resamples the trained networks, the untrained networks, then the queries. **Claim
# 4', the paper's choice of block**, stated the same way before measuring: the middle block's `k`-NN agreement must
# beat that of the **best other block of the same network** by at least 0.02, paired over queries; the best other
# block is chosen anew in every resample (no block is picked by its mean first and then tested), and the interval
# resamples the trained networks (the reference and its full-budget seeds, every block of each; the table's
# *networks* column counts them), then the queries. The other scores of the section above are reported, not
# tested. Verdicts are collected on the {doc}`verdicts` page.

# %%
res4, res4b, verdict_rows = {}, {}, []
for name, ck in refs.items():
    expect = checkpoints.references().get(name, {}).get("expect", {})
    labels = (train_i[name].labels, test_i[name].labels)
    controls = {key: [knn[name][key]["agreement"]] for key in ("pixels", "colour stats", "texture stats")
                if key in knn[name]}
    controls["untrained phi mid"] = distance_claims.untrained_agreements(
        ck, control_seeds, labels, study, seed0=(train_f[name]["untrained phi mid"], test_f[name]["untrained phi mid"]))
    runs = {run: run for run in checkpoints.trained_networks(name)[1:]}
    trained = [knn[name]["phi mid"]["agreement"], *distance_claims.run_agreements(runs, labels, study)]
    res4[name] = distance_claims.distances_claim(trained, controls, n_boot, seed)
    display(Markdown(f"**{name}**: claim 4's controls\n\n" + plots.markdown_table(res4[name].measures)))
    verdict_rows.append(verdicts.record_result(res4[name], name, expected=expect.get("distances")))
    blocks = {key: [knn[name][key]["agreement"]] for key in knn[name] if key.startswith("phi ") and key != "phi mid"}
    middle = trained[:1]
    for run_blocks in distance_claims.block_agreements(runs, labels, study):  # each seed brings all its blocks
        middle.append(run_blocks.pop("phi mid"))
        for key in blocks:
            blocks[key].append(run_blocks[key])
    res4b[name] = distance_claims.middle_block_claim(middle, blocks, n_boot, seed)
    display(Markdown(f"**{name}**: claim 4', the middle block against the other blocks of the same network\n\n"
                     + plots.markdown_table(res4b[name].measures)))
    verdict_rows.append(verdicts.record_result(res4b[name], name, expected=expect.get("middle-block")))
display(Markdown(plots.markdown_table(verdict_rows)))
