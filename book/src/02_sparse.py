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
# one image, only a few of these numbers are large (**sparsity**); that some channels respond to few
# images and seem tied to specific content while others respond to nearly all images and carry global
# properties such as colour or contrast (**selectivity**); and that similar images switch on similar
# sets of channels, so that images live in a union of coordinate subspaces (**union of subspaces**).
#
# Each of these statements has a trivial version. A ReLU network's channels are often silent, an
# untrained network also has channels of different habits, and images of one class share pixel
# statistics whatever the network. So every number below is set beside the same number for an
# **untrained network of the same architecture** (same initialisation law, same noise draws), and
# along training, using the intermediate checkpoints kept from each reference run.
#
# **The threshold rule.** Channel $c$ is *active* for image $i$ when $\phi_c(x_i)$ exceeds a fraction
# $\tau$ (here `tau`) of that channel's maximum over the images analysed. A channel whose maximum is
# zero on every image is *dead*; the active fraction of an image is counted over the live channels.
#
# $\phi$ is computed at noise level $\sigma$ (`sigma`), averaging the middle block's spatial mean over
# `n_noise` draws of the noise, as the paper does ({cite}`kadkhodaie2025sparse`; their linear probe
# uses $\sigma = 50/255 \approx 0.2$).

# %% tags=["parameters"]
profile = "cpu"                  # "cpu", "colab" or "paper": the scale these values were chosen for
references = []                  # checkpoints to analyse; empty: those of checkpoints/references.yaml
n_images = 1000                  # held-out images analysed per reference
sigma = 0.196                    # noise level of phi: the paper's 50/255
n_noise = 20                     # noise draws averaged per image (the paper: 20)
tau = 0.1                        # active: phi > tau * (channel maximum over the images)
rel_dead = 0.01                  # dead: channel maximum < rel_dead * (largest channel maximum)
top_fraction = 0.1               # the share of phi carried by this fraction of the live channels
selective_below = 0.3            # channels active on fewer images than this are "selective"
nonselective_above = 0.9         # ... on more than this, "non-selective"
n_top = 8                        # top-activating images shown per selective channel
grid_sigmas = [0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.13, 0.16, 0.2,
               0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
grid_classes = 30                # the noise-level grid: up to this many classes ...
grid_per_class = 10              # ... with this many held-out images each
grid_noise = 20                  # noise draws per image on the grid
n_noise_sweep = 4                # noise draws for the training-length sweep
n_boot = 1000                    # bootstrap resamples of per-image scores
n_boot_slow = 200                # ... of counts and overlap ratios (recomputed per resample)
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

from sdrlib import checkpoints, plots, representation, sparsity, stats, verdicts
from sdrlib.utils import pick_device

dev = pick_device(device)
names = references or checkpoints.reference_names(profile)
refs = {name: checkpoints.load(name, device=dev) for name in names}
feats, images = {}, {}
for name, ck in refs.items():
    feats[name], images[name] = representation.checkpoint_features(
        ck, "test", n_images, sigma, n_noise, seed=seed, where=cache)
    print(f"{name}: step {ck.config['step']}, data {ck.config['train']['data']}, {len(images[name])} held-out "
          f"images, phi of {feats[name]['phi mid'].shape[1]} middle channels at sigma {sigma} ({n_noise} draws)")

# %% [markdown]
# ## What $\phi$ looks like
#
# Three held-out images of different classes, and their $\phi$ from the trained middle block and from the
# untrained one. Channels are ordered by how often they are active on the analysed images (most often
# first), the same order in every panel.

# %%
for name in refs:
    p, ims = feats[name]["phi mid"], images[name]
    order = sparsity.channel_frequency(p, tau).argsort(descending=True)
    picks = [int((ims.labels == c).nonzero()[0]) for c in ims.labels.unique()[:3]]
    bars = {}
    for i in picks:
        cls = ims.classes[int(ims.labels[i])]
        bars[f"trained, image {i} ({cls})"] = p[i]
        bars[f"untrained, image {i} ({cls})"] = feats[name]["untrained phi mid"][i]
    fig = plots.image_grid(ims.images[picks], len(picks),
                           titles=[plots.short_label(ims.classes[int(ims.labels[i])], 18) for i in picks])
    fig = plots.phi_bars(bars, order=order, title=f"{name}: phi of the middle block at sigma = {sigma:.3f}")

# %% [markdown]
# ## Dead channels
#
# A channel counts as *dead* when its largest value over the analysed images is below `rel_dead` (1 %) of
# the largest channel's: it carries no real mass, whether or not it is exactly zero. Every measure below
# reads the live channels only, each scaled by its own maximum, so that neither silent channels nor a few
# loud ones decide the verdicts. The table counts dead channels by this rule and exact zeros, per block.

# %%
dead_rows = []
for name in refs:
    for key, p in feats[name].items():
        if key.startswith(("phi", "untrained phi")):
            dead_rows.append({"reference": name, "representation": key, "channels": p.shape[1],
                              "dead (< 1 % of the largest maximum)": int(sparsity.relative_dead(p, rel_dead).sum()),
                              "exactly zero": int(sparsity.dead_channels(p).sum())})
display(Markdown(plots.markdown_table(dead_rows)))

# %% [markdown]
# ## Claim 1, sparsity, without a threshold
#
# Three measures of how concentrated each image's $\phi$ is, none of which needs a threshold:
# the **Hoyer sparsity** $(\sqrt{C} - \|x\|_1 / \|x\|_2) / (\sqrt{C} - 1)$, which is 1 when one channel
# carries everything and 0 when all are equal; the **participation ratio** $(\sum_c x_c)^2 / (C \sum_c x_c^2)$,
# the effective fraction of channels that are active; and the share of the total carried by the top
# `top_fraction` of channels. Each is computed per image on the live channels scaled by their maxima, for
# the trained network and for its untrained twin on the same images and noise draws; the difference is
# paired over images, and its interval is a bootstrap over images.

# %%
sparse_rows, sparse_diff = [], {}
for name in refs:
    pt, pu = feats[name]["phi mid"], feats[name]["untrained phi mid"]
    k_t = max(1, round(top_fraction * int((~sparsity.relative_dead(pt, rel_dead)).sum())))
    k_u = max(1, round(top_fraction * int((~sparsity.relative_dead(pu, rel_dead)).sum())))
    measures = {"Hoyer sparsity": (sparsity.hoyer(pt), sparsity.hoyer(pu)),
                "participation ratio": (sparsity.participation_ratio(pt), sparsity.participation_ratio(pu)),
                f"top {top_fraction:.0%} share": (sparsity.top_mass(pt, k_t), sparsity.top_mass(pu, k_u))}
    for m, (a, b) in measures.items():
        d = stats.paired_diff_ci(a, b, n_boot=n_boot, seed=seed)
        sparse_rows.append({"reference": name, "measure": m, "trained": str(stats.mean_ci(a, n_boot, seed=seed)),
                            "untrained": str(stats.mean_ci(b, n_boot, seed=seed)), "trained − untrained": str(d)})
        sparse_diff[(name, m)] = d
    fig = plots.histograms({"trained": measures["Hoyer sparsity"][0], "untrained": measures["Hoyer sparsity"][1]},
                           "Hoyer sparsity of an image's phi (live channels)", range_=(0, 1),
                           title=f"{name}: how concentrated each image's phi is")
display(Markdown(plots.markdown_table(sparse_rows)))

# %% [markdown]
# ## The threshold, swept
#
# The paper counts a channel as active above a threshold. Below, the median fraction of live channels
# active per image as the threshold $\tau$ (relative to each channel's maximum) goes from 0 to 0.9. A
# network that is sparser at every $\tau$ is sparser without qualification; curves that cross mean the
# verdict depends on the threshold.

# %%
taus = [i / 20 for i in range(19)]
for name in refs:
    curves = {lab: sparsity.tau_sweep(feats[name][key], taus).tolist()
              for key, lab in (("phi mid", "trained"), ("untrained phi mid", "untrained"))}
    fig = plots.lines(taus, curves, "threshold τ (fraction of the channel's maximum)",
                      "median active fraction", title=f"{name}: active fraction versus threshold")

# %% [markdown]
# ## Claim 2, selectivity, against a density-matched control
#
# A channel is *selective* when it is active on fewer than `selective_below` of the images, *non-selective*
# above `nonselective_above`. At one threshold, a denser network has fewer selective channels by
# construction, so the control is read at its own threshold $\tau^*$, chosen so that its median image
# activates exactly the same fraction of live channels as the trained network's does at $\tau$: the
# comparison is then between two equally dense codes. Counts are over live channels; intervals resample
# the images.

# %%
sel_rows, sel_diff, matched = [], {}, {}
for name in refs:
    pt, pu = feats[name]["phi mid"], feats[name]["untrained phi mid"]
    live_t = pt[:, ~sparsity.relative_dead(pt, rel_dead)]
    target = sparsity.active_fraction(live_t, tau).median().item()
    matched[name] = tau_u = sparsity.matched_tau(pu[:, ~sparsity.relative_dead(pu, rel_dead)], target)

    def counts(idx, p, t):
        return sparsity.selectivity_counts(p[idx], t, selective_below, nonselective_above, rel_dead)

    ct, cu, cs = counts(slice(None), pt, tau), counts(slice(None), pu, tau_u), counts(slice(None), pu, tau)
    d = stats.bootstrap(lambda idx: counts(idx, pt, tau)["selective"] - counts(idx, pu, tau_u)["selective"],
                        len(pt), n_boot_slow, seed=seed)
    sel_diff[name] = d
    sel_rows.append({"reference": name, "τ (trained)": tau, "τ* (control)": round(tau_u, 4),
                     "median active (trained)": round(target, 3),
                     "selective: trained": ct["selective"], "selective: control at τ*": cu["selective"],
                     "selective: control at τ": cs["selective"], "non-selective: trained": ct["non_selective"],
                     "non-selective: control at τ*": cu["non_selective"],
                     "trained − control at τ* (selective)": str(d)})
    fq = {"trained (τ)": sparsity.channel_frequency(pt, tau),
          f"untrained (τ* = {tau_u:.3f})": sparsity.channel_frequency(pu, tau_u)}
    fig = plots.frequency_curves(fq, (selective_below, nonselective_above),
                                 title=f"{name}: how often each channel is active (density-matched)")
display(Markdown(plots.markdown_table(sel_rows)))

# %% [markdown]
# ## What a selective channel likes
#
# Left: the middle block's activation maps (clean input) for the six channels with the largest $\phi$ on
# one image. Then, for the three most selective channels among those that carry real mass (their maximum
# reaches 10 % of the largest channel's; nearly silent channels are left out), the images on which they
# respond most. If a channel is tied to content, its top images share it.

# %%
for name, ck in refs.items():
    p, ims = feats[name]["phi mid"], images[name]
    i = 0
    top = p[i].topk(6).indices
    with torch.no_grad():
        maps = ck.model.encode(ims.images[i:i + 1].to(dev))[0, top].cpu()
    fig = plots.activation_maps(ims.images[i], maps, [f"ch {c} φ={p[i, c]:.2f}" for c in top.tolist()],
                                suptitle=f"{name}: image 0 ({ims.classes[int(ims.labels[i])]}), top channels")
    freq = sparsity.channel_frequency(p, tau)
    cmax = p.max(0).values
    for c in sparsity.most_selective(p, 3, tau).tolist():
        idx = sparsity.top_images(p, c, n_top)
        titles = [plots.short_label(ims.classes[int(ims.labels[j])]) for j in idx.tolist()]
        fig = plots.image_grid(ims.images[idx], n_top, titles=titles,
                               suptitle=f"{name}: channel {c}, active on {freq[c]:.1%} of images, maximum "
                                        f"{cmax[c] / cmax.max():.0%} of the largest channel's")

# %% [markdown]
# ## Claim 3, union of subspaces: do similar images share active channels?
#
# For every pair of images, the Jaccard index of their active sets (shared active channels over channels
# active in either). If images of one class switch on the same channels, pairs within a class overlap more
# than pairs across classes; the ratio of the two means is 1 without class structure. The control is read
# at its density-matched threshold $\tau^*$. For textures a class is one source photograph.

# %%
ov_rows, ov_diff = [], {}
for name in refs:
    pt, pu, lab = feats[name]["phi mid"], feats[name]["untrained phi mid"], images[name].labels
    mt, mu = sparsity.active_mask(pt, tau), sparsity.active_mask(pu, matched[name])
    def ratio(m, idx):     # a resample repeats images: pairs of an image with itself are left out
        return sparsity.overlap_ratio(m[idx], lab[idx], idx)

    rt = stats.bootstrap(lambda idx: ratio(mt, idx), len(lab), n_boot_slow, seed=seed)
    ru = stats.bootstrap(lambda idx: ratio(mu, idx), len(lab), n_boot_slow, seed=seed)
    d = stats.bootstrap(lambda idx: ratio(mt, idx) - ratio(mu, idx), len(lab), n_boot_slow, seed=seed)
    ov_diff[name] = d
    ov_rows.append({"reference": name, "within / across, trained": str(rt),
                    "control at τ*": str(ru), "trained − control": str(d)})
display(Markdown(plots.markdown_table(ov_rows)))

# %% [markdown]
# ## Block by block
#
# The same threshold-free measure for every block of the network, trained and untrained: where in the
# network does sparsity appear? (Hoyer sparsity, mean over images, with its interval.)

# %%
block_rows = []
for name, ck in refs.items():
    for b in ck.model.block_names:
        ht, hu = sparsity.hoyer(feats[name][f"phi {b}"]), sparsity.hoyer(feats[name][f"untrained phi {b}"])
        block_rows.append({"reference": name, "block": b, "channels": feats[name][f"phi {b}"].shape[1],
                           "Hoyer, trained": str(stats.mean_ci(ht, n_boot, seed=seed)),
                           "Hoyer, untrained": str(stats.mean_ci(hu, n_boot, seed=seed)),
                           "trained − untrained": str(stats.paired_diff_ci(ht, hu, n_boot, seed=seed))})
display(Markdown(plots.markdown_table(block_rows)))

# %% [markdown]
# ## How it depends on the noise level
#
# $\phi_\sigma$ is defined at every noise level. The paper computes it on a grid of 20 levels with 20 noise
# draws; so does this section, on `grid_per_class` held-out images of each of up to `grid_classes`
# classes: the Hoyer sparsity, the dead channels and the within/across overlap ratio (control at its
# density-matched threshold at each $\sigma$), for the trained and the untrained network.

# %%
grid = {}
for name, ck in refs.items():
    g, gims = representation.checkpoint_grid(ck, grid_sigmas, "test", grid_classes, grid_per_class,
                                             grid_noise, seed, where=cache)
    rows = []
    for k, s in enumerate(grid_sigmas):
        pt, pu = g["phi mid"][k], g["untrained phi mid"][k]
        live_t = pt[:, ~sparsity.relative_dead(pt, rel_dead)]
        t_u = sparsity.matched_tau(pu[:, ~sparsity.relative_dead(pu, rel_dead)],
                                   sparsity.active_fraction(live_t, tau).median().item())
        rows.append({"sigma": s, "Hoyer trained": sparsity.hoyer(pt).mean().item(),
                     "Hoyer untrained": sparsity.hoyer(pu).mean().item(),
                     "dead trained": int(sparsity.relative_dead(pt, rel_dead).sum()),
                     "dead untrained": int(sparsity.relative_dead(pu, rel_dead).sum()),
                     "overlap trained": sparsity.overlap_ratio(sparsity.active_mask(pt, tau), gims.labels),
                     "overlap untrained (τ*)": sparsity.overlap_ratio(sparsity.active_mask(pu, t_u), gims.labels)})
    grid[name] = rows
    for pair, ylabel in ((("Hoyer trained", "Hoyer untrained"), "Hoyer sparsity (mean)"),
                         (("dead trained", "dead untrained"), "dead channels"),
                         (("overlap trained", "overlap untrained (τ*)"), "Jaccard within / across")):
        fig = plots.lines([r["sigma"] for r in rows], {k: [r[k] for r in rows] for k in pair}, "σ", ylabel,
                          title=f"{name}: middle block versus noise level ({len(gims)} images, {grid_noise} draws)")

# %% [markdown]
# ## How it emerges during training
#
# Each reference run kept intermediate checkpoints. Step 0 is the untrained network. The same measures at
# $\sigma$ = `sigma` on the same images (the control's density matched at every step).

# %%
along = {}
for name, ck in refs.items():
    rows = []
    for step, path in [(0, None)] + checkpoints.training_snapshots(ck.path):
        if path is None:
            p = feats[name]["untrained phi mid"]
        else:
            snap = checkpoints.load(path, device=dev)
            f, _ = representation.checkpoint_features(snap, "test", n_images, sigma, n_noise_sweep, blocks=["mid"],
                                                      seed=seed, control=False, where=cache)
            p = f["phi mid"]
        summ = sparsity.sparsity_summary(p, tau, rel_dead)
        rows.append({"step": step, "channels": summ["channels"], "dead": summ["dead"],
                     "exact zeros": summ["exact zeros"],
                     "Hoyer": sparsity.hoyer(p, ~sparsity.relative_dead(p, rel_dead)).mean().item(),
                     "median active": summ["active_frac_median"], "selective": summ["selective"],
                     "overlap ratio": sparsity.overlap_ratio(sparsity.active_mask(p, tau), images[name].labels)})
    along[name] = rows
    display(Markdown(f"**{name}** along training\n\n" + plots.markdown_table(rows, floatfmt=".3f")))
    fig = plots.lines([r["step"] for r in rows], {"Hoyer sparsity": [r["Hoyer"] for r in rows],
                                                  "dead / channels": [r["dead"] / r["channels"] for r in rows],
                                                  "median active fraction": [r["median active"] for r in rows]},
                      "training step", "value", title=f"{name}: middle block along training")

# %% [markdown]
# ## Across training seeds
#
# A reference is one training run. Where `checkpoints/references.yaml` lists more training seeds of a
# reference's recipe (trained for a reduced budget, stated in their READMEs), the same three claim numbers
# for each of them (point values, the control at its density-matched threshold), and their mean and
# standard deviation across seeds: how much of a verdict is the luck of one run. The reference's own point
# values head the rows; they are not part of the spread, since the reference trained for longer.

# %%
seed_rows = []
for name in refs:
    runs = checkpoints.seeds_of(name)
    if not runs:
        continue
    nums = []
    for run in [None, *runs]:    # None: the reference itself, for comparison (not in the spread: a larger budget)
        sck = refs[name] if run is None else checkpoints.load(run, device=dev)
        f, ims = representation.checkpoint_features(sck, "test", n_images, sigma, n_noise, blocks=["mid"], seed=seed,
                                                    where=cache)
        num = sparsity.claim_numbers(f["phi mid"], f["untrained phi mid"], ims.labels, tau, rel_dead,
                                     selective_below, nonselective_above)
        nums += [] if run is None else [num]
        run_name = f"{run or name + ', the reference'} (seed {sck.config['train']['seed']}, "
        run_name += f"{sck.config['step']:,} steps)"
        seed_rows.append({"reference": name, "run": run_name, **{k: v for k, v in num.items() if k != "matched tau"}})
    claims = ("sparsity", "selectivity", "subspaces")
    spread = {k: torch.tensor([n[k] for n in nums], dtype=torch.float64) for k in claims}
    seed_rows.append({"reference": name, "run": f"mean ± sd over {len(nums)} seeds",
                      **{k: f"{v.mean():.3f} ± {v.std():.3f}" for k, v in spread.items()}})
if seed_rows:
    display(Markdown(plots.markdown_table(seed_rows, floatfmt=".3f")))
else:
    print("no reference lists extra training seeds in checkpoints/references.yaml")

# %% [markdown]
# ## What this chapter claims, checked
#
# Each claim is stated as "trained minus control is positive", and its verdict follows from where the 95 %
# interval lies: *holds* above zero, *fails* below, *undecided* across. The verdicts are collected on the
# {doc}`verdicts` page; each reference's expected verdict is in `checkpoints/references.yaml`, and the cell
# fails when a measured verdict departs from it (so the text is revisited).

# %%
verdict_rows = []
for name in refs:
    expect = checkpoints.references().get(name, {}).get("expect", {})
    d1 = sparse_diff[(name, "Hoyer sparsity")]
    verdict_rows.append(verdicts.record("sparsity", name, d1, stats.verdict(d1), expected=expect.get("sparsity")))
    d2 = sel_diff[name]
    verdict_rows.append(verdicts.record("selectivity", name, d2, stats.verdict(d2), ".1f",
                                        expected=expect.get("selectivity")))
    d3 = ov_diff[name]
    verdict_rows.append(verdicts.record("subspaces", name, d3, stats.verdict(d3), expected=expect.get("subspaces")))
display(Markdown(plots.markdown_table(verdict_rows)))
