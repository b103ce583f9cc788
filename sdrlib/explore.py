"""The explorers of chapter 5: one plain function per explorer that takes the model, the images or features and
the values of the controls, and returns its numbers and a matplotlib Figure. The ``*_widget`` builders that drive
them with ipywidgets import this module (never the other way round); their measures are in ``sdrlib.claims``.

- ``noise_view``: one image at one noise level: clean, noisy and denoised, their PSNR, and phi_sigma of the
  middle block (SPEC 2).
- ``channel_view``: one channel's top-activating images and its spatial activation maps on them (claim 2).
- ``neighbour_view``: a query's nearest images in phi of any block (standardised) and in pixels (claim 4).
- ``masked_view``: ``sampling.masked_sample``, the fixed-schedule self-guided sampler with the matching restricted
  to some channels, and the relative phi error on the kept and on the free channels (SPEC 4, channel-mask variant).

Figures are made with ``matplotlib.figure.Figure`` (not pyplot), so that a callback run by a widget leaves no
figure behind for the notebook to show later; the widgets show each figure as a PNG image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from . import matching, representation, sampling, sparsity, targets, utils
from .claims.channels import pair_agreement, pair_chance
from .claims.neighbours import ranking
from .noise import add_noise, check_sigma, psnr
from .plots.common import short_label, show_image
from .representation import phi as phi_sigma
from .unet import UNet

View = tuple[dict, Figure]


def _one(image: torch.Tensor) -> torch.Tensor:
    """One image as a (1, C, H, W) CPU float tensor (from CHW or 1CHW)."""
    if not isinstance(image, torch.Tensor) or image.ndim not in (3, 4) or (image.ndim == 4 and image.shape[0] != 1):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"expected one image (C, H, W) or (1, C, H, W), got {shape}")
    return (image if image.ndim == 4 else image[None]).detach().float().cpu()


def _label(labels: torch.Tensor | None, classes: Sequence[str] | None, i: int, width: int = 14) -> str:
    """The class name (or label number) of image i, shortened; empty without labels."""
    if labels is None:
        return ""
    lab = int(labels[i])
    return short_label(classes[lab], width) if classes is not None else str(lab)


# ------------------------------------------------------------------ 1. noise level


@torch.no_grad()
def noise_view(
    model: UNet, image: torch.Tensor, sigma: float, seed: int = 0, n_noise: int = 8, order: torch.Tensor | None = None
) -> View:
    """One image at noise level sigma: clean, noisy (seeded draw) and denoised, the PSNR of noisy and denoised,
    and phi_sigma of the middle block (``n_noise`` draws) beside phi at sigma 0; bars in ``order`` if given."""
    check_sigma(sigma)
    x = _one(image)
    y = add_noise(x, float(sigma), torch.Generator().manual_seed(seed))
    x_hat = model(y.to(utils.model_device(model))).cpu()
    res = {
        "sigma": float(sigma),
        "clean": x[0],
        "noisy": y[0],
        "denoised": x_hat[0],
        "psnr_noisy": psnr(y, x).item(),
        "psnr_denoised": psnr(x_hat, x).item(),
        "phi": phi_sigma(model, x.to(utils.model_device(model)), float(sigma), n_noise, seed=seed)[0].cpu(),
        "phi_clean": phi_sigma(model, x.to(utils.model_device(model)), 0.0)[0].cpu(),
    }
    return res, noise_figure(res, order)


def noise_figure(res: Mapping[str, Any], order: torch.Tensor | None = None) -> Figure:
    """The noise view's figure: the three images with their PSNR over the phi bars."""
    fig = Figure(figsize=(9.5, 4.8), layout="constrained")
    axd = fig.subplot_mosaic([["clean", "noisy", "denoised"], ["phi", "phi", "phi"]], height_ratios=[1.6, 1])
    s = res["sigma"]
    show_image(axd["clean"], res["clean"], "clean")
    noisy = "noisy (σ = 0: the clean image)" if s == 0 else f"noisy, σ = {s:.3g}: {res['psnr_noisy']:.1f} dB"
    show_image(axd["noisy"], res["noisy"], noisy)
    show_image(axd["denoised"], res["denoised"], f"denoised: {res['psnr_denoised']:.1f} dB")
    for k in ("clean", "noisy", "denoised"):
        axd[k].title.set_fontsize(10)
    p, p0 = res["phi"], res["phi_clean"]
    idx = order if order is not None else torch.arange(len(p))
    ax = axd["phi"]
    x = np.arange(len(p))
    ax.bar(x, p[idx].numpy(), width=1.0, color="tab:blue", label=f"φ at σ = {s:.3g}")
    ax.step(x, p0[idx].numpy(), where="mid", color="k", lw=0.7, label="φ at σ = 0 (clean)")
    ax.set_xlim(-0.5, len(p) - 0.5)
    ax.set_xlabel(
        "middle-block channel"
        + (" (ordered by activation frequency, most frequent first)" if order is not None else "")
    )
    ax.set_ylabel("φ")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3, axis="y")
    return fig


# ------------------------------------------------------------------ 2. channel


def channel_order(phi: torch.Tensor, tau: float = sparsity.DEFAULT_TAU, rel: float = 0.01) -> list[tuple[str, int]]:
    """(label, channel) for every channel: live ones by activation frequency, most selective first, then dead."""
    freq = sparsity.channel_frequency(phi, tau)
    dead = sparsity.relative_dead(phi, rel)
    live = torch.nonzero(~dead).squeeze(1)
    out = [
        (f"channel {c}: active on {freq[c]:.1%} of the images", int(c))
        for c in live[freq[live].argsort(stable=True)].tolist()
    ]
    return out + [(f"channel {c}: dead", int(c)) for c in torch.nonzero(dead).squeeze(1).tolist()]


@torch.no_grad()
def channel_maps(
    model: UNet,
    images: torch.Tensor,
    channel: int,
    block: str = "mid",
    sigma: float = 0.0,
    n_noise: int = 1,
    seed: int = 0,
    index: torch.Tensor | None = None,
) -> torch.Tensor:
    """A block's map of one channel (N, h, w), averaged over the noise draws of ``representation.phi_blocks``
    (the same draws for the same ``seed`` and image ``index``): its spatial mean is that channel's phi_sigma."""
    check_sigma(sigma)
    dev = utils.model_device(model)
    x = images.float()
    if sigma == 0:
        return model.features(x.to(dev), [block])[block][:, int(channel)].float().cpu()
    index = torch.arange(len(x)) if index is None else torch.as_tensor(index)
    z = representation.noise_for(index, x.shape[1:], n_noise, seed)
    acc = sum(
        model.features((x + sigma * z[d]).to(dev), [block])[block][:, int(channel)].float().cpu()
        for d in range(n_noise)
    )
    return acc / n_noise


@torch.no_grad()
def channel_view(
    model: UNet,
    images: torch.Tensor,
    phi: torch.Tensor,
    channel: int,
    k: int = 8,
    labels: torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
    block: str = "mid",
    tau: float = sparsity.DEFAULT_TAU,
    sigma: float = 0.0,
    n_noise: int = 1,
    seed: int = 0,
    index: torch.Tensor | None = None,
) -> View:
    """A channel's k top-activating images (largest phi[:, channel], in that order) and its activation maps on
    them (``channel_maps`` at phi's noise level: pass phi's sigma, n_noise, seed and the images' ``index`` in
    the set phi was computed on), upsampled over the image, one colour scale for all."""
    if phi.ndim != 2 or phi.shape[0] != images.shape[0]:
        raise ValueError(f"phi must be (N, C) with N = {images.shape[0]} images, got {tuple(phi.shape)}")
    if not 0 <= int(channel) < phi.shape[1]:
        raise ValueError(f"channel must be in [0, {phi.shape[1] - 1}], got {channel}")
    if not 1 <= k <= phi.shape[0]:
        raise ValueError(f"k must be in [1, {phi.shape[0]}], got {k}")
    c = int(channel)
    top = sparsity.top_images(phi, c, k)
    x = images[top].float()
    ids = torch.arange(len(images)) if index is None else torch.as_tensor(index)
    maps = channel_maps(model, x, c, block, sigma, n_noise, seed, ids[top])
    up = F.interpolate(maps[:, None], size=tuple(x.shape[-2:]), mode="nearest")[:, 0]
    res = {
        "channel": c,
        "block": block,
        "top": top,
        "phi": phi[top, c],
        "maps": maps,
        "upsampled": up,
        "sigma": float(sigma),
        "n_noise": n_noise if sigma > 0 else 1,
        "images": x,
        "frequency": sparsity.channel_frequency(phi, tau)[c].item(),
        "relative_max": (phi[:, c].max() / phi.max(0).values.max().clamp(min=1e-12)).item(),
    }
    if labels is not None:
        res["labels"] = labels[top]
        res["pair_agreement"] = pair_agreement(labels[top])
        res["pair_chance"] = pair_chance(labels)
    return res, channel_figure(res, classes)


def channel_figure(res: Mapping[str, Any], classes: Sequence[str] | None = None) -> Figure:
    """The channel view's figure: top images (with labels and phi) over their activation maps."""
    k = len(res["top"])
    fig = Figure(figsize=(max(0.95 * k + 0.4, 5.0), 3.1), layout="constrained")
    axes = fig.subplots(2, k, squeeze=False)
    vmax = max(float(res["upsampled"].max()), 1e-12)
    labels = res.get("labels")
    for j in range(k):
        lab = _label(labels, classes, j) if labels is not None else f"image {int(res['top'][j])}"
        show_image(axes[0, j], res["images"][j], f"{lab}\nφ = {float(res['phi'][j]):.3g}")
        show_image(axes[1, j], res["images"][j].mean(0))
        silent = np.ma.masked_less_equal(res["upsampled"][j].numpy(), 0)  # where the map is 0: the image
        axes[1, j].imshow(silent, cmap="magma", alpha=0.7, vmin=0, vmax=vmax, interpolation="nearest")
    s, n = res.get("sigma", 0.0), res.get("n_noise", 1)
    axes[1, 0].set_ylabel("map, clean image" if s == 0 else f"map, σ = {s:.3g}\n({n} draws)", fontsize=8)
    agree = (
        f"\ntop images sharing a label: {res['pair_agreement']:.0%} of pairs (chance {res['pair_chance']:.0%})"
        if "pair_agreement" in res
        else ""
    )
    fig.suptitle(
        f"{res['block']} channel {res['channel']}: active on {res['frequency']:.1%} of the images, maximum "
        f"{res['relative_max']:.0%} of the largest channel's{agree}",
        fontsize=9,
    )
    return fig


# ------------------------------------------------------------------ 3. neighbours


def feature_key(block: str) -> str:
    """The key of a block's phi in the features of ``feature_cache.checkpoint_features`` ("pixels" stays)."""
    return block if block in ("pixels", "colour stats") or block.startswith("phi ") else f"phi {block}"


def neighbour_view(
    features: Mapping[str, torch.Tensor],
    images: torch.Tensor,
    query: int,
    block: str = "mid",
    k: int = 8,
    labels: torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
    standardized: bool = True,
) -> View:
    """Image ``query``'s k nearest images in phi of ``block`` and in pixels (Euclidean distance of standardised
    features, as in chapter 3); each ranking starts with the query itself (distance 0)."""
    spaces = {f"φ {block}": feature_key(block), "pixels": "pixels"}
    for key in spaces.values():
        if key not in features:
            raise ValueError(f"no features {key!r}; available: {sorted(features)}")
    if not 1 <= k < images.shape[0]:
        raise ValueError(f"k must be in [1, {images.shape[0] - 1}], got {k}")
    res: dict[str, Any] = {"query": int(query), "block": block, "spaces": list(spaces)}
    for name, key in spaces.items():
        order, dist = ranking(features[key], query, standardized)
        res[name] = order[: k + 1]
        res[f"{name} distance"] = dist[: k + 1]
        if labels is not None:
            res[f"{name} same label"] = (labels[order[1 : k + 1]] == labels[int(query)]).double().mean().item()
    return res, neighbour_figure(res, images, labels, classes)


def neighbour_figure(
    res: Mapping[str, Any],
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
) -> Figure:
    """The neighbour view's figure: per space, the query then its neighbours (green title: same label)."""
    spaces = res["spaces"]
    k = len(res[spaces[0]]) - 1
    fig = Figure(figsize=(max(0.9 * (k + 1) + 0.3, 5.0), 1.4 * len(spaces) + 0.5), layout="constrained")
    axes = fig.subplots(len(spaces), k + 1, squeeze=False)
    q = res["query"]
    for r, space in enumerate(spaces):
        idx, dist = res[space], res[f"{space} distance"]
        show_image(axes[r, 0], images[q], f"query {q}\n{_label(labels, classes, q)}")
        axes[r, 0].set_ylabel(space, fontsize=9)
        for j in range(1, k + 1):
            i = int(idx[j])
            show_image(axes[r, j], images[i], f"{_label(labels, classes, i)}\nd = {float(dist[j]):.3g}")
            if labels is not None:
                axes[r, j].title.set_color("tab:green" if labels[i] == labels[q] else "tab:red")
    same = [f"{s}: {res[s + ' same label']:.0%}" for s in spaces if f"{s} same label" in res]
    fig.suptitle(
        f"image {q} and its {k} nearest images (standardised Euclidean distance d)"
        + (f"\nsame label as the query: {', '.join(same)}" if same else ""),
        fontsize=9,
    )
    return fig


# ------------------------------------------------------------------ 4. masked reconstruction


def masked_view(
    model: UNet,
    image: torch.Tensor,
    mean: torch.Tensor,
    mask: torch.Tensor,
    n_samples: int = 2,
    steps: int = 10,
    match_iter: int = 10,
    lr: float = 0.01,
    n_noise: int = 4,
    seed: int = 0,
    target: targets.Target | None = None,
    title: str = "",
) -> View:
    """Self-guided samples of one target image guided on the channels of ``mask`` only, beside unguided samples
    (same noise draws); the relative phi error (sigma 0) of each on the kept and on the free channels."""
    x = _one(image)
    dev = utils.model_device(model)
    mask = torch.as_tensor(mask).bool().cpu()
    if target is None:
        target = sampling.image_target_on_schedule(model, x, n_samples, steps, n_noise, seed)
    if len(target) != n_samples:
        raise ValueError(f"the target holds phi for {len(target)} samples, but n_samples = {n_samples}")
    if mask.shape != (target.table.shape[-1],):
        raise ValueError(f"mask must have {target.table.shape[-1]} entries, got shape {tuple(mask.shape)}")
    guided, diag = sampling.masked_sample(model, target, mean, mask, steps, match_iter, lr, seed)
    free, _ = sampling.masked_sample(model, target, mean, mask, steps, 0, lr, seed)
    tp = phi_sigma(model, x.to(dev), 0.0)[0].cpu()
    pg, pf = phi_sigma(model, guided, 0.0).cpu(), phi_sigma(model, free, 0.0).cpu()
    res = {
        "mask": mask,
        "kept": int(mask.sum()),
        "target": x[0],
        "target_phi": tp,
        "samples": guided.cpu(),
        "unguided": free.cpu(),
        "phi_samples": pg,
        "phi_unguided": pf,
        "kept_error": matching.masked_phi_error(pg, tp, mask),
        "free_error": matching.masked_phi_error(pg, tp, ~mask),
        "kept_error_unguided": matching.masked_phi_error(pf, tp, mask),
        "free_error_unguided": matching.masked_phi_error(pf, tp, ~mask),
        "diagnostics": diag,
    }
    return res, masked_figure(res, title)


def _mean(v: torch.Tensor) -> str:
    m = float(v.mean()) if v.numel() else float("nan")
    return "-" if math.isnan(m) else f"{m:.2f}"


def masked_figure(res: Mapping[str, Any], title: str = "") -> Figure:
    """The masked view's figure: target, guided and unguided samples, and phi of each on kept / free channels."""
    g, u = res["samples"], res["unguided"]
    n = g.shape[0]
    fig = Figure(figsize=(max(1.3 * (1 + 2 * n), 7.5), 4.6), layout="constrained")
    top = [["target"] + [f"g{i}" for i in range(n)] + [f"u{i}" for i in range(n)]]
    axd = fig.subplot_mosaic(top + [["phi"] * (1 + 2 * n)], height_ratios=[1, 1.25])
    show_image(axd["target"], res["target"], "target")
    for i in range(n):
        show_image(axd[f"g{i}"], g[i], f"guided {i + 1}")
        show_image(axd[f"u{i}"], u[i], f"unguided {i + 1}")
    mask, tp = res["mask"], res["target_phi"]
    order = tp.argsort(descending=True, stable=True)
    x = np.arange(len(tp))
    ax = axd["phi"]
    kept = mask[order].numpy()
    ax.bar(x[kept], tp[order][kept].numpy(), width=1.0, color="tab:orange", label=f"target, kept ({res['kept']})")
    ax.bar(x[~kept], tp[order][~kept].numpy(), width=1.0, color="0.75", label=f"target, free ({len(tp) - res['kept']})")
    ax.plot(x, res["phi_samples"].mean(0)[order].numpy(), ".", ms=3, color="tab:blue", label="guided samples (mean)")
    ax.plot(
        x, res["phi_unguided"].mean(0)[order].numpy(), ".", ms=2, color="k", alpha=0.5, label="unguided samples (mean)"
    )
    ax.set_xlim(-0.5, len(tp) - 0.5)
    ax.set_xlabel("middle-block channel, by the target's φ (largest first)")
    ax.set_ylabel("φ (σ = 0)")
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    ax.grid(alpha=0.3, axis="y")
    fig.suptitle(
        (f"guided on {title}\n" if title else "") + f"relative φ error on kept channels "
        f"{_mean(res['kept_error'])} (unguided {_mean(res['kept_error_unguided'])}), on free channels "
        f"{_mean(res['free_error'])} "
        f"(unguided {_mean(res['free_error_unguided'])})",
        fontsize=9,
    )
    return fig
