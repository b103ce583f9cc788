"""Classical denoisers that the blind UNet is compared with (book chapter 1).

Unlike the blind network, each of them is told the true noise level sigma. They work image by
image on NCHW tensors (1 channel: greyscale, 3 channels: colour) and return tensors of the same
shape, dtype and device. :func:`psnr_versus_sigma` scores several denoisers on the same noisy images.

Non-local means uses the filtering strength h = ``NLM_H_FACTOR`` * sigma, the factor of smallest worst-case
shortfall (:func:`least_regret_factor`) in an :func:`nlm_h_sweep` over factors 0.4-1.2 and sigma 0.05-0.4 on 64
Fashion-MNIST *training* images (a choice reads no test image): the best factor falls from 0.8 at sigma 0.05 to 0.5
at sigma 0.4, and 0.6 is at most 0.23 dB below it at every sigma (0.7: 0.38 dB). It was first picked the same way
on 64 test images, with the same result. Chapter 1 re-makes the choice on training images and checks, on its own
test images, that the factor is within 0.5 dB of the best.

BM3D runs single-threaded: the library's own thread pool doubled its time per image here, and each call
carries a fixed cost (about half a second on this CPU even for a 32x32 image), so large evaluations
should pass ``workers`` (threads over images; the compiled denoisers release the GIL).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from .evaluate import DEFAULT_SIGMAS, denoise, psnr_table
from .noise import add_noise, check_sigma, psnr

NLM_H_FACTOR = 0.6
NLM_PATCH_SIZE = 5
NLM_PATCH_DISTANCE = 6

Denoiser = Callable[[torch.Tensor, float], torch.Tensor]


def _check_images(y: torch.Tensor) -> None:
    """Raise ValueError unless y is an NCHW tensor with 1 or 3 channels."""
    if not isinstance(y, torch.Tensor) or y.ndim != 4 or y.shape[1] not in (1, 3):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"expected an (N, 1 or 3, H, W) tensor of noisy images, got {shape}")


def _per_image(
    y: torch.Tensor, sigma: float, fn: Callable[[np.ndarray, float, bool], np.ndarray], workers: int = 1
) -> torch.Tensor:
    """Apply fn(image HxW or HxWx3 float64, sigma, colour) to every image of an NCHW batch, on ``workers`` threads."""
    _check_images(y)
    check_sigma(sigma)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    colour = y.shape[1] == 3
    arr = y.detach().to("cpu", torch.float64).numpy()
    out = np.empty_like(arr)

    def one(i: int) -> None:
        img = arr[i].transpose(1, 2, 0) if colour else arr[i, 0]
        res = np.asarray(fn(img, float(sigma), colour), dtype=np.float64)
        out[i] = res.transpose(2, 0, 1) if colour else res

    if workers == 1:
        for i in range(arr.shape[0]):
            one(i)
    else:  # the compiled denoisers release the GIL, so threads run them in parallel
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(arr.shape[0])))
    return torch.from_numpy(out).to(device=y.device, dtype=y.dtype)


def wavelet(y: torch.Tensor, sigma: float, workers: int = 1) -> torch.Tensor:
    """Wavelet soft thresholding with BayesShrink thresholds (Chang, Yu & Vetterli 2000)."""
    from skimage.restoration import denoise_wavelet

    def one(img: np.ndarray, s: float, colour: bool) -> np.ndarray:
        if s == 0:
            return img
        return denoise_wavelet(
            img, sigma=s, method="BayesShrink", mode="soft", rescale_sigma=True, channel_axis=-1 if colour else None
        )

    return _per_image(y, sigma, one, workers)


def nlm(y: torch.Tensor, sigma: float, h_factor: float = NLM_H_FACTOR, workers: int = 1) -> torch.Tensor:
    """Non-local means with patch 5, search distance 6, h = h_factor * sigma (Buades, Coll & Morel 2005)."""
    from skimage.restoration import denoise_nl_means

    if not h_factor > 0:
        raise ValueError(f"h_factor must be positive, got {h_factor}")

    def one(img: np.ndarray, s: float, colour: bool) -> np.ndarray:
        if s == 0:
            return img
        return denoise_nl_means(
            img,
            patch_size=NLM_PATCH_SIZE,
            patch_distance=NLM_PATCH_DISTANCE,
            h=h_factor * s,
            sigma=s,
            fast_mode=True,
            preserve_range=True,
            channel_axis=-1 if colour else None,
        )

    return _per_image(y, sigma, one, workers)


def bm3d(y: torch.Tensor, sigma: float, workers: int = 1) -> torch.Tensor:
    """Block-matching and 3-D collaborative filtering, BM3D (Dabov et al. 2007); bm3d_rgb for colour."""
    import bm3d as _bm3d

    profile = _bm3d.BM3DProfile()  # the default ("np") profile,
    profile.num_threads = 1  # single-threaded: the library's own thread pool doubled the time per image here

    def one(img: np.ndarray, s: float, colour: bool) -> np.ndarray:
        if s == 0:
            return img
        if colour:
            return _bm3d.bm3d_rgb(img, sigma_psd=s, profile=profile)
        return _bm3d.bm3d(img, sigma_psd=s, profile=profile)

    return _per_image(y, sigma, one, workers)


METHODS: dict[str, Denoiser] = {"wavelet": wavelet, "nlm": nlm, "bm3d": bm3d}


def get(name: str) -> Denoiser:
    """The classical denoiser called ``name`` (one of METHODS)."""
    if name not in METHODS:
        raise ValueError(f"unknown baseline {name!r}; expected one of {sorted(METHODS)}")
    return METHODS[name]


def _as_sigma_denoiser(name: str, d: torch.nn.Module | str | Denoiser, workers: int = 1) -> Denoiser:
    """Any accepted denoiser as f(y, sigma): a module ignores sigma (it is blind); a baseline name runs on workers."""
    if isinstance(d, torch.nn.Module):
        return lambda y, s: denoise(d, y)
    if isinstance(d, str):
        fn = get(d)
        return lambda y, s: fn(y, s, workers=workers)
    if not callable(d):
        raise ValueError(f"denoiser {name!r} must be a module, a baseline name or a callable, got {type(d).__name__}")
    return d


def psnr_versus_sigma(
    denoisers: Mapping[str, torch.nn.Module | str | Denoiser],
    images: torch.Tensor,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    seed: int = 1234,
    workers: int = 1,
    per_image: bool = False,
) -> dict[str, list[dict]]:
    """PSNR-versus-sigma table of several denoisers on the same noisy images (chapter 1's comparison).

    A ``torch.nn.Module`` is blind (it sees only y); a string names a baseline of METHODS; any other
    callable is called as f(y, sigma); named baselines run on ``workers`` threads. Every method gets the
    noisy images that ``evaluate.psnr_table(..., sigmas, seed)`` draws, so the rows are directly comparable.
    """
    if not denoisers:
        raise ValueError("psnr_versus_sigma needs at least one denoiser")
    out: dict[str, list[dict]] = {}
    for name, d in denoisers.items():
        if isinstance(d, torch.nn.Module):
            out[name] = psnr_table(d, images, sigmas, seed=seed, per_image=per_image)
            continue
        fn = _as_sigma_denoiser(name, d, workers)
        # psnr_table seeds the k-th sigma with seed + k: one call per sigma with seed + k draws the same noise.
        out[name] = [
            psnr_table(lambda y, s=float(s): fn(y, s), images, [s], seed=seed + k, per_image=per_image)[0]
            for k, s in enumerate(sigmas)
        ]
    return out


@torch.no_grad()
def denoise_examples(
    denoisers: Mapping[str, torch.nn.Module | str | Denoiser],
    images: torch.Tensor,
    sigmas: Sequence[float],
    seed: int = 1234,
    workers: int = 1,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Noisy inputs and every denoiser's outputs, (S, N, C, H, W), with per-image PSNRs (S, N), for figures.

    The noise draws are those of ``psnr_versus_sigma`` / ``evaluate.psnr_table`` with the same seed.
    """
    fns = {name: _as_sigma_denoiser(name, d, workers) for name, d in denoisers.items()}
    out: dict[str, list[torch.Tensor]] = {"noisy": [], **{n: [] for n in fns}}
    for k, s in enumerate(sigmas):
        check_sigma(s)
        y = add_noise(images, float(s), torch.Generator().manual_seed(seed + k))  # psnr_table's k-th draw
        out["noisy"].append(y)
        for name, fn in fns.items():
            out[name].append(fn(y, float(s)).clamp(0, 1))
    stacks = {n: torch.stack(v) for n, v in out.items()}
    psnrs = {n: torch.stack([psnr(v[j], images) for j in range(len(sigmas))]) for n, v in stacks.items()}
    return stacks, psnrs


def nlm_h_sweep(
    images: torch.Tensor, sigmas: Sequence[float], factors: Sequence[float], seed: int = 1234, workers: int = 1
) -> dict[float, list[dict]]:
    """PSNR of non-local means for each h factor (h = factor * sigma), to choose NLM_H_FACTOR."""
    return {
        float(f): psnr_versus_sigma(
            {"nlm": lambda y, s, f=f: nlm(y, s, h_factor=f, workers=workers)}, images, sigmas, seed
        )["nlm"]
        for f in factors
    }


def best_method(tables: Mapping[str, list[dict]], sigma: float, exclude: Sequence[str] = ()) -> tuple[str, float]:
    """The method with the highest denoised PSNR at ``sigma`` in a psnr_versus_sigma result."""
    best = None
    for name, rows in tables.items():
        if name in exclude:
            continue
        row = next((r for r in rows if abs(r["sigma"] - sigma) < 1e-12), None)
        if row is None:
            raise ValueError(f"sigma {sigma} is not in the table of {name!r} (sigmas {[r['sigma'] for r in rows]})")
        if best is None or row["psnr_denoised"] > best[1]:
            best = (name, row["psnr_denoised"])
    if best is None:
        raise ValueError(f"no method left after excluding {list(exclude)}")
    return best


def per_image_table(per: Mapping[str, torch.Tensor], sigmas: Sequence[float]) -> dict[str, list[dict]]:
    """psnr_versus_sigma's mean table from per-image PSNRs {method: (S, N)} (e.g. read back from a cache)."""
    return {
        m: [{"sigma": float(s), "psnr_denoised": v[k].mean().item(), "per_image": v[k]} for k, s in enumerate(sigmas)]
        for m, v in per.items()
    }


def margins(
    tables: Mapping[str, list[dict]], method: str, against: Sequence[str], sigmas: Sequence[float]
) -> list[dict]:
    """Per sigma: ``method``'s PSNR, the best of ``against`` and the margin between them (chapter 1's claim)."""
    if method not in tables:
        raise ValueError(f"method {method!r} is not in the table (methods {list(tables)})")
    missing = [a for a in against if a not in tables]
    if missing or not against:
        raise ValueError(f"compare against methods of the table {list(tables)}, got {list(against)}")
    rows = []
    for s in sigmas:
        ours = best_method({method: tables[method]}, s)[1]
        other, theirs = best_method({a: tables[a] for a in against}, s)
        rows.append(
            {"sigma": float(s), method: ours, "best other": other, "other dB": theirs, "margin dB": ours - theirs}
        )
    return rows


def least_regret_factor(sweep: Mapping[float, list[dict]]) -> tuple[float, float]:
    """The factor of an ``nlm_h_sweep`` whose largest shortfall in PSNR from the best factor, over the sweep's noise
    levels, is smallest, and that shortfall in dB (how NLM_H_FACTOR is chosen, on training images)."""
    if not sweep:
        raise ValueError("the sweep is empty")
    n = len(next(iter(sweep.values())))
    best = [max(rows[k]["psnr_denoised"] for rows in sweep.values()) for k in range(n)]
    regret = {f: max(best[k] - rows[k]["psnr_denoised"] for k in range(n)) for f, rows in sweep.items()}
    f = min(regret, key=regret.get)
    return f, regret[f]


def nlm_sweep_gaps(sweep: Mapping[float, list[dict]], factor: float = NLM_H_FACTOR) -> list[dict]:
    """Per sigma of an ``nlm_h_sweep``: the PSNR at the library's h factor, the best factor and its PSNR, and the gap
    between them (how much the fixed factor handicaps non-local means)."""
    if factor not in sweep:
        raise ValueError(f"the sweep has no factor {factor} (factors {sorted(sweep)})")
    rows = []
    for k, r in enumerate(sweep[factor]):
        best = max(sweep, key=lambda f: sweep[f][k]["psnr_denoised"])
        top, ours = sweep[best][k]["psnr_denoised"], r["psnr_denoised"]
        rows.append({"sigma": r["sigma"], "ours": ours, "best factor": best, "best": top, "gap": top - ours})
    return rows
