"""The book's cached features of a checkpoint (SPEC 2 and the chapters' controls).

phi of every block, of untrained control networks, on a sigma grid and across a reference's trained seeds, for a
seeded subset of a checkpoint's data set; each result is computed once and kept in a safetensors file named by a
hash of the checkpoint's weights, the data's fingerprint and the parameters. ``cache_in="reference"`` keeps it beside
a shipped reference (float16, committed with it), ``cache_in="user"`` in the user cache.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import torch

from . import checkpoints, data, utils
from .representation import (
    colour_stats,
    phi_blocks,
    phi_grid,
    pixels,
    random_indices,
    stratified_indices,
    texture_stats,
    untrained_like,
)


def _as_checkpoint(checkpoint) -> checkpoints.Checkpoint:
    """A loaded checkpoint from a Checkpoint, a reference's name or a folder."""
    return checkpoint if isinstance(checkpoint, checkpoints.Checkpoint) else checkpoints.load(checkpoint)


def _subset(full: data.ImageSet, n: int, seed: int) -> tuple[torch.Tensor, data.ImageSet]:
    """The seeded ``n`` images of a set that a cached result covers: their indices and the images."""
    idx = random_indices(len(full), n, seed)
    return idx, (full.take(idx) if len(idx) < len(full) else full)


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


def cache_folder(ck, cache_in: str) -> Path | None:
    """Where a checkpoint's features are cached: beside the reference ("reference") or in the user cache."""
    if cache_in == "reference":
        return Path(ck.path) / FEATURES
    if cache_in == "user":
        return None
    raise ValueError(f"cache_in must be 'reference' or 'user', got {cache_in!r}")


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
    cache_in: str = "user",
    texture: bool = False,
    data_name: str | None = None,
    **data_kwargs,
):
    """(features, images) for ``n`` images of a checkpoint's data set: every block of the trained model,
    the untrained control and the baselines (with ``texture``, the Portilla-Simoncelli statistics too); cached
    by checkpoint hash, data fingerprint and parameters, in the user cache or beside the reference
    (``cache_in="reference"``, float16, committed with it).

    ``seed`` picks the images and the noise draws; the control network depends on ``control_seed`` only,
    so that features of different image sets (e.g. train and test) come from the same control network.
    """
    ck = _as_checkpoint(checkpoint)
    name = data_name or ck.config["train"]["data"]
    if data_name is None:
        full = checkpoints.load_data(ck, split, **data_kwargs)  # refused if this machine's data differ
    else:
        full = data.load(name, split, **{**checkpoints.training_data_kwargs(ck.config), **data_kwargs})
    idx, images = _subset(full, n, seed)
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

    feats = (
        cached(key, compute, cache_folder(ck, cache_in), params, half=cache_in == "reference") if cache else compute()
    )
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
    cache_in: str = "user",
) -> tuple[dict[str, torch.Tensor], "object"]:
    """phi of the middle block on a grid of noise levels, {"phi mid": (S, N, C), "untrained phi mid": ...},
    for ``per_class`` images of ``n_classes`` classes (so that neighbours are meaningful), cached like
    ``checkpoint_features``; also returns those images."""
    ck = _as_checkpoint(checkpoint)
    full = checkpoints.load_data(ck, split)
    idx = stratified_indices(full.labels, n_classes, per_class, seed)
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

    feats = cached(key, compute, cache_folder(ck, cache_in), params, half=cache_in == "reference")
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
    cache_in: str = "user",
) -> list[torch.Tensor]:
    """phi of one block from several untrained networks of the checkpoint's architecture (one per control seed),
    on the same images and noise draws as ``checkpoint_features`` with the same ``split, n, sigma, n_noise, seed``:
    the control networks over which the claims' intervals resample. Each network's result is cached on its own."""
    ck = _as_checkpoint(checkpoint)
    if block not in ck.model.block_names:
        raise ValueError(f"block {block!r} is not one of {ck.model.block_names}")
    full = checkpoints.load_data(ck, split)
    idx, images = _subset(full, n, seed)
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

        out.append(cached(key, compute, cache_folder(ck, cache_in), params, half=cache_in == "reference")["phi"])
    return out


def runs_phi(
    runs: dict,
    split: str = "test",
    n: int = 1000,
    sigma: float = 0.2,
    n_noise: int = 4,
    block: str = "mid",
    seed: int = 0,
    cache_in: str = "user",
    device: str | torch.device = "cpu",
    control: bool = False,
) -> dict[str, torch.Tensor]:
    """phi of one block for several trained runs on the same images ({name: checkpoint name, folder or loaded
    Checkpoint} -> {name: (N, C)}): training snapshots or training seeds, each cached beside its run (``control``:
    the cache computed with the untrained twin, as ``checkpoint_features`` makes it by default)."""
    out = {}
    for name, run in runs.items():
        ck = run if isinstance(run, checkpoints.Checkpoint) else checkpoints.load(run, device=device)
        f, _ = checkpoint_features(ck, split, n, sigma, n_noise, [block], seed, control=control, cache_in=cache_in)
        out[name] = f[f"phi {block}"]
    return out


def classical_psnr(
    checkpoint,
    images,
    index: torch.Tensor,
    sigmas: Sequence[float],
    methods: dict[str, str],
    seed: int = 0,
    workers: int = 1,
    cache_in: str = "user",
) -> dict[str, torch.Tensor]:
    """Per-image PSNR of the classical denoisers {method: (S, N)} on the images ``index`` of a held-out
    ``ImageSet``, each told the true sigma, with the noise draws of ``evaluate.psnr_table`` at ``seed`` (chapter
    1's comparison); computed once and kept beside the reference (BM3D is the slow part)."""
    from . import baselines

    params = dict(
        kind="classical",
        data=checkpoint.config["train"]["data"],
        fingerprint=images.fingerprint()["sha256"],
        rows=index.tolist(),
        sigmas=list(sigmas),
        seed=seed,
        methods=methods,
        nlm=baselines.NLM_H_FACTOR,
    )

    def compute() -> dict[str, torch.Tensor]:
        t = baselines.psnr_versus_sigma(
            methods, images.images[index], sigmas, seed=seed, workers=workers, per_image=True
        )
        return {m: torch.stack([r["per_image"] for r in rs]) for m, rs in t.items()}

    key = cache_key("classical", params["data"], **params)
    return cached(key, compute, cache_folder(checkpoint, cache_in), params)
