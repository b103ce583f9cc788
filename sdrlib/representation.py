"""The representation phi of SPEC section 2, and the baseline features it is compared with.

phi_sigma(x) = E_z[ spatial mean of a_block(x + sigma z) ], estimated by averaging over
``n_noise`` draws of z (one clean pass when sigma = 0). ``block`` is "mid" (the paper's
choice) or any other block of the UNet ("enc1".., "dec1"..). Every draw takes an explicit
``torch.Generator``, so the same seed gives the same phi.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from tqdm.auto import tqdm

from . import utils
from .noise import check_sigma
from .unet import UNet


@torch.no_grad()
def block_means(model: UNet, y: torch.Tensor, blocks: Sequence[str]) -> dict[str, torch.Tensor]:
    """Spatial means (N, C) of the post-ReLU outputs of ``blocks`` for one batch of noisy images y (the
    network runs only as far as the deepest block: encoder and middle block for "mid")."""
    return {b: a.mean(dim=(2, 3)) for b, a in model.features(y, blocks).items()}


def noise_for(index: torch.Tensor, shape: Sequence[int], n_noise: int, seed: int = 0) -> torch.Tensor:
    """The noise draws z of images by their index in the set analysed, (n_noise, N, *shape): image i's draws
    depend only on (seed, i), so any subset of a result can be recomputed, and every sigma reuses them."""
    return torch.stack(
        [
            utils.randn((n_noise, *shape), torch.Generator().manual_seed(seed * 1_000_003 + int(i)))
            for i in index.tolist()
        ],
        dim=1,
    )


@torch.no_grad()
def phi_change(
    model: UNet, images: torch.Tensor, sigmas: Sequence[float], n_noise: int = 20, seed: int = 0
) -> list[float]:
    """How far noise moves phi (SPEC 2): the mean over images of ||phi_sigma(x) - phi_0(x)|| / ||phi_0(x)||, per
    sigma (0 at sigma 0)."""
    phi_0 = phi(model, images, 0.0)
    scale = phi_0.norm(dim=1).clamp(min=1e-12)
    return [((phi(model, images, s, n_noise, seed=seed) - phi_0).norm(dim=1) / scale).mean().item() for s in sigmas]


@torch.no_grad()
def phi_blocks(
    model: UNet,
    images: torch.Tensor,
    sigma: float = 0.0,
    n_noise: int = 20,
    blocks: Sequence[str] = ("mid",),
    seed: int = 0,
    batch: int = 256,
    progress: bool = False,
    index: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """phi_sigma of several blocks at once: {block: (N, C_block)}, the spatial means of each block averaged
    over n_noise draws of y = x + sigma z (SPEC 2); one clean pass when sigma = 0. ``index`` names the images
    (default 0..N-1) for their noise draws (``noise_for``)."""
    check_sigma(sigma)
    if n_noise < 1:
        raise ValueError(f"n_noise must be >= 1, got {n_noise}")
    draws = 1 if sigma == 0 else n_noise
    index = torch.arange(images.shape[0]) if index is None else torch.as_tensor(index)
    dev = utils.model_device(model)
    was_training = model.training
    model.eval()
    sums: dict[str, list[torch.Tensor]] = {b: [] for b in blocks}
    for i in tqdm(range(0, images.shape[0], batch), disable=not progress, desc=f"phi sigma={sigma:.3g}", leave=False):
        x = images[i : i + batch].to(dev)
        z = noise_for(index[i : i + batch], x.shape[1:], draws, seed).to(dev) if sigma > 0 else None
        acc: dict[str, torch.Tensor] = {}
        for d in range(draws):
            y = (x + sigma * z[d] if z is not None else x).contiguous(memory_format=torch.channels_last)
            for b, m in block_means(model, y, blocks).items():
                acc[b] = acc[b] + m if b in acc else m
        for b in blocks:
            sums[b].append((acc[b] / draws).cpu())
    model.train(was_training)
    return {b: torch.cat(v) for b, v in sums.items()}


def phi(
    model: UNet,
    images: torch.Tensor,
    sigma: float = 0.0,
    n_noise: int = 20,
    block: str = "mid",
    seed: int = 0,
    batch: int = 256,
    progress: bool = False,
) -> torch.Tensor:
    """phi_sigma(x) of one block (default the middle block): an (N, C) non-negative tensor (SPEC 2)."""
    return phi_blocks(model, images, sigma, n_noise, (block,), seed, batch, progress)[block]


def phi_grid(
    model: UNet,
    images: torch.Tensor,
    sigmas: Sequence[float],
    n_noise: int = 20,
    blocks: Sequence[str] = ("mid",),
    seed: int = 0,
    batch: int = 256,
    progress: bool = False,
    index: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """phi on a grid of noise levels: {block: (S, N, C)}; the same noise draws, scaled, at every sigma (the one
    way the library tabulates phi over sigma: the samplers' targets and the cached grids use it)."""
    out: dict[str, list[torch.Tensor]] = {b: [] for b in blocks}
    for s in tqdm(list(sigmas), disable=not progress, desc="sigma grid"):
        res = phi_blocks(model, images, float(s), n_noise, blocks, seed, batch, index=index)
        for b in blocks:
            out[b].append(res[b])
    return {b: torch.stack(v) for b, v in out.items()}


# ------------------------------------------------------------------ baseline features


def pixels(images: torch.Tensor) -> torch.Tensor:
    """Raw pixels as features (N, C*H*W): the first baseline for distances."""
    return images.flatten(1).clone()


def colour_stats(images: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and standard deviation (N, 2C): a trivial global-statistics baseline."""
    return torch.cat([images.mean(dim=(2, 3)), images.std(dim=(2, 3))], dim=1)


@torch.no_grad()
def texture_stats(images: torch.Tensor, n_scales: int | None = None, batch: int = 64) -> torch.Tensor:
    """Portilla-Simoncelli texture statistics of each colour channel (plenoptic), flattened (N, D): the classic
    texture representation, a baseline for distances between texture patches (n_scales: 3 at 64 px, 2 at 32)."""
    try:
        from plenoptic.models import PortillaSimoncelli
    except ImportError as e:
        raise ImportError(
            "texture statistics need plenoptic: pip install -r requirements.txt "
            "(it pins plenoptic==2.1.1 beside the CPU torch)"
        ) from e
    h, w = images.shape[-2:]
    n_scales = n_scales or max(1, int(math.log2(min(h, w))) - 3)
    model = PortillaSimoncelli((h, w), n_scales=n_scales, spatial_corr_width=7)
    out = [model(images[i : i + batch].float()).flatten(1) for i in range(0, images.shape[0], batch)]
    return torch.nan_to_num(torch.cat(out))


# ------------------------------------------------------------------ subsets of a data set


def random_indices(n_total: int, n: int, seed: int) -> torch.Tensor:
    """The sorted indices of ``n`` images drawn from a set of ``n_total`` by ``seed`` (all when n >= n_total)."""
    if n >= n_total:
        return torch.arange(n_total)
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def stratified_indices(labels: torch.Tensor, n_classes: int, per_class: int, seed: int) -> torch.Tensor:
    """The sorted indices of ``per_class`` images of each of ``n_classes`` classes (the first classes of a
    seeded shuffle among those with enough images): a subset on which nearest neighbours are meaningful."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.bincount(labels)
    ok = torch.nonzero(counts >= per_class).squeeze(1)
    chosen = ok[torch.randperm(len(ok), generator=g)[:n_classes]]
    out = [
        torch.nonzero(labels == c).squeeze(1)[torch.randperm(int(counts[c]), generator=g)[:per_class]]
        for c in chosen.tolist()
    ]
    return torch.cat(out).sort().values


# ------------------------------------------------------------------ all representations of a study


def untrained_like(model: UNet, seed: int = 0) -> UNet:
    """A freshly initialised network of the same architecture: the control for every claim."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = UNet(model.cfg)
    return fresh.to(utils.model_device(model)).eval()


def features(
    model: UNet,
    images: torch.Tensor,
    sigma: float = 0.0,
    n_noise: int = 20,
    blocks: Sequence[str] | None = None,
    control: UNet | None = None,
    seed: int = 0,
    batch: int = 256,
) -> dict[str, torch.Tensor]:
    """Every representation compared in chapters 2-3 for one set of images, keyed by a readable name.

    "phi <block>" for each block of the trained model, "untrained phi <block>" for the
    control network (same noise draws), and the baselines "pixels" and "colour stats".
    """
    blocks = list(blocks or model.block_names)
    out = {f"phi {b}": v for b, v in phi_blocks(model, images, sigma, n_noise, blocks, seed, batch).items()}
    if control is not None:
        out.update(
            {
                f"untrained phi {b}": v
                for b, v in phi_blocks(control, images, sigma, n_noise, blocks, seed, batch).items()
            }
        )
    out["pixels"] = pixels(images)
    out["colour stats"] = colour_stats(images)
    return out
