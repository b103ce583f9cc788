"""Classical denoisers: they denoise, they see the same noisy images as the network, and BM3D is the strongest."""

import pytest
import torch
import torch.nn.functional as F

from sdrlib import baselines, data
from sdrlib.evaluate import psnr_table
from sdrlib.noise import add_noise, psnr
from sdrlib.unet import build


def smooth_images(n: int, channels: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Smooth random images: 4x4 uniform noise upsampled bicubically, clipped to [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, channels, 4, 4, generator=g)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("method", sorted(baselines.METHODS))
def test_each_baseline_improves_psnr_on_smooth_images(method, channels):
    x = smooth_images(3, channels)
    y = add_noise(x, 0.1, torch.Generator().manual_seed(1))
    x_hat = baselines.get(method)(y, 0.1)
    assert x_hat.shape == y.shape
    assert x_hat.dtype == y.dtype
    gain = psnr(x_hat.clamp(0, 1), x) - psnr(y, x)
    assert (gain > 3.0).all(), f"{method} on {channels}-channel smooth images: gains {gain.tolist()} dB"


def test_table_uses_identical_noisy_images_for_every_method():
    x = smooth_images(4, 1)
    sigmas = [0.05, 0.2]
    net = build("tiny").eval()
    tables = baselines.psnr_versus_sigma(
        {"net": net, "wavelet": "wavelet", "nlm": "nlm", "identity": lambda y, s: y}, x, sigmas, seed=7
    )
    noisy = {name: [r["psnr_noisy"] for r in rows] for name, rows in tables.items()}
    assert all(v == noisy["net"] for v in noisy.values()), noisy
    # ... and they are psnr_table's draws: the identity "denoiser" scores exactly the noisy input (clamped)
    ref = psnr_table(lambda y: y, x, sigmas, seed=7)
    assert [r["psnr_noisy"] for r in ref] == noisy["identity"]
    assert [r["psnr_denoised"] for r in ref] == [r["psnr_denoised"] for r in tables["identity"]]


def test_bm3d_beats_wavelet_on_fashion_mnist_at_sigma_02():
    x = data.load("fashion-mnist", "test").subset(4, seed=0).images
    y = add_noise(x, 0.2, torch.Generator().manual_seed(0))
    p_bm3d = psnr(baselines.bm3d(y, 0.2).clamp(0, 1), x)
    p_wav = psnr(baselines.wavelet(y, 0.2).clamp(0, 1), x)
    print("BM3D", p_bm3d.tolist(), "wavelet", p_wav.tolist())
    assert (p_bm3d > p_wav).all(), f"BM3D {p_bm3d.tolist()} vs wavelet {p_wav.tolist()}"


def test_examples_match_the_table_draws_and_threads_change_nothing():
    x = smooth_images(2, 3)
    sigmas = [0.1, 0.3]
    stacks, psnrs = baselines.denoise_examples({"nlm": "nlm"}, x, sigmas, seed=3)
    assert stacks["noisy"].shape == (2, 2, 3, 32, 32)
    assert psnrs["nlm"].shape == (2, 2)
    rows = baselines.psnr_versus_sigma({"nlm": "nlm"}, x, sigmas, seed=3)["nlm"]
    for k, r in enumerate(rows):
        assert psnrs["noisy"][k].mean().item() == pytest.approx(r["psnr_noisy"], abs=1e-5)
        assert psnrs["nlm"][k].mean().item() == pytest.approx(r["psnr_denoised"], abs=1e-5)
    threaded, _ = baselines.denoise_examples({"nlm": "nlm"}, x, sigmas, seed=3, workers=2)
    assert torch.equal(threaded["nlm"], stacks["nlm"])


def test_nlm_sweep_contains_the_default_factor():
    x = smooth_images(2, 1)
    sweep = baselines.nlm_h_sweep(x, [0.1], [0.3, baselines.NLM_H_FACTOR], seed=5)
    default = baselines.psnr_versus_sigma({"nlm": "nlm"}, x, [0.1], seed=5)["nlm"]
    assert sweep[baselines.NLM_H_FACTOR] == default
    assert sweep[0.3] != default


def test_best_method():
    t = {"a": [{"sigma": 0.1, "psnr_denoised": 20.0}], "b": [{"sigma": 0.1, "psnr_denoised": 21.0}]}
    assert baselines.best_method(t, 0.1) == ("b", 21.0)
    assert baselines.best_method(t, 0.1, exclude=["b"]) == ("a", 20.0)
    with pytest.raises(ValueError, match="sigma 0.2"):
        baselines.best_method(t, 0.2)


def test_bad_inputs_are_named():
    x = smooth_images(1, 1)
    with pytest.raises(ValueError, match="unknown baseline 'bm4d'"):
        baselines.get("bm4d")
    with pytest.raises(ValueError, match=r"\(N, 1 or 3, H, W\)"):
        baselines.wavelet(x[0], 0.1)
    with pytest.raises(ValueError, match="sigma"):
        baselines.nlm(x, -0.1)
    with pytest.raises(ValueError, match="workers"):
        baselines.wavelet(x, 0.1, workers=0)
    with pytest.raises(ValueError, match="h_factor"):
        baselines.nlm(x, 0.1, h_factor=0)
    with pytest.raises(ValueError, match="at least one"):
        baselines.psnr_versus_sigma({}, x)


def test_margins_name_the_best_competitor():
    t = {
        "net": [{"sigma": 0.1, "psnr_denoised": 25.0}, {"sigma": 0.2, "psnr_denoised": 20.0}],
        "a": [{"sigma": 0.1, "psnr_denoised": 24.0}, {"sigma": 0.2, "psnr_denoised": 21.0}],
        "b": [{"sigma": 0.1, "psnr_denoised": 24.5}, {"sigma": 0.2, "psnr_denoised": 19.0}],
    }
    rows = baselines.margins(t, "net", ["a", "b"], [0.1, 0.2])
    assert [(r["best other"], r["margin dB"]) for r in rows] == [("b", 0.5), ("a", -1.0)]
    with pytest.raises(ValueError, match="'c'"):
        baselines.margins(t, "c", ["a"], [0.1])
    with pytest.raises(ValueError, match="compare against"):
        baselines.margins(t, "net", ["z"], [0.1])


def test_nlm_sweep_gaps_compare_the_fixed_factor_with_the_best_per_sigma():
    """Planted sweep: the library's factor is best at sigma 0.1 and 0.3 dB behind factor 0.8 at sigma 0.2."""
    sweep = {
        0.6: [{"sigma": 0.1, "psnr_denoised": 30.0}, {"sigma": 0.2, "psnr_denoised": 26.0}],
        0.8: [{"sigma": 0.1, "psnr_denoised": 29.5}, {"sigma": 0.2, "psnr_denoised": 26.3}],
    }
    rows = baselines.nlm_sweep_gaps(sweep, 0.6)
    assert [r["best factor"] for r in rows] == [0.6, 0.8]
    assert [round(r["gap"], 6) for r in rows] == [0.0, 0.3]
    with pytest.raises(ValueError, match="no factor 0.7"):
        baselines.nlm_sweep_gaps(sweep, 0.7)


def test_least_regret_factor_is_the_one_never_far_from_the_best():
    """Planted: 0.8 is best at one sigma but 1.0 dB behind at the other; 0.6 is never more than 0.3 dB behind;
    a factor best everywhere has no regret."""
    row = [{"sigma": 0.1, "psnr_denoised": 0.0}, {"sigma": 0.2, "psnr_denoised": 0.0}]
    sweep = {
        0.4: [{**row[0], "psnr_denoised": 29.0}, {**row[1], "psnr_denoised": 26.3}],
        0.6: [{**row[0], "psnr_denoised": 29.7}, {**row[1], "psnr_denoised": 26.2}],
        0.8: [{**row[0], "psnr_denoised": 30.0}, {**row[1], "psnr_denoised": 25.3}],
    }
    f, regret = baselines.least_regret_factor(sweep)
    assert f == 0.6 and regret == pytest.approx(0.3)
    sweep[0.5] = [{**row[0], "psnr_denoised": 30.1}, {**row[1], "psnr_denoised": 26.4}]
    assert baselines.least_regret_factor(sweep) == (0.5, 0.0)
    with pytest.raises(ValueError, match="empty"):
        baselines.least_regret_factor({})
