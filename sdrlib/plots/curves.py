"""Figures of numbers: PSNR and training curves, sweeps, phi as bars, histograms, frequency curves, lines, 2-D maps."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .common import figure_axes


def psnr_curves(
    rows_by_method: Mapping[str, Sequence[dict]], ax: Axes | None = None, noisy: bool = True, title: str | None = None
) -> Figure:
    """Denoised PSNR versus sigma, one line per method (log sigma axis); the noisy input as a dashed line."""
    if not rows_by_method:
        raise ValueError("psnr_curves needs at least one method")
    fig, ax = figure_axes(ax, (5.5, 3.6))
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
    fig, ax = figure_axes(ax, (5.0, 3.2))
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
    fig, ax = figure_axes(ax, (5.0, 3.0))
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
    fig, ax = figure_axes(ax, (5.0, 3.0))
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
    fig, ax = figure_axes(ax, (5.0, 3.0))
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
    fig, ax = figure_axes(ax, (4.6, 4.2))
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
