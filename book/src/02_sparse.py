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
# # Sparse channels
#
# The paper's first finding is about the middle block of the denoiser. Average each of its channels
# over space and you get a vector $\phi(x)$, one number per channel. The paper reports that, for any
# one image, only a small subset of these numbers is large (**sparsity**); that some channels respond to
# few images and seem tied to specific content while others respond to nearly all images and carry global
# properties such as colour or contrast (**selectivity**: two populations of channels); and that similar
# images switch on similar sets of channels, so that images live in a union of coordinate subspaces
# (**union of subspaces**).
#
# Each statement has a version that any network, or the way the test is built, would pass. A ReLU network's
# channels are often silent; dividing every channel by its own maximum makes any channel that varies look
# "sparse"; a threshold count turns nearly constant channels into all-on or all-off; and images of one class
# share pixel statistics whatever the network. So the tests below read $\phi$ **as the network gives it**
# (no per-channel scaling in a verdict), use **no threshold for selectivity**, and set every number beside
# the same number for **untrained networks of the same architecture** (`control_seeds`: several
# initialisations, so that the intervals include the spread between control networks).
#
# Every verdict is computed by one library function (`sdrlib.claims.sparse`) whose known-answer tests show it
# passing on a planted code that is sparse per image, with two populations of channels and class-specific
# supports, and failing on the same code made dense by a random rotation (same distances, same class
# information). Its parts, and the smallest effect that counts for each, are stated in `sdrlib.claims.catalogue`
# before anything is measured.
#
# **Active, in the paper's sense.** Channel $c$ is *active* for image $i$ when $\phi_c(x_i)$ exceeds a tenth of
# the image's own largest channel. A channel whose largest value over the images is below `rel_dead` of the
# largest channel's is *dead* and left out. $\phi$ is computed at noise level $\sigma$ (`sigma`), averaging the
# middle block's spatial mean over `n_noise` draws of the noise, as the paper does
# ({cite}`kadkhodaie2025sparse`; their linear probe uses $\sigma = 50/255 \approx 0.2$).

# %% tags=["parameters"]
profile = "cpu"                  # "cpu", "colab" or "paper": the scale these values were chosen for
references = []                  # checkpoints to analyse; empty: those of checkpoints/references.yaml
n_images = 1000                  # held-out images analysed per reference
sigma = 0.196                    # noise level of phi: the paper's 50/255
n_noise = 20                     # noise draws averaged per image (the paper: 20)
control_seeds = [0, 1, 2]        # untrained control networks (initialisation seeds)
tau = 0.1                        # the per-channel-scaled rule, reported beside: phi > tau * channel maximum
rel_dead = 0.01                  # dead: channel maximum < rel_dead * (largest channel maximum)
n_top = 8                        # top-activating images shown per selective channel
grid_sigmas = [0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.13, 0.16, 0.2,
               0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
grid_classes = 30                # the noise-level grid: up to this many classes ...
grid_per_class = 10              # ... with this many held-out images each
grid_noise = 20                  # noise draws per image on the grid
n_noise_sweep = 4                # noise draws for the training-length sweep
n_boot = 1000                    # bootstrap resamples of per-image scores
n_boot_slow = 1000               # ... of statistics recomputed per resample (dip, Jaccard contrast)
cache = "reference"              # "reference": features cached beside each checkpoint (committed); "user": ~/.cache
device = "auto"                  # "auto": a GPU when there is one; "cpu", "cuda", ...
seed = 0

# %% tags=["remove-cell"]
# `papermill -p NAME VALUE` passes text: give each parameter the type of its default
# above (a ValueError names a value that does not fit).
from sdrlib.book import chapter_defaults, coerce

coerce(globals(), chapter_defaults("02"))

# %%
import torch
from IPython.display import Markdown, display

from sdrlib import checkpoints, feature_cache, plots, sparsity, verdicts
from sdrlib.claims import catalogue
from sdrlib.claims import sparse as claims
from sdrlib.utils import pick_device

dev = pick_device(device)
names = references or checkpoints.reference_names(profile)
refs = {name: checkpoints.load(name, device=dev) for name in names}
feats, images, trained, controls = {}, {}, {}, {}
for name, ck in refs.items():
    feats[name], images[name] = feature_cache.checkpoint_features(
        ck, "test", n_images, sigma, n_noise, seed=seed, cache_in=cache)
    runs = {run: run for run in checkpoints.trained_networks(name)[1:]}
    trained[name] = [feats[name]["phi mid"], *feature_cache.runs_phi(
        runs, "test", n_images, sigma, n_noise, seed=seed, cache_in=cache, device=dev).values()]
    controls[name] = feature_cache.control_phi(ck, control_seeds, "test", n_images, sigma, n_noise, seed=seed,
                                                cache_in=cache)
    print(f"{name}: step {ck.config['step']}, data {ck.config['train']['data']}, {len(images[name])} held-out "
          f"images, phi of {feats[name]['phi mid'].shape[1]} middle channels at sigma {sigma} ({n_noise} draws); "
          f"{len(trained[name])} trained network(s), {len(controls[name])} untrained controls")

# %% [markdown]
# ## What $\phi$ looks like
#
# Three held-out images of different classes, and their $\phi$ from the trained middle block and from the
# first untrained control, as the networks give them (no scaling). Channels are ordered by their mean over
# the analysed images (largest first), the same order in every panel.

# %%
for name in refs:
    p, u, ims = feats[name]["phi mid"], controls[name][0], images[name]
    order = p.mean(0).argsort(descending=True)
    picks = [int((ims.labels == c).nonzero()[0]) for c in ims.labels.unique()[:3]]
    bars = {f"{kind}, image {i} ({ims.classes[int(ims.labels[i])]})": v[i]
            for i in picks for kind, v in (("trained", p), ("untrained", u))}
    fig = plots.image_grid(ims.images[picks], len(picks),
                           titles=[plots.short_label(ims.classes[int(ims.labels[i])], 18) for i in picks])
    fig = plots.phi_bars(bars, order=order, title=f"{name}: phi of the middle block at sigma = {sigma:.3f}")

# %% [markdown]
# ## Dead channels
#
# A channel counts as *dead* when its largest value over the analysed images is below `rel_dead` (1 %) of
# the largest channel's: it carries no real mass, whether or not it is exactly zero. Every measure below
# reads the live channels only. The table counts dead channels by this rule and exact zeros, per block.

# %%
for name in refs:
    display(Markdown(f"**{name}**\n\n" + plots.markdown_table(claims.dead_table(feats[name], rel_dead))))

# %% [markdown]
# ## Claim 1: is only a small subset of channels active per image?
#
# Stated before measuring (`sdrlib.claims.catalogue`), two parts, both of which must hold:
#
# - **few**: on average, at most a quarter of the live channels exceed a tenth of the image's own largest
#   channel (the effect is that bar minus the measured share, so it is positive when the share is smaller);
# - **sparser**: the raw Hoyer sparsity $(\sqrt{C} - \|x\|_1 / \|x\|_2) / (\sqrt{C} - 1)$ of each image's
#   $\phi$ (1 when one channel carries everything, 0 when all are equal) is higher than the untrained
#   networks', by at least 0.05.
#
# Beside them, the same shares and Hoyer sparsity computed after dividing every channel by its maximum over
# the images (the scaling the book used to decide this claim; it measures how much channels vary across
# images, not how many fire per image), and the raw participation ratio $(\sum_c x_c)^2 / (C \sum_c x_c^2)$,
# the effective share of channels in use. Intervals resample the trained networks, the control networks, then
# the images.

# %%
res1 = {}
for name in refs:
    res1[name] = claims.sparsity_claim(trained[name], controls[name], rel_dead, tau, n_boot, seed)
    display(Markdown(f"**{name}**\n\n" + plots.markdown_table(res1[name].measures) + "\n\n"
                     + plots.markdown_table(res1[name].rows())))
    p, u = feats[name]["phi mid"], controls[name][0]
    shares = {"trained": sparsity.own_max_fraction(p), "untrained (seed 0)": sparsity.own_max_fraction(u)}
    fig = plots.histograms(shares, "share of live channels above a tenth of the image's largest", range_=(0, 1),
                           title=f"{name}: how many channels each image switches on")

# %% [markdown]
# ## The threshold, swept
#
# The bar of a tenth is a choice. Below, the median share of live channels active per image as the threshold
# goes from 0 to 0.9 of the image's own largest channel, trained and untrained. A network that is sparser at
# every threshold is sparser without qualification; curves that cross mean the answer depends on it.

# %%
taus = [i / 20 for i in range(19)]
for name in refs:
    curves = {"trained": sparsity.own_max_sweep(feats[name]["phi mid"], taus).tolist(),
              "untrained (seed 0)": sparsity.own_max_sweep(controls[name][0], taus).tolist()}
    fig = plots.lines(taus, curves, "threshold (fraction of the image's largest channel)",
                      "median active share", title=f"{name}: active share versus threshold")

# %% [markdown]
# ## Claim 2: do channels split into two populations?
#
# No threshold: each live channel's **coefficient of variation** across the images (standard deviation over
# mean) is high for a channel that fires on few images and low for one that is on for all of them. Two
# populations of channels make the distribution of $\log_{10}$ CV bimodal. Stated before measuring, two parts:
#
# - **two populations**: Hartigan's dip statistic of the trained channels' $\log_{10}$ CV exceeds its 5 %
#   critical value for that many channels (the uniform law, the least favourable unimodal one);
# - **learned**: that dip is larger than the untrained networks' by at least 0.01 (each channel's CV is
#   computed the same way for them: no global threshold to match).

# %%
res2 = {}
for name in refs:
    res2[name] = claims.selectivity_claim(trained[name], controls[name], rel_dead, n_boot_slow, seed)
    display(Markdown(f"**{name}**\n\n" + plots.markdown_table(res2[name].measures, floatfmt=".4f") + "\n\n"
                     + plots.markdown_table(res2[name].rows())))
    p, u = feats[name]["phi mid"], controls[name][0]
    fig = plots.histograms({"trained": sparsity.log_cv(p), "untrained (seed 0)": sparsity.log_cv(u)},
                           "log10 coefficient of variation of a channel across images",
                           title=f"{name}: one population of channels or two?")

# %% [markdown]
# Beside the test, what the paper means by *selective*: a channel tied to specific content. For the quarter of
# live channels with the highest coefficient of variation and the quarter with the lowest, the label purity of
# each channel's `n_top` top-activating images (the share of their pairs that have one label), against the
# chance that two random images share a label; for the trained network and each untrained one.

# %%
for name in refs:
    phis = {"trained": feats[name]["phi mid"], **{f"untrained, seed {s}": c
                                                 for s, c in zip(control_seeds, controls[name])}}
    display(Markdown(f"**{name}**\n\n" + plots.markdown_table(
        claims.purity_table(phis, images[name].labels, n_top, rel=rel_dead), floatfmt=".3f")))

# %% [markdown]
# ## What a selective channel likes
#
# Left: the middle block's activation maps (clean input) for the six channels with the largest $\phi$ on
# one image. Then, for the three channels with the highest coefficient of variation among those that carry
# real mass (their maximum reaches 10 % of the largest channel's), the images on which they respond most. If a
# channel is tied to content, its top images share it.

# %%
for name, ck in refs.items():
    p, ims = feats[name]["phi mid"], images[name]
    top = p[0].topk(6).indices
    with torch.no_grad():
        maps = ck.model.encode(ims.images[:1].to(dev))[0, top].cpu()
    fig = plots.activation_maps(ims.images[0], maps, [f"ch {c} φ={p[0, c]:.2f}" for c in top.tolist()],
                                suptitle=f"{name}: image 0 ({ims.classes[int(ims.labels[0])]}), top channels")
    cmax = p.max(0).values
    for c in sparsity.most_variable(p, 3).tolist():
        idx = sparsity.top_images(p, c, n_top)
        titles = [plots.short_label(ims.classes[int(ims.labels[j])]) for j in idx.tolist()]
        fig = plots.image_grid(ims.images[idx], n_top, titles=titles,
                               suptitle=f"{name}: channel {c}, CV {p[:, c].std() / p[:, c].mean():.2f}, maximum "
                                        f"{cmax[c] / cmax.max():.0%} of the largest channel's")

# %% [markdown]
# ## Claim 3: do similar images share active channels?
#
# For every pair of images, the Jaccard index of their active sets (channels above a tenth of the image's own
# largest: shared active channels over channels active in either). If images of one class switch on the same
# channels, pairs within a class overlap more than pairs across classes. The measure is the difference of the
# two means: a dense code, whose active sets are all its channels, scores 0 however much class information its
# values carry; so does a network whose supports ignore the class. Stated before measuring: trained minus
# control at least 0.05. For textures a class is one source photograph.

# %%
res3 = {}
for name in refs:
    res3[name] = claims.subspaces_claim(trained[name], controls[name], images[name].labels, rel_dead, n_boot_slow,
                                        seed)
    display(Markdown(f"**{name}**\n\n" + plots.markdown_table(res3[name].measures, floatfmt=".3f") + "\n\n"
                     + plots.markdown_table(res3[name].rows())))

# %% [markdown]
# ## Block by block
#
# The raw measures of claim 1 for every block of the network, trained and untrained (the untrained twin is
# control seed 0): where in the network does per-image sparsity appear?

# %%
for name, ck in refs.items():
    display(Markdown(f"**{name}**\n\n" + plots.markdown_table(
        claims.block_table(feats[name], ck.model.block_names, rel_dead, n_boot, seed))))

# %% [markdown]
# ## How it depends on the noise level
#
# $\phi_\sigma$ is defined at every noise level. The paper computes it on a grid of 20 levels with 20 noise
# draws; so does this section, on `grid_per_class` held-out images of each of up to `grid_classes`
# classes: the point values behind claims 1-3 (own-max active share, raw Hoyer, dip of $\log_{10}$ CV, the
# within − across Jaccard contrast) and the dead channels, for the trained network and its untrained twin.

# %%
grid = {}
for name, ck in refs.items():
    g, gims = feature_cache.checkpoint_grid(ck, grid_sigmas, "test", grid_classes, grid_per_class,
                                             grid_noise, seed, cache_in=cache)
    grid[name] = rows = claims.sigma_table(g, grid_sigmas, gims.labels, rel_dead)
    display(Markdown(f"**{name}**\n\n" + plots.markdown_table(rows, floatfmt=".3f")))
    for m in ("own-max active share", "raw Hoyer", "dip of log CV", "support contrast"):
        fig = plots.lines(grid_sigmas, {k: [r[f"{m}, {k}"] for r in rows] for k in ("trained", "untrained")}, "σ", m,
                          title=f"{name}: {m} versus noise level ({len(gims)} images, {grid_noise} draws)")

# %% [markdown]
# ## How it emerges during training
#
# Each reference run kept intermediate checkpoints. The same point values at $\sigma$ = `sigma` on the same
# images, with `n_noise_sweep` noise draws per image; step 0 is the untrained network (control seed 0,
# `n_noise` draws).

# %%
along = {}
for name, ck in refs.items():
    snaps = dict(checkpoints.training_snapshots(ck.path))
    phis = {0: controls[name][0], **feature_cache.runs_phi(
        snaps, "test", n_images, sigma, n_noise_sweep, seed=seed, cache_in=cache, device=dev)}
    along[name] = rows = claims.network_table(phis, images[name].labels, rel_dead)
    display(Markdown(f"**{name}** along training (network: step)\n\n" + plots.markdown_table(rows, floatfmt=".3f")))
    fig = plots.lines(list(phis), {m: [r[m] for r in rows] for m in
                                   ("own-max active share", "raw Hoyer", "support contrast")},
                      "training step", "value", title=f"{name}: middle block along training")

# %% [markdown]
# ## Across training seeds at a reduced budget
#
# Where `checkpoints/references.yaml` lists extra training seeds of a reference's recipe trained for a
# **reduced budget** (`seeds:`, stated in their READMEs), the same point values for each of them, beside the
# reference's own: how much of a number is the luck of one short run. They do not enter the verdicts, which
# rest on the reference and its full-budget seeds (`full_seeds:`) only.

# %%
seed_rows = []
for name in refs:
    runs = {name: refs[name], **{run: run for run in checkpoints.seeds_of(name)}}
    if len(runs) > 1:
        phis = feature_cache.runs_phi(runs, "test", n_images, sigma, n_noise, seed=seed, cache_in=cache, device=dev,
                                       control=True)
        seed_rows += claims.network_table(phis, images[name].labels, rel_dead)
if seed_rows:
    display(Markdown(plots.markdown_table(seed_rows, floatfmt=".3f")))
else:
    print("no reference lists reduced-budget training seeds in checkpoints/references.yaml")

# %% [markdown]
# ## What this chapter claims, checked
#
# Each claim's verdict combines its parts by the one rule of the {doc}`verdicts` page: a part *holds* when its
# interval lies above both zero and the smallest effect that counts, *holds weakly* when above zero but perhaps
# short of that size, *fails* when it lies below that size, *undecided* otherwise; a claim holds when every part
# holds, and fails when any part fails. Each reference's expected verdicts are in
# `checkpoints/references.yaml`; the cell fails when a measured verdict departs from them (so that the text
# is revisited).

# %%
verdict_rows = []
for name in refs:
    expect = checkpoints.references().get(name, {}).get("expect", {})
    for res in (res1[name], res2[name], res3[name]):
        verdict_rows.append(verdicts.record_result(res, name, expected=expect.get(res.claim)))
display(Markdown(plots.markdown_table(verdict_rows)))

# %% [markdown]
# ## What the measurements say about the paper's wording

# %%
for name in refs:
    share, low = res1[name].measures[0]["trained"], grid[name][0]
    display(Markdown(
        f"**{name}**: at σ = {sigma:.3f} an image switches on {share} of the live middle channels (above a tenth of "
        f"its largest), against a bar of {catalogue.FEW_ACTIVE_BAR:.0%} for \"a small subset\": claim 1 "
        f"**{res1[name].verdict}**. The share depends on the noise level: at σ = {low['sigma']:.2f} it is "
        f"{low['own-max active share, trained']:.2f} (untrained {low['own-max active share, untrained']:.2f}), with "
        f"raw Hoyer {low['raw Hoyer, trained']:.3f} against {low['raw Hoyer, untrained']:.3f}. The channels' spread "
        "across images is " + ("bimodal" if res2[name].parts[0].verdict == "holds" else "not shown to be bimodal")
        + f": claim 2 **{res2[name].verdict}**. Images of one class share their active sets more than images of "
        f"different classes, by {res3[name].parts[0].effect.fmt()} over the untrained networks: claim 3 "
        f"**{res3[name].verdict}**."))
