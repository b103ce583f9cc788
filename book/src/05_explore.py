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
# # Explore
#
# The previous chapters state each finding as a number with an interval. This chapter lets you look
# at the objects behind those numbers, one image or one channel at a time, with four explorers over
# one reference checkpoint:
#
# 1. **Noise level**: an image, its noisy version at a noise level $\sigma$ you choose, the denoised
#    image, and the middle block's $\phi_\sigma$ of that image.
# 2. **Channel**: any middle-block channel, the held-out images on which it responds most, and where
#    in each image it responds.
# 3. **Neighbours**: any held-out image and its nearest neighbours in $\phi$ of any block, beside
#    its nearest neighbours in pixels.
# 4. **Masked reconstruction**: self-guided samples (chapter 4) whose $\phi$ is matched on a chosen
#    set of channels only, and how far their $\phi$ lands from the target's on the channels that
#    were matched and on those that were left free.
#
# Each explorer is a plain function of `sdrlib.explore` that returns its numbers and a figure; the
# widgets of `sdrlib.explore_widgets` only call it, and the measures that the checks use come from
# `sdrlib.claims` and `sdrlib.sampling`. The page you are reading shows each function's figure for
# the default values of the `parameters` cell. In Jupyter or Colab, the cell after each figure shows
# the explorer itself: sliders, pickers and a button that recompute the figure. A property of each
# explorer is checked in an assertion cell, on one side of a clear margin, so the chapter fails when
# it stops holding.

# %% tags=["parameters"]
profile = "cpu"                  # "cpu", "colab" or "paper": the scale these values were chosen for
reference = ""                   # checkpoint explored; "": the first reference of the profile
n_images = 1000                  # held-out images whose phi the explorers read
sigma = 0.196                    # noise level of their phi: the paper's 50/255, as in chapters 2-3
n_noise = 2                      # noise draws averaged per image (the paper: 20)
tau = 0.1                        # active: phi > tau * (channel maximum over the images), chapter 2
query = 0                        # the image every explorer starts from
noise_sigma = 0.2                # the noise-level explorer's starting sigma
psnr_sigmas = [0.05, 0.1, 0.2, 0.4, 0.8]   # noise levels of the PSNR table
n_psnr = 64                      # images of the PSNR table
n_top = 8                        # top-activating images per channel
n_channels = 10                  # most selective (and most frequent) channels checked for labels
n_neighbours = 8                 # neighbours shown per space
k_agree = 10                     # neighbours scored per image in the label check
mask = "top-k of the target"     # the reconstruction explorer's starting mask
mask_k = 16                      # k of the top-k masks
n_samples = 2                    # samples per reconstruction
n_steps = 10                     # fixed schedule: noise levels from 1 to 0.03 (the paper: 100)
match_iter = 10                  # Adam iterations per phi matching, at most (the paper: 100)
match_lr = 0.01
n_noise_target = 4               # noise draws for the target's phi (the paper: 10)
n_boot = 1000                    # bootstrap resamples
device = "auto"                  # "auto": a GPU when there is one; "cpu", "cuda", ...
seed = 0

# %% tags=["remove-cell"]
# `papermill -p NAME VALUE` passes text: give each parameter the type of its default
# above (a ValueError names a value that does not fit).
from sdrlib.book import chapter_defaults, coerce

coerce(globals(), chapter_defaults("05"))

# %%
# %matplotlib inline
import sys
import time

import torch
from IPython.display import Markdown, display

from sdrlib import (
    checkpoints,
    evaluate,
    explore,
    explore_widgets,
    feature_cache,
    plots,
    representation,
    sampling,
    sparsity,
    stats,
    targets,
)
from sdrlib.claims import channels, neighbours
from sdrlib.utils import pick_device

if "google.colab" in sys.modules:        # Colab shows ipywidgets 8 through its widget manager
    from google.colab import output

    output.enable_custom_widget_manager()

dev = pick_device(device)
name = reference or checkpoints.reference_names(profile)[0]
ck = checkpoints.load(name, device=dev)
model = ck.model
feats, test = feature_cache.checkpoint_features(ck, "test", n_images, sigma, n_noise, seed=seed,
                                                 control=False)
images, labels, classes = test.images, test.labels, test.classes
phi_mid = feats["phi mid"]
order = sparsity.channel_frequency(phi_mid, tau).argsort(descending=True)
mean = sampling.mean_image(checkpoints.load_data(ck, "train").images)
test_rows = representation.random_indices(len(checkpoints.load_data(ck, "test")), n_images, seed)  # phi's
chance = channels.pair_chance(labels)
print(f"{name}: step {ck.config['step']}, {len(test)} held-out images of "
      f"{ck.config['train']['data']} ({len(classes)} labels), blocks {model.block_names}; "
      f"phi at sigma {sigma} ({n_noise} draws); two images drawn at random share a label with "
      f"probability {chance:.3f}")

# %% [markdown]
# ## 1. Noise level
#
# The denoiser is blind: it is never told $\sigma$. The figure shows a held-out image, one noisy
# version of it (a seeded draw) and the network's output, with the PSNR of the noisy and of the
# denoised image against the clean one. Below, the image's $\phi_\sigma$ (bars; the middle block's
# spatial means, averaged over noise draws at that $\sigma$) over its $\phi$ at $\sigma = 0$ (black
# outline). The channels are ordered by how often they are active on the held-out images, most often
# first, so the non-selective channels sit on the left and the selective ones on the right.
#
# What to look for: the noisy PSNR falls by 6 dB each time $\sigma$ doubles, the denoised PSNR much
# more slowly; and as $\sigma$ grows, $\phi_\sigma$ drifts away from the clean $\phi$ — which
# channels move first, and whether the selective ones survive large noise.

# %%
noise_res, fig = explore.noise_view(model, images[query], noise_sigma, seed, order=order)
display(fig)

# %% [markdown]
# The same quantities over `n_psnr` held-out images at several noise levels: mean PSNR of the noisy
# and of the denoised images (`sdrlib.evaluate.psnr_table`, output clipped to [0, 1]), and how far
# $\phi_\sigma$ is from the clean $\phi$, $\|\phi_\sigma - \phi_0\| / \|\phi_0\|$ (mean over the
# images).

# %%
psnr_rows = evaluate.psnr_table(model, images[:n_psnr], psnr_sigmas, seed=seed)
phi_moves = representation.phi_change(model, images[:n_psnr].to(dev), psnr_sigmas, n_noise, seed)
display(Markdown(plots.markdown_table(
    [{"σ": r["sigma"], "noisy PSNR (dB)": r["psnr_noisy"], "denoised PSNR (dB)": r["psnr_denoised"],
      "gain (dB)": r["psnr_denoised"] - r["psnr_noisy"], "φ change": c} for r, c in zip(psnr_rows, phi_moves)])))

# %% [markdown]
# **Check.** At $\sigma$ = `noise_sigma` the denoised image beats the noisy one by more than 1 dB,
# both for the image shown and on average over the `n_psnr` images; and at $\sigma = 0$ the noisy
# image is the clean image itself.

# %%
at = evaluate.row_at(psnr_rows, noise_sigma)
gain_at = at["psnr_denoised"] - at["psnr_noisy"]
gain_shown = noise_res["psnr_denoised"] - noise_res["psnr_noisy"]
display(Markdown(f"At σ = {noise_sigma:g}: the image shown gains {gain_shown:.1f} dB "
                 f"({noise_res['psnr_noisy']:.1f} → {noise_res['psnr_denoised']:.1f} dB); the "
                 f"{n_psnr} images gain {gain_at:.1f} dB on average at σ = {at['sigma']:g}."))
assert gain_shown > 1.0, f"the denoiser gains only {gain_shown:.2f} dB on the image shown"
assert abs(at["sigma"] - noise_sigma) > 1e-9 or gain_at > 1.0, f"mean gain {gain_at:.2f} dB"
zero, _ = explore.noise_view(model, images[query], 0.0, seed)
assert torch.equal(zero["noisy"], images[query])

# %% [markdown]
# **Live.** Pick an image (its index among the held-out images), move $\sigma$, draw another noise
# sample with the seed. (In the static page this cell shows nothing: the figure above is its output
# for the default values.)

# %% tags=["remove-output", "nbval-ignore-output"]
explore_widgets.noise_widget(model, images, noise_sigma, query, seed, order=order)

# %% [markdown]
# ## 2. Channel
#
# A channel of the middle block, the `n_top` held-out images with the largest $\phi$ on that channel
# (top row, with their labels and $\phi$), and the channel's activation map on each of them (bottom
# row, over the image in grey). The map is the middle block's output for that channel at the noise
# level of $\phi$, averaged over the same noise draws, so that its spatial mean is the $\phi$
# printed above it; it is upsampled over the image by repetition (the middle block's map is $2^L$
# times coarser than the image, $L$ the number of poolings), drawn on one colour scale for the row,
# and left out where it is zero. The figure starts from the most selective channel among those that
# carry real mass (chapter 2's rule: active on the fewest images, maximum at least 10 % of the
# largest channel's).
#
# What to look for: whether the top images of a selective channel share a class or a visible feature
# (a shape, a texture, a part), and whether the map lights up on that part of the image or
# everywhere. The explorer's list starts with the most selective channels and ends with the dead
# ones.

# %%
channel0 = int(sparsity.most_selective(phi_mid, 1, tau)[0])
chan_res, fig = explore.channel_view(model, images, phi_mid, channel0, n_top, labels, classes,
                                     tau=tau, sigma=sigma, n_noise=n_noise, seed=seed,
                                     index=test_rows)
display(fig)

# %% [markdown]
# **Do a selective channel's top images share a label?** For each of the `n_channels` most selective
# channels with real mass, the fraction of pairs among its `n_top` top images that share a label;
# beside it the same for the `n_channels` live channels that are active most often, and the chance
# level (the probability that two held-out images drawn at random share a label). The interval is a
# bootstrap over channels.

# %%
live = ~sparsity.relative_dead(phi_mid)
freq = sparsity.channel_frequency(phi_mid, tau)
selective = sparsity.most_selective(phi_mid, n_channels, tau)
frequent = torch.nonzero(live).squeeze(1)[freq[live].argsort(descending=True)[:n_channels]]
groups = {"selective": selective, "most frequent": frequent}
agree = {kind: channels.top_label_agreement(phi_mid, labels, chans, n_top)
         for kind, chans in groups.items()}
agree_ci = {kind: stats.mean_ci(v, n_boot, seed=seed) for kind, v in agree.items()}
display(Markdown(plots.markdown_table(
    [{"channels": kind, "active on (median)": f"{freq[chans].median().item():.1%}",
      "top images sharing a label (pairs)": str(agree_ci[kind]), "chance": chance}
     for kind, chans in groups.items()], floatfmt=".3f")))

# %% [markdown]
# **Check.** The selective channels' top images share a label more than twice as often as chance:
# the whole interval lies above twice the chance level. And the maps shown are those that $\phi$
# averages: their spatial means equal the $\phi$ values printed above them.

# %%
sel_ci = agree_ci["selective"]
display(Markdown(
    f"Pairs of top images sharing a label: {sel_ci.value:.0%} for the {len(selective)} most "
    f"selective channels (95 % interval {sel_ci.lo:.0%} to {sel_ci.hi:.0%}), "
    f"{agree_ci['most frequent'].value:.0%} for the {len(frequent)} most frequent ones, against "
    f"{chance:.0%} by chance."))
assert sel_ci.above(2 * chance), f"selective channels' top images: {sel_ci} vs chance {chance:.3f}"
assert torch.allclose(chan_res["maps"].mean(dim=(1, 2)), chan_res["phi"], rtol=1e-3, atol=1e-6)

# %% [markdown]
# **Live.** Choose a channel (the list gives how often each is active) and how many top images to
# show.

# %% tags=["remove-output", "nbval-ignore-output"]
explore_widgets.channel_widget(model, images, phi_mid, labels, classes, channel0, n_top, tau,
                               sigma=sigma, n_noise=n_noise, seed=seed, index=test_rows)

# %% [markdown]
# ## 3. Neighbours
#
# A held-out image (the query) and its `n_neighbours` nearest held-out images, in $\phi$ of a chosen
# block (top row) and in pixels (bottom row). Both spaces are standardised (each coordinate z-scored
# over the held-out images) and compared by Euclidean distance, as in chapter 3. A neighbour's label
# is green when it is the query's and red otherwise.
#
# What to look for: pixel neighbours match the overall silhouette and brightness; $\phi$ neighbours
# should match content even where pixels differ (another position, contrast or texture). Switching
# the block shows where along the network that changes.

# %%
nb_res, fig = explore.neighbour_view(feats, images, query, "mid", n_neighbours, labels, classes)
display(fig)

# %% [markdown]
# **How often do neighbours share the query's label?** For every held-out image as a query (leave
# one out), the fraction of its nearest 1 and `k_agree` other images sharing its label, in every
# block's $\phi$ and in pixels, with bootstrap intervals over queries; then the middle block minus
# pixels, paired over queries.

# %%
agree_nn = {key: {k: neighbours.neighbour_agreement(feats[explore.feature_key(key)], labels, k)
                   for k in (1, k_agree)}
            for key in [*model.block_names, "pixels"]}
display(Markdown(plots.markdown_table(
    [{"space": key if key == "pixels" else f"φ {key}",
      "nearest neighbour": str(stats.mean_ci(v[1], n_boot, seed=seed)),
      f"{k_agree} nearest": str(stats.mean_ci(v[k_agree], n_boot, seed=seed))}
     for key, v in agree_nn.items()])))
diff_nn = {k: stats.paired_diff_ci(agree_nn["mid"][k], agree_nn["pixels"][k], n_boot, seed=seed)
           for k in (1, k_agree)}


display(Markdown(
    f"Middle block minus pixels (\"the middle block is ahead\", by the book's one rule): nearest neighbour "
    f"{diff_nn[1].fmt('+.3f')}, {stats.verdict(diff_nn[1])}; {k_agree} nearest {diff_nn[k_agree].fmt('+.3f')}, "
    f"{stats.verdict(diff_nn[k_agree])}."))

# %% [markdown]
# **Check.** The query's nearest neighbour in the middle block's $\phi$ shares its label far more
# often than chance (the whole interval above three times the chance level) and more often than in
# the first encoder block's $\phi$ (paired interval above zero). Whether the middle block also beats
# pixels is chapter 3's claim "distances" (measured there against training images);
# `checkpoints/references.yaml` says what it is expected to do for this reference, and when it
# expects the claim to hold the check follows (on `k_agree` neighbours).

# %%
mid1 = stats.mean_ci(agree_nn["mid"][1], n_boot, seed=seed)
vs_enc1 = stats.paired_diff_ci(agree_nn["mid"][1], agree_nn[model.block_names[0]][1], n_boot,
                               seed=seed)
display(Markdown(f"Nearest neighbour sharing the query's label, middle block: {mid1} (chance "
                 f"{chance:.3f}); minus {model.block_names[0]}: {vs_enc1.fmt('+.3f')}."))
assert mid1.above(3 * chance), f"phi mid nearest neighbour: {mid1} vs chance {chance:.3f}"
assert vs_enc1.above(0), f"phi mid vs {model.block_names[0]}: {vs_enc1}"
expected = checkpoints.expected_verdict(name, "distances")
print(f"checkpoints/references.yaml expects of {name}, claim distances: {expected or 'nothing'}")
if expected == "holds":
    assert diff_nn[k_agree].above(0), f"phi mid vs pixels, {k_agree} neighbours: {diff_nn[k_agree]}"

# %% [markdown]
# **Live.** Pick a query and a block.

# %% tags=["remove-output", "nbval-ignore-output"]
explore_widgets.neighbour_widget(feats, images, model.block_names, labels, classes, query, "mid",
                                 n_neighbours)

# %% [markdown]
# ## 4. Masked reconstruction
#
# The fixed-schedule self-guided sampler of chapter 4 (`n_steps` noise levels from 1 to 0.03, at
# most `match_iter` Adam iterations per matching), with the matching loss restricted to a set of
# channels:
#
# - **all**: every channel (the plain sampler);
# - **selective only** / **non-selective only**: chapter 2's split of the live channels, computed on
#   the held-out images (active on fewer than 30 % / more than 90 % of them);
# - **top-k of the target**: the `mask_k` channels where the target's $\phi$ is largest;
# - **all but top-k**: the others.
#
# The other channels are *free*: nothing pulls them towards the target's values. Beside the guided
# samples, unguided ones are drawn with the same noise (the same schedule, no matching), and for
# both the relative error of $\phi$ (clean pass) against the target's is measured separately on the
# kept and on the free channels. The bars show the target's $\phi$ (kept channels in orange, free
# ones in grey), largest first, and the dots the mean $\phi$ of the guided (blue) and unguided
# (black) samples. The figure shows the default mask (`mask`); the table gives every mask's errors,
# $\|\phi(x') - \phi(x)\| / \|\phi(x)\|$ restricted to the kept and to the free channels (mean over
# the samples $x'$, $x$ the target), and the seconds each run took on this machine.
#
# What to look for: what the samples keep of the target when only a few channels are matched, and
# whether matching some channels also pulls the free ones towards the target's values (the free
# channels' error, guided against unguided). On the CPU profile the schedule is short and the
# matching loose (the paper uses 100 levels and 100 iterations), so samples are rougher than the
# paper's.

# %%
target = sampling.image_target_on_schedule(model, images[query], n_samples, n_steps, n_noise_target, seed)
target_phi = representation.phi(model, images[query:query + 1].to(dev), 0.0)[0].cpu()
views, mask_rows = {}, []
for choice in targets.MASK_CHOICES:
    t0 = time.perf_counter()
    m = targets.channel_mask_for(choice, target_phi, phi_mid, mask_k, tau)
    views[choice] = explore.masked_view(model, images[query], mean, m, n_samples, n_steps,
                                        match_iter, match_lr, n_noise_target, seed, target,
                                        title=choice)
    r = views[choice][0]
    free = r["kept"] < len(target_phi)      # "all" leaves no channel free
    mask_rows.append({"guided on": choice, "channels kept": r["kept"],
                      "kept: guided": r["kept_error"].mean().item(),
                      "kept: unguided": r["kept_error_unguided"].mean().item(),
                      "free: guided": r["free_error"].mean().item() if free else "–",
                      "free: unguided": r["free_error_unguided"].mean().item() if free else "–",
                      "seconds": time.perf_counter() - t0})
display(views[mask][1])
display(Markdown(plots.markdown_table(mask_rows, floatfmt=".3f")))

# %% [markdown]
# **Check.** Guided on the default mask, the samples' $\phi$ error on the kept channels is less than
# half the unguided samples' error on the same channels, and so it is when every channel is guided.

# %%
for choice in dict.fromkeys([mask, "all"]):
    r = views[choice][0]
    kept, free_ = r["kept_error"].mean().item(), r["kept_error_unguided"].mean().item()
    display(Markdown(f"Guided on *{choice}* ({r['kept']} channels): relative φ error on them "
                     f"{kept:.3f}, against {free_:.3f} unguided."))
    assert kept < 0.5 * free_, f"{choice}: kept-channel error {kept:.3f} vs unguided {free_:.3f}"
pulled = [f"*{r['guided on']}* {r['free: guided']:.3f} (unguided {r['free: unguided']:.3f})"
          for r in mask_rows if r["channels kept"] < target_phi.shape[0]]
display(Markdown("On the free channels, which nothing pulls towards the target, the guided "
                 "samples' relative φ error is: " + "; ".join(pulled) + "."))

# %% [markdown]
# **Live.** Pick a target, a mask, `k` for the top-k masks and the schedule length, then press
# **Run** (each run takes a few seconds on a CPU; the explorer starts with the result above).

# %% tags=["remove-output", "nbval-ignore-output"]
explore_widgets.masked_widget(model, images, mean, phi_mid, query, mask, mask_k, n_samples, n_steps,
                              match_iter, match_lr, n_noise_target, seed, tau, initial=views[mask])

# %% [markdown]
# ## What the explorers do not show
#
# Each figure is one image, one channel or one query: it illustrates, it does not measure. The
# measurements, with intervals over images and against controls (an untrained network, pixels,
# colour and texture statistics), are in chapters 2-4; the checks above only guard the properties
# that the explorers' defaults display. The explorers read $\phi$ of `n_images` held-out images at
# one noise level (`sigma`), and the channel explorer's maps are read at that level too: at other
# levels (the noise-level explorer shows how much) a channel can be silent or respond elsewhere.
