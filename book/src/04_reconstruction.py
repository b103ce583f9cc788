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
# # Self-guided reconstruction
#
# If $\phi$ summarises an image, what does it keep? The paper answers by sampling: draw images $x'$ from
# the network's own prior, constrained so that $\phi(x') \approx \phi(x)$ for a target image $x$. What all
# such samples share is what $\phi$ encodes; where they differ, $\phi$ is silent.
#
# The prior is the one implicit in the denoiser {cite}`kadkhodaie2021stochastic`: starting from noise,
# repeatedly moving a little along $\hat x(y) - y$ (which is proportional to the gradient of the log density
# of noisy images) and re-injecting a little noise climbs towards the image manifold, coarse to fine. The
# constraint needs no second network: after each denoising step, the pixels of the noisy image are nudged by
# a few steps of Adam so that the network's own middle-block average matches the target's at the current
# noise level (**phi matching**). The network is "guided by itself".
#
# Two samplers (see `sdrlib.sampling`):
#
# - **fixed schedule** (the paper's "backward" sampler): for $\sigma$ from 1 down to 0.03, add noise of level
#   $\sigma$ to the current estimate, match $\phi_\sigma$ of the target, denoise;
# - **adaptive** (the "forward" sampler): the stochastic ascent above, with phi matching after every step,
#   the noise level of each image read from the size of its residual.
#
# Everything is measured against **unconditional samples** from the same network (no matching), which
# share nothing with the target except what every image shares.

# %% tags=["parameters"]
profile = "cpu"                  # "cpu", "colab" or "paper": the scale these values were chosen for
references = []                  # checkpoints to analyse; [] = those of checkpoints/references.yaml for the profile
n_targets = 4                    # target images (one per class, first classes)
n_per_target = 3                 # samples per target
n_steps = 20                     # fixed schedule: noise levels from 1 to 0.03 (the paper: 100)
match_iter = 25                  # Adam iterations per phi matching, at most (the paper: 100)
match_lr = 0.01
n_noise_target = 4               # noise draws for the target's phi_sigma (the paper: 10)
n_uncond = 12                    # unconditional samples per reference
ascent = {"h0": 0.1, "beta": 0.5, "sigma0": 1.0, "sigma_L": 0.05, "max_iter": 400}   # unconditional / adaptive
adaptive_match_iter = 5          # phi-matching iterations per step of the adaptive sampler
n_knn = 3000                     # training images for the k-NN classifier on phi (shared with chapter 3)
k = 10
sigma_knn = 0.2                  # noise level of the phi used by the classifier
n_noise_knn = 2
device = "auto"                  # "auto": a GPU when there is one; "cpu", "cuda", ...
seed = 0

# %% tags=["remove-cell"]
# `papermill -p NAME VALUE` passes text: give each parameter the type of its default
# above (a ValueError names a value that does not fit).
from sdrlib.book import chapter_defaults, coerce

coerce(globals(), chapter_defaults("04"))

# %%
import time

import torch
from IPython.display import Markdown, display

from sdrlib import analysis, checkpoints, data, plots, representation, sampling, sparsity
from sdrlib.utils import pick_device

dev = pick_device(device)
refs = {name: checkpoints.load(name, device=dev) for name in references or checkpoints.reference_names(profile)}
asc = sampling.AscentConfig(**ascent)
sets, means, knn_base = {}, {}, {}
for name, ck in refs.items():
    tc = ck.config["train"]
    sets[name] = {split: data.load(tc["data"], split, size=tc.get("size")) for split in ("train", "test")}
    means[name] = sampling.mean_image(sets[name]["train"].images)
    knn_base[name] = representation.checkpoint_features(ck, "train", n_knn, sigma_knn, n_noise_knn, seed=seed)
    print(f"{name}: step {ck.config['step']}, {tc['data']}, {len(sets[name]['train'])} training images")


def knn_class(name, images):
    """The label a k-NN on standardised phi mid (chapter 3's classifier) assigns to each image."""
    feats, base = knn_base[name]
    p = representation.phi(refs[name].model, images.to(dev), sigma_knn, n_noise_knn, seed=seed).cpu()
    tr, q = analysis.standardize(feats["phi mid"].double(), p.double())
    return analysis.knn_predict(tr, base.labels, q, k)


# %% [markdown]
# ## Unconditional samples
#
# What each network generates when nothing constrains it, with the effective noise level of each sample
# along the ascent ($\|\hat x(y) - y\| / \sqrt{D}$, which the step size and $\beta$ make decay geometrically).

# %%
uncond, uncond_diag, uncond_secs = {}, {}, {}
for name, ck in refs.items():
    t0 = time.perf_counter()
    uncond[name], uncond_diag[name] = sampling.unconditional(ck.model, means[name].to(dev), n_uncond, asc,
                                                             torch.Generator().manual_seed(seed))
    uncond_secs[name] = (time.perf_counter() - t0) / n_uncond
    uncond[name] = uncond[name].clamp(0, 1).cpu()
    fig = plots.image_grid(uncond[name], n_uncond // 2, suptitle=f"{name}: unconditional samples "
                           f"({uncond_diag[name].iterations.float().mean():.0f} steps on average)")
    sig = uncond_diag[name].sigma
    fig = plots.lines(range(sig.shape[0]), {f"sample {i}": sig[:, i].tolist() for i in range(min(4, sig.shape[1]))},
                      "iteration", "effective σ", title=f"{name}: unconditional ascent")

# %% [markdown]
# ## Samples that share a target's $\phi$
#
# For each target (left), `n_per_target` samples from the fixed-schedule sampler. The schedule here has
# `n_steps` noise levels and at most `match_iter` Adam iterations per matching (the paper: 100 and 100); the
# CPU profile trades fidelity of the match for time.

# %%
guided, guided_diag, targets, target_labels, guided_secs = {}, {}, {}, {}, {}
for name, ck in refs.items():
    test = sets[name]["test"]
    classes = test.labels.unique()[:n_targets]
    idx = torch.stack([(test.labels == c).nonzero()[0, 0] for c in classes])
    targets[name], target_labels[name] = test.images[idx], test.labels[idx]
    tfn = sampling.image_target(ck.model, targets[name].to(dev), n_per=n_per_target, n_noise=n_noise_target, seed=seed)
    t0 = time.perf_counter()
    x, guided_diag[name] = sampling.fixed_schedule(
        ck.model, means[name].to(dev), tfn, n_targets * n_per_target, torch.linspace(1.0, 0.03, n_steps).tolist(),
        lr=match_lr, max_iter=match_iter, generator=torch.Generator().manual_seed(seed))
    guided_secs[name] = (time.perf_counter() - t0) / (n_targets * n_per_target)
    guided[name] = x.clamp(0, 1).cpu()
    rows = torch.cat([torch.cat([targets[name][t:t + 1], guided[name][t * n_per_target:(t + 1) * n_per_target]])
                      for t in range(n_targets)])
    fig = plots.image_grid(rows, n_per_target + 1,
                           suptitle=f"{name}: target (left) and {n_per_target} self-guided samples "
                                    f"({guided_secs[name]:.1f} s per sample on this machine)")

# %% [markdown]
# Diagnostics of the fixed-schedule runs: the effective noise level of the image handed to the denoiser
# against the schedule, and how much each phi matching reduced its loss.

# %%
for name in refs:
    d = guided_diag[name]
    fig = plots.lines(d.schedule.tolist(), {"schedule σ": d.schedule.tolist(),
                                            "effective σ (mean over samples)": d.sigma.mean(1).tolist()},
                      "schedule σ", "σ", title=f"{name}: effective noise level")
    fig = plots.lines(d.schedule.tolist(), {"loss after / before (median)": d.match_ratio().tolist()},
                      "schedule σ", "ratio", title=f"{name}: phi matching per step")

# %% [markdown]
# ## How close, how faithful, how new
#
# For every sample: the relative error of its $\phi$ (clean pass) against the target's, the class a k-NN on
# $\phi$ assigns to it, its RMS pixel distance to the target and to its nearest training image, and the
# diversity of the samples of one target (mean RMS distance between them). Unconditional samples are
# compared with the same targets (each unconditional sample with each target, errors averaged) as the
# control. The last column gives a scale: the RMS distance between held-out images and their nearest
# training image.

# %%
report = {}
for name, ck in refs.items():
    tp = representation.phi(ck.model, targets[name].to(dev), 0.0).cpu()
    g_err = sampling.relative_phi_error(ck.model, guided[name].to(dev), tp.repeat_interleave(n_per_target, 0).to(dev)).cpu()
    u_err = torch.stack([sampling.relative_phi_error(ck.model, uncond[name].to(dev), tp[t:t + 1].expand(n_uncond, -1).to(dev)).cpu()
                         for t in range(n_targets)])
    want = target_labels[name].repeat_interleave(n_per_target)
    g_cls = knn_class(name, guided[name])
    u_cls = knn_class(name, uncond[name])
    u_agree = torch.stack([(u_cls == target_labels[name][t]).float().mean() for t in range(n_targets)]).mean().item()
    d_target = analysis.rms_distance(guided[name], targets[name]).gather(
        1, torch.arange(n_targets).repeat_interleave(n_per_target)[:, None]).squeeze(1)
    d_train, nn_idx = analysis.nearest_image(guided[name], sets[name]["train"].images)
    d_scale, _ = analysis.nearest_image(sets[name]["test"].images[:200], sets[name]["train"].images)
    div = [analysis.mean_pairwise(guided[name][t * n_per_target:(t + 1) * n_per_target]) for t in range(n_targets)]
    report[name] = {"phi error, guided": g_err.mean().item(), "phi error, unconditional": u_err.mean().item(),
                    "class = target's, guided": (g_cls == want).float().mean().item(),
                    "class = target's, unconditional": u_agree,
                    "RMS to target": d_target.mean().item(), "RMS to nearest train (min)": d_train.min().item(),
                    "RMS to nearest train (mean)": d_train.mean().item(), "diversity (RMS)": sum(div) / len(div),
                    "scale: held-out to nearest train": d_scale.mean().item(),
                    "s per sample (guided)": guided_secs[name], "s per sample (unconditional)": uncond_secs[name]}
    fig = plots.image_grid(torch.cat([guided[name], sets[name]["train"].images[nn_idx]]), n_targets * n_per_target,
                           suptitle=f"{name}: samples (top) and their nearest training images (bottom)")
display(Markdown(plots.markdown_table([{"reference": n, **r} for n, r in report.items()], floatfmt=".3f")))

# %% [markdown]
# ## Variants
#
# **Centroid targets.** Instead of one image's $\phi$, the mean $\phi$ of all training images of a class
# (here the first 64 of each class): samples then show what the class has in common, as $\phi$ sees it.
#
# **Channel masks.** Guide with a subset of channels only: the *selective* ones (active on few images) or
# the *non-selective* ones (active on nearly all), split as in chapter 2 on the k-NN training images.

# %%
variant_rows = []
for name, ck in refs.items():
    train = sets[name]["train"]
    classes = target_labels[name]
    members = torch.cat([(train.labels == c).nonzero()[:64, 0] for c in classes])
    ctarget, groups = sampling.centroid_target(ck.model, train.images[members].to(dev), train.labels[members],
                                               n_per=2, n_noise=n_noise_target, seed=seed)
    classes = groups
    xc, _ = sampling.fixed_schedule(ck.model, means[name].to(dev), ctarget, len(classes) * 2,
                                    torch.linspace(1.0, 0.03, n_steps).tolist(), lr=match_lr, max_iter=match_iter,
                                    generator=torch.Generator().manual_seed(seed + 1))
    xc = xc.clamp(0, 1).cpu()
    names_ = [train.classes[int(c)][:14] for c in classes.repeat_interleave(2)]
    fig = plots.image_grid(xc, 2 * len(classes), titles=names_, suptitle=f"{name}: samples from class-centroid φ")
    variant_rows.append({"reference": name, "variant": "class centroid",
                         "class = target's": (knn_class(name, xc) == classes.repeat_interleave(2)).float().mean().item()})

    p_base = knn_base[name][0]["phi mid"]
    split = sparsity.selectivity_split(sparsity.channel_frequency(p_base), sparsity.dead_channels(p_base))
    tfn = sampling.image_target(ck.model, targets[name][:2].to(dev), n_per=2, n_noise=n_noise_target, seed=seed)
    for part in ("selective", "non-selective"):
        mask = split[part].float()
        xm, _ = sampling.fixed_schedule(ck.model, means[name].to(dev), tfn.masked(split[part]), 4,
                                        torch.linspace(1.0, 0.03, n_steps).tolist(), lr=match_lr, max_iter=match_iter,
                                        generator=torch.Generator().manual_seed(seed + 2))
        xm = xm.clamp(0, 1).cpu()
        fig = plots.image_grid(torch.cat([targets[name][:1], xm[:2], targets[name][1:2], xm[2:]]), 3,
                               suptitle=f"{name}: guided by the {int(mask.sum())} {part} channels only")
        variant_rows.append({"reference": name, "variant": f"{part} channels only ({int(mask.sum())})",
                             "class = target's": (knn_class(name, xm) == target_labels[name][:2].repeat_interleave(2)
                                                  ).float().mean().item()})
display(Markdown(plots.markdown_table(variant_rows, floatfmt=".3f")))

# %% [markdown]
# ## The adaptive sampler
#
# The same constraint inside the stochastic ascent: after every ascent step, `adaptive_match_iter` Adam
# iterations pull $\phi$ towards the target's $\phi$ at the image's current effective noise level.

# %%
adaptive = {}
for name, ck in refs.items():
    tfn = sampling.image_target(ck.model, targets[name][:1].to(dev), n_per=4, n_noise=n_noise_target, seed=seed)
    cfg = sampling.AscentConfig(**{**ascent, "match_iter": adaptive_match_iter, "match_lr": match_lr})
    t0 = time.perf_counter()
    xa, da = sampling.ascent(ck.model, means[name].to(dev), 4, cfg, target=tfn,
                             generator=torch.Generator().manual_seed(seed + 3))
    adaptive[name] = {"seconds per sample": (time.perf_counter() - t0) / 4,
                      "steps": da.iterations.float().mean().item()}
    xa = xa.clamp(0, 1).cpu()
    fig = plots.image_grid(torch.cat([targets[name][:1], xa]), 5,
                           suptitle=f"{name}: target and 4 adaptive self-guided samples "
                                    f"({adaptive[name]['steps']:.0f} steps, {adaptive[name]['seconds per sample']:.1f} s each)")

# %% [markdown]
# ## Does distance in $\phi$ predict distance between the sample sets?
#
# The first version of the paper relates the distance between two targets' $\phi$ to a distance between the
# conditional densities $p(x \mid \phi_1)$ and $p(x \mid \phi_2)$. With samples we can measure the latter by the
# energy distance between the two sample sets (in RMS pixel units). Every pair of targets of a reference gives
# one point, and each reference gets its own Spearman rank correlation: the $\phi$ distances of two networks
# are on different scales, so pooling them would measure the difference between the networks, not the
# relation. With `n_targets` targets there are only a few pairs per reference, so only a strong relation can
# show (the p-value says how loosely).

# %%
from scipy.stats import spearmanr

pairs = []
for name, ck in refs.items():
    tp = representation.phi(ck.model, targets[name].to(dev), 0.0).cpu()
    for a in range(n_targets):
        for b in range(a + 1, n_targets):
            sa = guided[name][a * n_per_target:(a + 1) * n_per_target]
            sb = guided[name][b * n_per_target:(b + 1) * n_per_target]
            pairs.append({"reference": name, "pair": f"{a}-{b}", "phi distance": (tp[a] - tp[b]).norm().item(),
                          "energy distance of samples": analysis.energy_distance(sa, sb)})
display(Markdown(plots.markdown_table(pairs, floatfmt=".3f")))
for name in refs:
    mine = [p for p in pairs if p["reference"] == name]
    rho = spearmanr([p["phi distance"] for p in mine], [p["energy distance of samples"] for p in mine])
    print(f"{name}: Spearman rank correlation over {len(mine)} pairs: {rho.statistic:.2f} (p = {rho.pvalue:.2g})")

# %% [markdown]
# ## What this chapter claims, checked
#
# **Guided samples match the target's $\phi$ far better than unconditional samples do**: their mean relative
# $\phi$ error is less than half that of unconditional samples measured against the same targets.

# %%
for name, r in report.items():
    print(f"{name}: relative phi error {r['phi error, guided']:.3f} guided vs {r['phi error, unconditional']:.3f} unconditional")
    assert r["phi error, guided"] < 0.5 * r["phi error, unconditional"], f"{name}: guidance does not match phi"

# %% [markdown]
# **Guided samples carry the target's class more often than unconditional samples do**, by the k-NN classifier
# on $\phi$ of chapter 3. Where that classifier itself is weak (textures, where the middle block's distances
# failed in chapter 3), this is a weak test, and the margin is correspondingly small.

# %%
for name, r in report.items():
    print(f"{name}: assigned the target's class {r['class = target' + chr(39) + 's, guided']:.0%} guided vs "
          f"{r['class = target' + chr(39) + 's, unconditional']:.0%} unconditional")
    assert r["class = target's, guided"] > r["class = target's, unconditional"], f"{name}: no class agreement gained"

# %% [markdown]
# **Samples are not copies.** No sample is closer to its target, or to any training image, than 30 % of the
# typical distance between a held-out image and its nearest training image.

# %%
for name, r in report.items():
    floor = 0.3 * r["scale: held-out to nearest train"]
    print(f"{name}: RMS to target {r['RMS to target']:.3f}, to nearest training image >= {r['RMS to nearest train (min)']:.3f}; "
          f"floor {floor:.3f}")
    assert r["RMS to nearest train (min)"] > floor, f"{name}: a sample nearly copies a training image"
    assert r["RMS to target"] > floor, f"{name}: samples nearly copy their target"

# %% [markdown]
# Time per sample on this machine is printed in the table above (CPU profile: a shortened schedule); the
# benchmark `bench/bench_self_guided.py` compares phi matching through the encoder and middle block only with
# a version that runs the whole network at every matching step.
