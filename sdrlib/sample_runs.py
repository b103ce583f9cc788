"""Sample sets of a reference (chapter 4): drawn once with a sampler of SPEC 4, cached beside the reference
(``checkpoints/<name>/features/``, images in float16, with the parameters that made them), so the book
re-reads them instead of re-sampling; and the measures that score them without using phi."""

from __future__ import annotations

import math
import time

import torch

from . import analysis, feature_cache, matching, representation, sampling, sparsity, targets, utils

TARGET_SIGMAS = (0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.45, 0.65, 1.0)  # phi_sigma(target) grid


def _run(ck, params: dict, draw, cache_in: str) -> dict[str, torch.Tensor]:
    """Cache the tensors ``draw()`` returns (and the seconds it took per sample) under the parameters."""
    key = feature_cache.cache_key(ck.sha256, ck.config["train"]["data"], **params)

    def compute() -> dict[str, torch.Tensor]:
        t0 = time.perf_counter()
        out = draw()
        out["seconds_per_sample"] = torch.tensor([(time.perf_counter() - t0) / len(out["samples"])])
        return out

    return feature_cache.cached(
        key, compute, feature_cache.cache_folder(ck, cache_in), params, half=cache_in == "reference"
    )


def _params(ck, kind: str, **kw) -> dict:
    return {"kind": f"samples-{kind}", "checkpoint": ck.sha256, "weights": ck.weights, **kw}


def target_images(ck, rows: torch.Tensor) -> torch.Tensor:
    """The held-out images (test split) at ``rows``: the conditioning images of the self-guided samplers."""
    return _own_data(ck, "test").images[rows]


def target_rows(ck, n_targets: int, seed: int = 0) -> torch.Tensor:
    """At least ``n_targets`` held-out target rows, as many from each class as it takes over at most that many
    classes (``representation.stratified_indices``): claims 5-6 read 30; fewer (10) give one per class."""
    labels = _own_data(ck, "test").labels
    n_classes = min(n_targets, int((torch.bincount(labels) > 0).sum()))
    return representation.stratified_indices(labels, n_classes, math.ceil(n_targets / n_classes), seed)


def _own_data(ck, split: str):
    """The checkpoint's own data set (``checkpoints.load_data``; imported here, as checkpoints imports this
    package's modules)."""
    from . import checkpoints

    return checkpoints.load_data(ck, split)


GUIDES = ("phi", "untrained phi", "pixel pca")  # what the fixed-schedule sampler matches (claim 5: phi and controls)
PCA_IMAGES = 5000  # training images the pixel-PCA guide is fitted on, at most


def guided_params(
    ck,
    rows: torch.Tensor,
    n_per: int,
    schedule: list[float],
    lr: float = 0.01,
    max_iter: int = 100,
    n_noise_target: int = 10,
    seed: int = 0,
    guide: str = "phi",
    control_seed: int = 0,
    pca_images: int = PCA_IMAGES,
    channels: list[int] | None = None,
    pca_k: int | None = None,
) -> dict:
    """The parameters that name a ``guided`` run in the cache. The guide and its settings enter only when the
    guide is not the default ("phi"), so the runs cached before control guides existed keep their keys; so do
    the restrictions of a healthy-fraction reading (``guide_restriction``), the ``channels`` matched and the
    ``pca_k`` coefficients, which enter only when there is one."""
    if guide not in GUIDES:
        raise ValueError(f"unknown guide {guide!r}; expected one of {GUIDES}")
    params = _params(
        ck,
        "guided",
        rows=rows.tolist(),
        n_per=n_per,
        schedule=[float(s) for s in schedule],
        lr=lr,
        max_iter=max_iter,
        n_noise_target=n_noise_target,
        seed=seed,
    )
    if guide == "untrained phi":
        params.update(guide=guide, control_seed=control_seed)
    elif guide == "pixel pca":
        params.update(guide=guide, control_seed=control_seed, pca_images=pca_images)
    if channels is not None and guide != "pixel pca":
        params["channels"] = [int(c) for c in channels]
    if pca_k is not None and guide == "pixel pca":
        params["pca_k"] = int(pca_k)
    return params


LIVE_READING = {"n": 1000, "sigma": 0.196, "n_noise": 4, "seed": 0}  # training images on which live channels are read


def live_channels(ck, live: float, control_seed: int | None = None, cache_in: str = "user") -> torch.Tensor | None:
    """A network's healthy fraction (#24), as chapter 3 reads it: the (C,) bool mask of the middle channels not
    dead by the relative rule at ``live`` (``sparsity.relative_dead``) on training images (``LIVE_READING``, never
    the held-out targets), of the trained network or, with ``control_seed``, of its untrained twin
    (``representation.untrained_like``); None when ``live`` is 0 (every channel)."""
    if live < 0:
        raise ValueError(f"live must be >= 0 (0: every channel), got {live}")
    if live == 0:
        return None
    control = control_seed is not None
    f, _ = feature_cache.checkpoint_features(
        ck, "train", blocks=["mid"], control=control, control_seed=control_seed or 0, cache_in=cache_in, **LIVE_READING
    )
    return ~sparsity.relative_dead(f["untrained phi mid" if control else "phi mid"].float(), live)


def live_masks(
    ck, live: float, control_seeds: list[int], cache_in: str = "user"
) -> tuple[torch.Tensor | None, list[torch.Tensor | None]]:
    """``live_channels`` of a trained network and of its untrained twins, one per control seed (claim 6's
    distances on a healthy fraction); None: every channel."""
    return live_channels(ck, live, cache_in=cache_in), [live_channels(ck, live, s, cache_in) for s in control_seeds]


def guide_restriction(
    ck, guide: str, live: float, control_seed: int = 0, cache_in: str = "user"
) -> tuple[list[int] | None, int | None]:
    """What a healthy-fraction reading (``live`` > 0) changes in a guide: the live ``channels`` its network's phi is
    matched on ("phi": the trained network's; "untrained phi": the untrained network's own), or for "pixel pca" as
    many coefficients ``pca_k`` as the trained network has live channels, so that the control never has more
    dimensions than the phi it faces. (None, None) when nothing is restricted."""
    if guide not in GUIDES:
        raise ValueError(f"unknown guide {guide!r}; expected one of {GUIDES}")
    mask = live_channels(ck, live, control_seed if guide == "untrained phi" else None, cache_in)
    if mask is None or bool(mask.all()):
        return None, None
    if guide == "pixel pca":
        return None, int(mask.sum())
    return mask.nonzero().squeeze(1).tolist(), None


def pixel_pca(ck, k: int | None = None, pca_images: int = PCA_IMAGES, seed: int = 0) -> matching.PixelPCA:
    """The pixel statistic of the "pixel pca" guide: the ``k`` leading PCA coefficients (default: as many as the
    middle block has channels, the dimension of phi) of a seeded subset of at most ``pca_images`` training images
    of the checkpoint's data set, centred by their mean image. ``k`` is clamped to the pixel dimension C*H*W (and
    to the subset's size minus one); ``len()`` of the result says how many were kept."""
    from . import checkpoints

    train = checkpoints.load_data(ck, "train").images
    idx = representation.random_indices(len(train), pca_images, seed)
    return matching.fit_pixel_pca(train[idx], k or ck.model.cfg.mid_width)


def guide_for(
    ck,
    images: torch.Tensor,
    n_per: int,
    guide: str = "phi",
    n_noise_target: int = 10,
    seed: int = 0,
    control_seed: int = 0,
    pca_images: int = PCA_IMAGES,
    channels: list[int] | None = None,
    pca_k: int | None = None,
) -> tuple[targets.Target, matching.PhiFn | None]:
    """What the fixed-schedule sampler matches for each conditioning image (``n_per`` samples each): the target
    and the statistic (``None``: the sampled network's own phi).

    - "phi": the trained network's phi (SPEC 4), tabulated on ``TARGET_SIGMAS`` with ``n_noise_target`` draws;
    - "untrained phi": the phi of ``representation.untrained_like(ck.model, control_seed)``, its target from that
      network on the same sigma grid and the same noise draws; the trained network still denoises;
    - "pixel pca": ``pixel_pca(ck, pca_images=pca_images, seed=control_seed)`` (as many coefficients as phi has
      channels, or ``pca_k``), its target the clean image's coefficients at every sigma (linear statistic, zero-mean
      noise).

    ``channels``: the phi guides match these channels only (``targets.Target.masked``), the others left free."""
    if guide not in GUIDES:
        raise ValueError(f"unknown guide {guide!r}; expected one of {GUIDES}")
    dev = utils.model_device(ck.model)
    images = images.to(dev)

    def restrict(t: targets.Target) -> targets.Target:
        return t if channels is None else t.masked(torch.tensor(channels, dtype=torch.long))

    if guide == "phi":
        t = targets.image_target(ck.model, images, n_per, n_noise_target, grid=TARGET_SIGMAS, seed=seed)
        return restrict(t), None
    if guide == "untrained phi":
        net = representation.untrained_like(ck.model, control_seed)
        target = targets.image_target(net, images, n_per, n_noise_target, grid=TARGET_SIGMAS, seed=seed)
        return restrict(target), matching.network_phi(net)
    pca = pixel_pca(ck, k=pca_k, pca_images=pca_images, seed=control_seed).to(dev)
    return targets.pca_target(pca, images, n_per, TARGET_SIGMAS), pca


def guided(
    ck,
    rows: torch.Tensor,
    n_per: int,
    schedule: list[float],
    lr: float = 0.01,
    max_iter: int = 100,
    n_noise_target: int = 10,
    seed: int = 0,
    cache_in: str = "user",
    guide: str = "phi",
    control_seed: int = 0,
    pca_images: int = PCA_IMAGES,
    live: float = 0.0,
) -> dict[str, torch.Tensor]:
    """``n_per`` fixed-schedule self-guided samples per target, the held-out images at ``rows`` (SPEC 4), with
    the sampler's diagnostics per step and sample: effective sigma, loss of the matched statistic before and
    after each matching.

    ``guide`` picks what is matched (see ``guide_for``): "phi" (the paper's sampler, the default), or one of claim
    5's controls, "untrained phi" (an untrained network's phi, network seed ``control_seed``) or "pixel pca" (as
    many leading pixel-PCA coefficients as phi has channels, fitted on at most ``pca_images`` training images drawn
    with ``control_seed``). The denoiser, schedule, starting image and noise draws are the same for every guide.
    With ``live`` > 0 (a run read on its healthy fraction), each guide is restricted by ``guide_restriction``.
    Cached under ``guided_params`` (a default-guide run keeps the key it had before guides existed)."""
    dev = utils.model_device(ck.model)
    channels, pca_k = guide_restriction(ck, guide, live, control_seed, cache_in)
    params = guided_params(
        ck, rows, n_per, schedule, lr, max_iter, n_noise_target, seed, guide, control_seed, pca_images, channels, pca_k
    )

    def draw() -> dict[str, torch.Tensor]:
        target, phi_fn = guide_for(
            ck, target_images(ck, rows), n_per, guide, n_noise_target, seed, control_seed, pca_images, channels, pca_k
        )
        x, d = sampling.fixed_schedule(
            ck.model,
            mean_colour(ck).to(dev),
            target,
            len(rows) * n_per,
            schedule,
            lr,
            max_iter,
            generator=torch.Generator().manual_seed(seed),
            phi_fn=phi_fn,
        )
        return {
            "samples": x.clamp(0, 1).cpu(),
            "sigma": d.sigma,
            "loss_before": d.loss_before,
            "loss_after": d.loss_after,
            "match_iterations": d.match_iterations,
        }

    return _run(ck, params, draw, cache_in)


def control_guided(
    ck,
    rows: torch.Tensor,
    n_per: int,
    schedule: list[float],
    lr: float,
    max_iter: int,
    n_noise_target: int,
    seed: int,
    control_seeds: list[int],
    cache_in: str = "user",
    live: float = 0.0,
) -> dict[str, list[dict[str, torch.Tensor]]]:
    """Claim 5's control guides on a trained network's targets ``rows``, each a ``guided`` run with the same
    sampler settings: "untrained phi", one run per control seed, and "pixel pca", one run."""

    def run(guide: str, control_seed: int = 0) -> dict[str, torch.Tensor]:
        return guided(ck, rows, n_per, schedule, lr, max_iter, n_noise_target, seed, cache_in, guide, control_seed,
                      live=live)  # fmt: skip

    return {"untrained phi": [run("untrained phi", s) for s in control_seeds], "pixel pca": [run("pixel pca")]}


def adaptive(
    ck, rows: torch.Tensor, n_per: int, ascent: dict, n_noise_target: int = 10, seed: int = 0, cache_in: str = "user"
) -> dict[str, torch.Tensor]:
    """``n_per`` adaptive self-guided samples per target (the ascent with phi matching after every step)."""
    dev = utils.model_device(ck.model)
    params = _params(
        ck, "adaptive", rows=rows.tolist(), n_per=n_per, ascent=ascent, n_noise_target=n_noise_target, seed=seed
    )

    def draw() -> dict[str, torch.Tensor]:
        target = targets.image_target(
            ck.model, target_images(ck, rows).to(dev), n_per, n_noise_target, grid=TARGET_SIGMAS, seed=seed
        )
        x, d = sampling.ascent(
            ck.model,
            mean_colour(ck).to(dev),
            len(rows) * n_per,
            sampling.AscentConfig(**ascent),
            target=target,
            generator=torch.Generator().manual_seed(seed),
        )
        return {"samples": x.clamp(0, 1).cpu(), "iterations": d.iterations, "converged": d.converged.long()}

    return _run(ck, params, draw, cache_in)


def unconditional(ck, n: int, ascent: dict, seed: int = 0, cache_in: str = "user") -> dict[str, torch.Tensor]:
    """``n`` unconditional samples of the ascent (Kadkhodaie & Simoncelli 2021), the control of chapter 4."""
    dev = utils.model_device(ck.model)
    params = _params(ck, "unconditional", n=n, ascent=ascent, seed=seed)

    def draw() -> dict[str, torch.Tensor]:
        x, d = sampling.unconditional(
            ck.model, mean_colour(ck).to(dev), n, sampling.AscentConfig(**ascent), torch.Generator().manual_seed(seed)
        )
        return {"samples": x.clamp(0, 1).cpu(), "iterations": d.iterations, "sigma": d.sigma}

    return _run(ck, params, draw, cache_in)


def mean_colour(ck) -> torch.Tensor:
    """The constant image at the training set's mean colour, where every sampler starts (SPEC 4)."""
    from . import checkpoints

    return sampling.mean_image(checkpoints.load_data(ck, "train").images)


def floor_rows(labels: torch.Tensor, target_rows: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Held-out rows for the no-copy floor of each target's class: up to ``per_class`` images of that class,
    the targets themselves left out, drawn with a seeded shuffle."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for c in labels[target_rows].unique().tolist():
        pool = torch.nonzero(labels == c).squeeze(1)
        pool = pool[~torch.isin(pool, target_rows)]
        out.append(pool[torch.randperm(len(pool), generator=g)[:per_class]])
    return torch.cat(out).sort().values


def no_copy(
    samples: torch.Tensor,
    train: torch.Tensor,
    held_out: torch.Tensor,
    sample_labels: torch.Tensor | None = None,
    held_out_labels: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Each sample's RMS distance to its nearest training image, and the same for held-out images: the
    honest floor (a held-out image was never seen, so a sample this close to a training image is no copy).

    With labels, also the floor of each sample's own class (the median over held-out images of that class)
    and the sample's distance over it: RMS distances scale with an image's contrast, so a flat texture's
    unseen crops sit as close to the training set as a copy of a busy one would."""
    d_s, i_s = analysis.nearest_image(samples, train)
    d_h, _ = analysis.nearest_image(held_out, train)
    out = {"samples": d_s, "nearest": i_s, "held_out": d_h}
    if sample_labels is None:
        return out
    if held_out_labels is None or len(held_out_labels) != len(held_out):
        raise ValueError("no_copy: held_out_labels must give one label per held-out image")
    floors = {}
    for c in sample_labels.unique().tolist():
        own = d_h[held_out_labels == c]
        if len(own) == 0:
            raise ValueError(f"no_copy: no held-out image of class {c}, so its floor is unknown")
        floors[c] = own.median()
    out["class_floor"] = torch.stack([floors[c] for c in sample_labels.tolist()])
    out["ratio"] = d_s / out["class_floor"]
    return out
