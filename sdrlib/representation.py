"""The representation phi of SPEC section 2, and the baseline features it is compared with.

phi_sigma(x) = E_z[ spatial mean of a_block(x + sigma z) ], estimated by averaging over
``n_noise`` draws of z (one clean pass when sigma = 0). ``block`` is "mid" (the paper's
choice) or any other block of the UNet ("enc1".., "dec1"..). Every draw takes an explicit
``torch.Generator``, so the same seed gives the same phi.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
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


# ------------------------------------------------------------------ disk cache


def cache_key(checkpoint_sha: str, dataset: str, **params) -> str:
    """A short hash naming a phi result by checkpoint weights, data set and parameters."""
    blob = json.dumps({"ckpt": checkpoint_sha, "data": dataset, **params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


FEATURES = "features"  # a reference's committed cache: checkpoints/<name>/features/<key>.safetensors


def cached(
    key: str, compute, cache_dir: str | Path | None = None, meta: dict | None = None, half: bool = False
) -> dict[str, torch.Tensor]:
    """Load a dict of tensors saved under ``key``, or compute, save (atomically) and return it. ``meta`` (the
    parameters that made it) is stored in the file's header; ``half`` stores float16 (returned as float32)."""
    from safetensors.torch import load_file, save_file

    root = Path(cache_dir) if cache_dir else utils.cache_dir("phi")
    f = root / f"{key}.safetensors"
    if f.is_file():
        return {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(f)).items()}
    res = compute()
    root.mkdir(parents=True, exist_ok=True)
    store = {k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in res.items()}
    header = {"meta": json.dumps(meta, default=str)} if meta else None
    utils.atomic_write(f, lambda p: save_file(store, str(p), metadata=header))
    return {k: v.float() if v.is_floating_point() else v for k, v in store.items()} if half else res


def cache_meta(path: str | Path) -> dict:
    """The parameters stored in a cached result's header (see ``cached``)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return json.loads((f.metadata() or {}).get("meta", "{}"))


def rows(n_total: int, n: int, seed: int) -> torch.Tensor:
    """The sorted indices of ``n`` images drawn from a set of ``n_total`` by ``seed`` (all when n >= n_total)."""
    if n >= n_total:
        return torch.arange(n_total)
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def stratified_rows(labels: torch.Tensor, n_classes: int, per_class: int, seed: int) -> torch.Tensor:
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


def cache_folder(ck, where: str) -> Path | None:
    """Where a checkpoint's features are cached: beside the reference ("reference") or in the user cache."""
    if where == "reference":
        return Path(ck.path) / FEATURES
    if where == "user":
        return None
    raise ValueError(f"cache must be 'reference' or 'user', got {where!r}")


def checkpoint_features(
    checkpoint,
    split: str = "test",
    n: int = 1000,
    sigma: float = 0.2,
    n_noise: int = 4,
    blocks: Sequence[str] | None = None,
    seed: int = 0,
    control: bool = True,
    control_seed: int = 0,
    cache: bool = True,
    where: str = "user",
    texture: bool = False,
    data_name: str | None = None,
    **data_kwargs,
):
    """(features, images) for ``n`` images of a checkpoint's data set: every block of the trained model,
    the untrained control and the baselines (with ``texture``, the Portilla-Simoncelli statistics too); cached
    by checkpoint hash, data fingerprint and parameters, in the user cache or beside the reference
    (``where="reference"``, float16, committed with it).

    ``seed`` picks the images and the noise draws; the control network depends on ``control_seed`` only,
    so that features of different image sets (e.g. train and test) come from the same control network.
    """
    from . import checkpoints, data

    ck = checkpoint if isinstance(checkpoint, checkpoints.Checkpoint) else checkpoints.load(checkpoint)
    name = data_name or ck.config["train"]["data"]
    if data_name is None:
        full = checkpoints.load_data(ck, split, **data_kwargs)  # refused if this machine's data differ
    else:
        full = data.load(name, split, **{**checkpoints.data_kwargs(ck.config), **data_kwargs})
    idx = rows(len(full), n, seed)
    images = full.take(idx) if len(idx) < len(full) else full
    blocks = list(blocks or ck.model.block_names)
    params = dict(
        kind="features",
        split=split,
        n=n,
        sigma=sigma,
        n_noise=n_noise,
        blocks=blocks,
        seed=seed,
        texture=texture,
        control=control_seed if control else None,
        data=name,
        data_kwargs=data_kwargs,
        fingerprint=full.fingerprint()["sha256"],
        weights=ck.weights,
        checkpoint=ck.sha256,
    )
    key = cache_key(ck.sha256, name, **params)

    def compute() -> dict[str, torch.Tensor]:
        ctrl = untrained_like(ck.model, control_seed) if control else None
        out = {
            f"phi {b}": v
            for b, v in phi_blocks(ck.model, images.images, sigma, n_noise, blocks, seed, index=idx).items()
        }
        if ctrl is not None:
            out.update(
                {
                    f"untrained phi {b}": v
                    for b, v in phi_blocks(ctrl, images.images, sigma, n_noise, blocks, seed, index=idx).items()
                }
            )
        if texture:
            out["texture stats"] = texture_stats(images.images)
        return {**out, "rows": idx}

    feats = cached(key, compute, cache_folder(ck, where), params, half=where == "reference") if cache else compute()
    order = [f"phi {b}" for b in blocks] + [f"untrained phi {b}" for b in blocks] + ["texture stats"]
    out = {k: feats[k] for k in order if k in feats}  # the disk cache does not keep key order
    out["pixels"], out["colour stats"] = pixels(images.images), colour_stats(images.images)
    return out, images


def checkpoint_grid(
    checkpoint,
    sigmas: Sequence[float],
    split: str = "test",
    n_classes: int = 30,
    per_class: int = 10,
    n_noise: int = 20,
    seed: int = 0,
    control: bool = True,
    control_seed: int = 0,
    where: str = "user",
) -> tuple[dict[str, torch.Tensor], "object"]:
    """phi of the middle block on a grid of noise levels, {"phi mid": (S, N, C), "untrained phi mid": ...},
    for ``per_class`` images of ``n_classes`` classes (so that neighbours are meaningful), cached like
    ``checkpoint_features``; also returns those images."""
    from . import checkpoints

    ck = checkpoint if isinstance(checkpoint, checkpoints.Checkpoint) else checkpoints.load(checkpoint)
    full = checkpoints.load_data(ck, split)
    idx = stratified_rows(full.labels, n_classes, per_class, seed)
    images = full.take(idx)
    params = dict(
        kind="grid",
        split=split,
        sigmas=[float(s) for s in sigmas],
        n_classes=n_classes,
        per_class=per_class,
        n_noise=n_noise,
        seed=seed,
        control=control_seed if control else None,
        data=ck.config["train"]["data"],
        fingerprint=full.fingerprint()["sha256"],
        weights=ck.weights,
        checkpoint=ck.sha256,
    )
    key = cache_key(ck.sha256, params["data"], **params)

    def compute() -> dict[str, torch.Tensor]:
        nets = {
            "phi mid": ck.model,
            **({"untrained phi mid": untrained_like(ck.model, control_seed)} if control else {}),
        }
        out = {
            k: phi_grid(m, images.images, sigmas, n_noise, ("mid",), seed, index=idx)["mid"] for k, m in nets.items()
        }
        return {**out, "rows": idx}

    feats = cached(key, compute, cache_folder(ck, where), params, half=where == "reference")
    return {k: v for k, v in feats.items() if k != "rows"}, images


def control_phi(
    checkpoint,
    control_seeds: Sequence[int],
    split: str = "test",
    n: int = 1000,
    sigma: float = 0.2,
    n_noise: int = 4,
    block: str = "mid",
    seed: int = 0,
    where: str = "user",
) -> list[torch.Tensor]:
    """phi of one block from several untrained networks of the checkpoint's architecture (one per control seed),
    on the same images and noise draws as ``checkpoint_features`` with the same ``split, n, sigma, n_noise, seed``:
    the control networks over which the claims' intervals resample. Each network's result is cached on its own."""
    from . import checkpoints

    ck = checkpoint if isinstance(checkpoint, checkpoints.Checkpoint) else checkpoints.load(checkpoint)
    if block not in ck.model.block_names:
        raise ValueError(f"block {block!r} is not one of {ck.model.block_names}")
    full = checkpoints.load_data(ck, split)
    idx = rows(len(full), n, seed)
    images = full.take(idx) if len(idx) < len(full) else full
    out = []
    for cs in control_seeds:
        params = dict(
            kind="control phi",
            split=split,
            n=n,
            sigma=sigma,
            n_noise=n_noise,
            block=block,
            seed=seed,
            control=int(cs),
            data=ck.config["train"]["data"],
            fingerprint=full.fingerprint()["sha256"],
            weights=ck.weights,
            checkpoint=ck.sha256,
        )
        key = cache_key(ck.sha256, params["data"], **params)

        def compute(cs: int = int(cs)) -> dict[str, torch.Tensor]:
            net = untrained_like(ck.model, cs)
            got = phi_blocks(net, images.images, sigma, n_noise, (block,), seed, index=idx)
            return {"phi": got[block], "rows": idx}

        out.append(cached(key, compute, cache_folder(ck, where), params, half=where == "reference")["phi"])
    return out


def runs_phi(
    runs: dict,
    split: str = "test",
    n: int = 1000,
    sigma: float = 0.2,
    n_noise: int = 4,
    block: str = "mid",
    seed: int = 0,
    where: str = "user",
    device: str | torch.device = "cpu",
    control: bool = False,
) -> dict[str, torch.Tensor]:
    """phi of one block for several trained runs on the same images ({name: checkpoint name, folder or loaded
    Checkpoint} -> {name: (N, C)}): training snapshots or training seeds, each cached beside its run (``control``:
    the cache computed with the untrained twin, as ``checkpoint_features`` makes it by default)."""
    from . import checkpoints

    out = {}
    for name, run in runs.items():
        ck = run if isinstance(run, checkpoints.Checkpoint) else checkpoints.load(run, device=device)
        f, _ = checkpoint_features(ck, split, n, sigma, n_noise, [block], seed, control=control, where=where)
        out[name] = f[f"phi {block}"]
    return out
