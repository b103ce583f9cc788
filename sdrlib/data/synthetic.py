"""Synthetic sets: ovals of one aspect ratio per class, and colour geometric shapes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .common import _torch_rng, resize, source_counts
from .imageset import ImageSet
from .registry import register

# --------------------------------------------------------------------------- ovals

OVAL_RATIOS = (0.2, 0.5, 1.0, 2.0, 5.0)
OVAL_PROBE_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0) + tuple(
    1 / r for r in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)
)


def _grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates (y, x) of an n x n canvas, shapes (n, 1) and (1, n)."""
    c = torch.arange(n, dtype=torch.float32) + 0.5
    return c[:, None], c[None, :]


def _draw_ovals(
    ratio: float, n: int, canvas: int, n_ovals: int, area: tuple[float, float], softness: float, g: torch.Generator
) -> torch.Tensor:
    """n grey canvases (N,1,H,W) each with n_ovals soft axis-aligned ovals of width/height ``ratio``."""
    yy, xx = _grid(canvas)
    img = torch.full((n, 1, canvas, canvas), 0.5)
    for _ in range(n_ovals):
        a_px = area[0] + (area[1] - area[0]) * torch.rand(n, 1, 1, 1, generator=g)
        a = torch.sqrt(a_px * ratio / math.pi)  # horizontal semi-axis
        b = torch.sqrt(a_px / (ratio * math.pi))  # vertical semi-axis
        cx = a + (canvas - 2 * a) * torch.rand(n, 1, 1, 1, generator=g)
        cy = b + (canvas - 2 * b) * torch.rand(n, 1, 1, 1, generator=g)
        u = 0.7 * torch.rand(n, 1, 1, 1, generator=g)
        value = torch.where(u < 0.35, u, u + 0.3)  # in [0, .35] or [.65, 1]: never close to the 0.5 background
        X, Y = xx - cx, yy - cy
        rho = torch.sqrt((X / a) ** 2 + (Y / b) ** 2)
        grad = torch.sqrt((X / a**2) ** 2 + (Y / b**2) ** 2).clamp_min(1e-6)
        dist = (1 - rho) * rho / grad  # signed distance to the boundary, exact to first order near it
        alpha = torch.sigmoid(dist / softness)
        img = img * (1 - alpha) + value * alpha
    return img


@register(
    "ovals",
    "Grey 80x80 canvases of ~20 soft ovals of one aspect ratio (SPEC 5); class = ratio",
    how_to_get="nothing to get: the ovals are drawn from the seed",
)
def ovals(
    split: str,
    size: int | None,
    seed: int,
    n_per_class: int | None = None,
    ratios: tuple[float, ...] = OVAL_RATIOS,
    canvas: int = 80,
    n_ovals: int = 20,
    area: tuple[float, float] = (60.0, 100.0),
    softness: float = 0.5,
) -> ImageSet:
    """Synthetic ovals: each image holds ``n_ovals`` ovals of one width/height ratio, axis-aligned (so that
    ratios r and 1/r are different classes), areas uniform in ``area`` pixels, intensities in [0,.35] or
    [.65,1] on a 0.5 grey background, later ovals occluding earlier ones, edges a sigmoid of ``softness`` px.

    ``n_per_class`` defaults to 1000 (train) / 200 (test); train and test draw from different seeds.
    Pass ``ratios=OVAL_PROBE_RATIOS`` for the probe ratios 0.1..1 and their inverses.
    """
    n = n_per_class or (1000 if split == "train" else 200)
    if not ratios or min(ratios) <= 0:
        raise ValueError(f"ratios must be positive, got {ratios}")
    chunks, labels = [], []
    for k, r in enumerate(ratios):
        g = _torch_rng(seed, split, "ovals", float(r))
        chunks += [_draw_ovals(float(r), min(256, n - i), canvas, n_ovals, area, softness, g) for i in range(0, n, 256)]
        labels.append(torch.full((n,), k, dtype=torch.int64))
    x = resize(torch.cat(chunks).clamp_(0, 1), size)
    meta = {
        "canvas": str(canvas),
        "n_ovals": str(n_ovals),
        "area_px": f"{area[0]:g}-{area[1]:g}",
        "orientation": "axis-aligned; ratio = width / height",
        "licence": "generated (MIT, this project)",
        "source_counts": source_counts({"generated": (n * len(ratios), len(ratios))}),
    }
    return ImageSet("ovals", x.contiguous(), torch.cat(labels), [f"ratio {r:.3g}" for r in ratios], meta)


# --------------------------------------------------------------------------- shapes

SHAPE_CLASSES = ("circle", "square", "triangle", "star", "cross", "ring")
SHAPE_COLOURS = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.7, 0.2),
    "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.85, 0.1),
    "magenta": (0.85, 0.2, 0.8),
    "cyan": (0.1, 0.8, 0.85),
    "white": (0.97, 0.97, 0.97),
    "black": (0.03, 0.03, 0.03),
}


def _shape_mask(kind: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside-test (bool) of a unit-circumradius shape at shape-frame coordinates (u, v)."""
    r = torch.sqrt(u**2 + v**2)
    if kind == "circle":
        return r <= 1
    if kind == "square":
        return torch.maximum(u.abs(), v.abs()) <= 1 / math.sqrt(2)
    if kind == "triangle":  # equilateral: three half-planes at apothem 1/2
        return (
            torch.stack(
                [u * math.cos(t) + v * math.sin(t) for t in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)]
            ).amax(0)
            <= 0.5
        )
    if kind == "star":  # five points, inner radius 0.45: fold the angle into one half-point sector
        sector = 2 * math.pi / 5
        t = torch.remainder(torch.atan2(v, u), sector)
        t = torch.minimum(t, sector - t)
        px, py = r * torch.cos(t), r * torch.sin(t)
        ix, iy = 0.45 * math.cos(sector / 2), 0.45 * math.sin(sector / 2)  # inner vertex; outer is (1, 0)
        return (ix - 1) * py - iy * (px - 1) >= 0  # on the origin's side of the outer-inner edge
    if kind == "cross":
        return ((u.abs() <= 0.3) & (v.abs() <= 1)) | ((v.abs() <= 0.3) & (u.abs() <= 1))
    if kind == "ring":
        return (r <= 1) & (r >= 0.55)
    raise ValueError(f"unknown shape {kind!r}")


def _smooth_noise(n: int, canvas: int, g: torch.Generator) -> torch.Tensor:
    """Smooth coloured random backgrounds (N,3,H,W): a grey level plus low-frequency colour noise."""
    base = 0.25 + 0.5 * torch.rand(n, 1, 1, 1, generator=g)
    coarse = F.interpolate(
        torch.rand(n, 3, 4, 4, generator=g) - 0.5, size=(canvas, canvas), mode="bicubic", align_corners=False
    )
    fine = F.interpolate(
        torch.rand(n, 3, 12, 12, generator=g) - 0.5, size=(canvas, canvas), mode="bicubic", align_corners=False
    )
    return (base + 0.35 * coarse + 0.15 * fine).clamp(0, 1)


def _draw_shapes(kind: str, n: int, canvas: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n canvases (N,3,H,W) with one shape each over a smooth background; also the colour index of each."""
    ss = 2 * canvas  # the shape's coverage is rendered at twice the size, then area-downsampled
    yy, xx = _grid(ss)
    radius = ss * (0.2 + 0.2 * torch.rand(n, 1, 1, generator=g))
    cx = radius + (ss - 2 * radius) * torch.rand(n, 1, 1, generator=g)
    cy = radius + (ss - 2 * radius) * torch.rand(n, 1, 1, generator=g)
    theta = 2 * math.pi * torch.rand(n, 1, 1, generator=g)
    X, Y = (xx - cx) / radius, (cy - yy) / radius
    u, v = X * torch.cos(theta) + Y * torch.sin(theta), -X * torch.sin(theta) + Y * torch.cos(theta)
    cover = F.avg_pool2d(_shape_mask(kind, u, v).float().unsqueeze(1), 2)
    colour_idx = torch.randint(len(SHAPE_COLOURS), (n,), generator=g)
    palette = torch.tensor(list(SHAPE_COLOURS.values()))
    colour = (palette[colour_idx] + 0.05 * torch.randn(n, 3, generator=g)).clamp(0, 1)[:, :, None, None]
    return _smooth_noise(n, canvas, g) * (1 - cover) + colour * cover, colour_idx


@register(
    "shapes",
    "Colour geometric shapes (6 classes) on smooth noise backgrounds; groups = colour",
    how_to_get="nothing to get: the shapes are drawn from the seed",
)
def shapes(split: str, size: int | None, seed: int, n_per_class: int | None = None, canvas: int = 64) -> ImageSet:
    """One shape per image (circle, square, triangle, star, cross, ring) with random colour (one of
    SHAPE_COLOURS, jittered), circumradius 20-40% of the canvas, position and rotation, over a smooth
    random-noise background. ``n_per_class`` defaults to 1000 (train) / 200 (test); ``groups`` = colour.
    """
    n = n_per_class or (1000 if split == "train" else 200)
    xs, labels, colours = [], [], []
    for k, kind in enumerate(SHAPE_CLASSES):
        g = _torch_rng(seed, split, "shapes", kind)
        for i in range(0, n, 256):
            x, c = _draw_shapes(kind, min(256, n - i), canvas, g)
            xs.append(x)
            colours.append(c)
        labels.append(torch.full((n,), k, dtype=torch.int64))
    x = resize(torch.cat(xs).clamp_(0, 1), size)
    meta = {
        "canvas": str(canvas),
        "licence": "generated (MIT, this project)",
        "source_counts": source_counts({"generated": (n * len(SHAPE_CLASSES), len(SHAPE_CLASSES))}),
    }
    return ImageSet(
        "shapes", x.contiguous(), torch.cat(labels), list(SHAPE_CLASSES), meta, torch.cat(colours), list(SHAPE_COLOURS)
    )
