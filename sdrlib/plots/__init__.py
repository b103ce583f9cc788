"""Figure and table helpers shared by the chapters (matplotlib only; every figure helper returns its Figure).

Images are NCHW tensors (or CHW / HW arrays) in [0, 1]; greyscale is shown with a grey colormap. The parts:
``common`` (shared helpers), ``images`` (figures of images), ``curves`` (figures of numbers), ``tables``
(Markdown tables)."""

from .common import figure_axes, short_label, show_image, to_hwc
from .curves import (
    frequency_curves,
    histograms,
    lines,
    phi_bars,
    psnr_curves,
    scatter_2d,
    sweep_curves,
    training_curves,
)
from .images import activation_maps, image_grid, neighbour_rows, sigma_grid
from .tables import markdown_table, psnr_markdown

__all__ = [
    "activation_maps",
    "figure_axes",
    "frequency_curves",
    "histograms",
    "image_grid",
    "lines",
    "markdown_table",
    "neighbour_rows",
    "phi_bars",
    "psnr_curves",
    "psnr_markdown",
    "scatter_2d",
    "short_label",
    "show_image",
    "sigma_grid",
    "sweep_curves",
    "to_hwc",
    "training_curves",
]
