"""Helpers every figure shares: an image as an array, a figure and its axes, a short panel label."""

from __future__ import annotations

import matplotlib.pyplot as plt
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


def figure_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """The figure of ``ax``, or a new figure with one axes of ``figsize`` (constrained layout)."""
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
