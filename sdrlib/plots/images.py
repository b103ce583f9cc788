"""Figures of images: grids, a noise-level grid with PSNRs, a channel's activation maps, neighbour rows."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .common import show_image, to_hwc


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
