"""Figure and table helpers shared by the chapters (matplotlib only; every figure helper returns its Figure).

Images are NCHW tensors (or CHW / HW arrays) in [0, 1]; greyscale is shown with a grey colormap.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def to_hwc(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """One image (CHW or HW, tensor or array) as an HxW or HxWx3 float array clipped to [0, 1]."""
    a = img.detach().cpu().float().numpy() if isinstance(img, torch.Tensor) else np.asarray(img, dtype=np.float32)
    if a.ndim == 3:
        if a.shape[0] not in (1, 3):
            raise ValueError(f"expected a CHW image with 1 or 3 channels, got shape {a.shape}")
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    elif a.ndim != 2:
        raise ValueError(f"expected a CHW or HW image, got shape {a.shape}")
    return np.clip(a, 0, 1)


def _figure(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def short_label(name: str, width: int = 14) -> str:
    """A class name short enough for a panel title: a texture photograph's name without its source
    ("ufoai:ctp1/dirt_b_1" -> "dirt_b_1"), cut to ``width`` characters with an ellipsis."""
    if ":" in name:
        name = name.split(":", 1)[1].rsplit("/", 1)[-1]
    return name if len(name) <= width else name[: width - 1] + "…"


def show_image(ax: Axes, img: torch.Tensor | np.ndarray, title: str | None = None) -> None:
    """Draw one image on ax without ticks (grey colormap for one channel)."""
    a = to_hwc(img)
    ax.imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=8)


def image_grid(
    images: torch.Tensor | Sequence,
    nrow: int,
    titles: Sequence[str] | None = None,
    ax: Axes | None = None,
    row_labels: Sequence[str] | None = None,
    scale: float = 1.1,
    suptitle: str | None = None,
) -> Figure:
    """Images in a grid of ``nrow`` images per row (torchvision's convention); optional titles and row labels.

    With ``ax`` given, the grid is tiled into one image drawn on that axis (titles are then ignored).
    """
    n = len(images)
    if n == 0:
        raise ValueError("image_grid needs at least one image")
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} images")
    cols, rows = min(nrow, n), math.ceil(n / nrow)
    if ax is not None:
        return _tiled(images, cols, rows, ax, suptitle)
    fig, axes = plt.subplots(
        rows, cols, figsize=(scale * cols, scale * rows + (0.3 if suptitle else 0)), squeeze=False, layout="constrained"
    )
    for k, a in enumerate(axes.flat):
        if k < n:
            show_image(a, images[k], titles[k] if titles is not None else None)
        else:
            a.axis("off")
    if row_labels is not None:
        for r, label in enumerate(row_labels[:rows]):
            axes[r, 0].set_ylabel(label, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def _tiled(images, cols: int, rows: int, ax: Axes, title: str | None) -> Figure:
    """Tile images into one array with 1-pixel white gaps and draw it on ax."""
    arrs = [to_hwc(im) for im in images]
    h, w = arrs[0].shape[:2]
    colour = any(a.ndim == 3 for a in arrs)
    canvas = np.ones(
        (rows * (h + 1) - 1, cols * (w + 1) - 1, 3) if colour else (rows * (h + 1) - 1, cols * (w + 1) - 1)
    )
    for k, a in enumerate(arrs):
        r, c = divmod(k, cols)
        if colour and a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = a
    show_image(ax, canvas.transpose(2, 0, 1) if colour else canvas, title)
    return ax.figure


def sigma_grid(
    clean: torch.Tensor,
    results: Mapping[str, torch.Tensor],
    sigmas: Sequence[float],
    psnrs: Mapping[str, torch.Tensor] | None = None,
    scale: float = 1.1,
) -> Figure:
    """Denoising across noise levels: for each image, a "clean" row, then one row per entry of ``results``.

    ``clean`` is (N, C, H, W); each ``results[name]`` is (S, N, C, H, W) for the S ``sigmas`` (e.g. "noisy",
    then each denoiser); ``psnrs[name]`` (S, N), if given, is printed under each panel.
    """
    S, N = len(sigmas), clean.shape[0]
    for name, r in results.items():
        if r.shape[:2] != (S, N):
            raise ValueError(f"results[{name!r}] has shape {tuple(r.shape)}; expected ({S}, {N}, C, H, W)")
    names = ["clean", *results]
    fig, axes = plt.subplots(
        N * len(names), S, figsize=(scale * S + 0.8, scale * N * len(names)), squeeze=False, layout="constrained"
    )
    for i in range(N):
        for j, s in enumerate(sigmas):
            for k, name in enumerate(names):
                a = axes[i * len(names) + k, j]
                img = clean[i] if name == "clean" else results[name][j, i]
                label = None
                if psnrs is not None and name in psnrs:
                    label = f"{float(psnrs[name][j, i]):.1f} dB"
                show_image(a, img)
                if label:
                    a.set_xlabel(label, fontsize=7, labelpad=1)
                if i == 0 and k == 0:
                    a.set_title(f"σ = {s:g}", fontsize=9)
                if j == 0:
                    a.set_ylabel(name, fontsize=8)
    return fig


def psnr_curves(
    rows_by_method: Mapping[str, Sequence[dict]], ax: Axes | None = None, noisy: bool = True, title: str | None = None
) -> Figure:
    """Denoised PSNR versus sigma, one line per method (log sigma axis); the noisy input as a dashed line."""
    if not rows_by_method:
        raise ValueError("psnr_curves needs at least one method")
    fig, ax = _figure(ax, (5.5, 3.6))
    first = None
    for name, rows in rows_by_method.items():
        s = [r["sigma"] for r in rows]
        ax.plot(s, [r["psnr_denoised"] for r in rows], marker="o", ms=4, label=name)
        first = first or rows
    if noisy:
        ax.plot([r["sigma"] for r in first], [r["psnr_noisy"] for r in first], "k--", lw=1, label="noisy input")
    ax.set_xscale("log")
    ax.set_xticks([r["sigma"] for r in first], [f"{r['sigma']:g}" for r in first])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("noise level σ (images in [0, 1])")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def training_curves(log: Sequence[dict], title: str | None = None) -> Figure:
    """Training loss per logged step (left) and held-out PSNR per sigma over steps (right) from a JSONL log."""
    losses = [r for r in log if "loss" in r]
    evals = [r for r in log if "eval" in r]
    if not losses and not evals:
        raise ValueError("the training log holds no loss and no eval records")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    if losses:
        a1.plot([r["step"] for r in losses], [r["loss"] for r in losses], lw=1)
        a1.set_yscale("log")
    a1.set_xlabel("step")
    a1.set_ylabel("training loss (MSE)")
    a1.grid(alpha=0.3, which="both")
    if evals:
        sigmas = [row["sigma"] for row in evals[-1]["eval"]]
        steps = [r["step"] for r in evals]
        for k, s in enumerate(sigmas):
            (line,) = a2.plot(steps, [r["eval"][k]["psnr_denoised"] for r in evals], marker=".", label=f"σ = {s:g}")
            a2.axhline(evals[-1]["eval"][k]["psnr_noisy"], color=line.get_color(), ls=":", lw=0.8)
        a2.legend(fontsize=7, ncol=2)
    a2.set_xlabel("step")
    a2.set_ylabel("held-out PSNR (dB); dotted: noisy")
    a2.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def sweep_curves(
    results: Mapping[float, Sequence[dict]], xlabel: str, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Denoised PSNR versus a swept parameter (x), one line per sigma; input {x: psnr_table rows}."""
    if not results:
        raise ValueError("sweep_curves needs at least one parameter value")
    fig, ax = _figure(ax, (5.0, 3.2))
    xs = sorted(results)
    sigmas = [r["sigma"] for r in results[xs[0]]]
    for k, s in enumerate(sigmas):
        ys = [results[x][k]["psnr_denoised"] for x in xs]
        (line,) = ax.plot(xs, ys, marker="o", ms=4, label=f"σ = {s:g}")
        ax.plot(xs[int(np.argmax(ys))], max(ys), "*", ms=11, color=line.get_color())
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def markdown_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None, floatfmt: str = ".2f") -> str:
    """Rows of dicts as a Markdown table (floats formatted with ``floatfmt``, integers with thousands separators)."""
    if not rows:
        raise ValueError("markdown_table needs at least one row")
    cols = list(columns or rows[0].keys())

    def cell(v) -> str:
        if isinstance(v, float):
            return format(v, floatfmt)
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def psnr_markdown(tables: Mapping[str, Sequence[dict]], floatfmt: str = ".2f") -> str:
    """A psnr_versus_sigma result as a Markdown table: one row per sigma, the noisy input and every method."""
    names = list(tables)
    first = tables[names[0]]
    rows = []
    for k, r in enumerate(first):
        row = {"σ": f"{r['sigma']:g}", "σ × 255": f"{r['sigma'] * 255:.1f}", "noisy": r["psnr_noisy"]}
        row.update({n: tables[n][k]["psnr_denoised"] for n in names})
        rows.append(row)
    return markdown_table(rows, floatfmt=floatfmt)


# ------------------------------------------------------------------ representation figures (chapters 2-3)


def phi_bars(
    phis: Mapping[str, torch.Tensor], order: torch.Tensor | None = None, title: str | None = None, height: float = 1.3
) -> Figure:
    """One bar plot of a phi vector (C,) per entry, channels in a shared ``order`` (e.g. by frequency)."""
    if not phis:
        raise ValueError("phi_bars needs at least one vector")
    fig, axes = plt.subplots(
        len(phis), 1, figsize=(10, height * len(phis) + 0.4), squeeze=False, layout="constrained", sharex=True
    )
    for ax, (name, v) in zip(axes[:, 0], phis.items()):
        v = v.detach().cpu().float()
        v = v[order] if order is not None else v
        ax.bar(np.arange(len(v)), v.numpy(), width=1.0, color="tab:blue")
        ax.set_ylabel("φ", fontsize=8)
        ax.set_title(name, fontsize=8, loc="left")
        ax.grid(alpha=0.3, axis="y")
    axes[-1, 0].set_xlabel("channel" + (" (shared order)" if order is not None else ""))
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def histograms(
    values: Mapping[str, torch.Tensor],
    xlabel: str,
    bins: int = 40,
    ax: Axes | None = None,
    title: str | None = None,
    range_: tuple[float, float] | None = None,
) -> Figure:
    """Overlaid histograms of several 1-D samples (e.g. per-image active fraction, trained vs untrained)."""
    fig, ax = _figure(ax, (5.0, 3.0))
    for name, v in values.items():
        ax.hist(v.detach().cpu().float().numpy(), bins=bins, range=range_, alpha=0.55, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def frequency_curves(
    freqs: Mapping[str, torch.Tensor],
    bands: tuple[float, float] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Each channel's activation frequency, sorted, one curve per representation; bands mark the split."""
    fig, ax = _figure(ax, (5.0, 3.0))
    for name, f in freqs.items():
        f = f.detach().cpu().float().sort(descending=True).values.numpy()
        ax.plot(np.arange(len(f)) / max(len(f) - 1, 1), f, label=name)
    if bands is not None:
        ax.axhspan(0, bands[0], color="tab:green", alpha=0.08, label=f"selective (< {bands[0]:g})")
        ax.axhspan(bands[1], 1, color="tab:red", alpha=0.08, label=f"non-selective (> {bands[1]:g})")
    ax.set_xlabel("channels, sorted (fraction of all)")
    ax.set_ylabel("fraction of images where active")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def activation_maps(
    image: torch.Tensor, maps: torch.Tensor, titles: Sequence[str], scale: float = 1.4, suptitle: str | None = None
) -> Figure:
    """An image beside the spatial maps (K, h, w) of some of its channels, each map on its own colour scale."""
    k = maps.shape[0]
    fig, axes = plt.subplots(1, k + 1, figsize=(scale * (k + 1), scale + 0.5), squeeze=False, layout="constrained")
    show_image(axes[0, 0], image, "image")
    for a, m, t in zip(axes[0, 1:], maps.detach().cpu().float(), titles):
        a.imshow(m.numpy(), cmap="magma", interpolation="nearest")
        a.set_xticks([])
        a.set_yticks([])
        a.set_title(t, fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return fig


def lines(
    x: Sequence[float],
    ys: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    ax: Axes | None = None,
    title: str | None = None,
    logx: bool = False,
    styles: Mapping[str, str] | None = None,
) -> Figure:
    """Several named curves over a shared x (noise level, training step, ...)."""
    fig, ax = _figure(ax, (5.0, 3.0))
    for name, y in ys.items():
        ax.plot(list(x), list(y), (styles or {}).get(name, "-o"), ms=3, label=name)
    if logx:
        ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def scatter_2d(
    xy: np.ndarray,
    labels: torch.Tensor,
    names: Sequence[str],
    ax: Axes | None = None,
    title: str | None = None,
    max_legend: int = 12,
) -> Figure:
    """A 2-D map coloured by label (legend for up to ``max_legend`` classes)."""
    fig, ax = _figure(ax, (4.6, 4.2))
    lab = labels.cpu().numpy()
    uniq = np.unique(lab)
    cmap = plt.get_cmap("tab10" if len(uniq) <= 10 else "tab20" if len(uniq) <= 20 else "nipy_spectral")
    for j, c in enumerate(uniq):
        m = lab == c
        ax.scatter(
            xy[m, 0],
            xy[m, 1],
            s=5,
            color=cmap(j / max(len(uniq) - 1, 1) if len(uniq) > 20 else j),
            label=names[c] if len(uniq) <= max_legend else None,
            alpha=0.8,
        )
    if len(uniq) <= max_legend:
        ax.legend(fontsize=6, markerscale=2, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def neighbour_rows(
    queries: torch.Tensor,
    base: torch.Tensor,
    idx_by_space: Mapping[str, torch.Tensor],
    scale: float = 0.9,
    suptitle: str | None = None,
) -> Figure:
    """For each query image, one row per feature space: the query, then its nearest base images."""
    spaces = list(idx_by_space)
    nq, k = idx_by_space[spaces[0]].shape
    fig, axes = plt.subplots(
        nq * len(spaces),
        k + 1,
        figsize=(scale * (k + 1), scale * nq * len(spaces) + 0.4),
        squeeze=False,
        layout="constrained",
    )
    for q in range(nq):
        for s, space in enumerate(spaces):
            row = axes[q * len(spaces) + s]
            show_image(row[0], queries[q])
            row[0].set_ylabel(space, fontsize=7)
            for j in range(k):
                show_image(row[j + 1], base[idx_by_space[space][q, j]])
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig
