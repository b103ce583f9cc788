"""Denoising quality (sdrlib.evaluate): the PSNR table on denoisers with known answers, and reading it."""

import pytest
import torch

from sdrlib import evaluate


def test_an_identity_denoiser_gains_nothing_and_an_oracle_is_perfect_up_to_clipping():
    x = torch.rand(6, 1, 8, 8) * 0.5 + 0.25
    same = evaluate.psnr_table(lambda y: y, x, [0.1, 0.2], seed=3)
    # the output is clipped to [0, 1]: the identity gains only what clipping removes, little at sigma 0.1
    assert same[0]["psnr_denoised"] == pytest.approx(same[0]["psnr_noisy"], abs=0.1)
    assert all(r["psnr_denoised"] >= r["psnr_noisy"] for r in same)
    assert same[0]["psnr_noisy"] > same[1]["psnr_noisy"]
    # 20 log10(1 / sigma) for a noisy image when nothing is clipped: about 20 dB at sigma 0.1
    assert same[0]["psnr_noisy"] == pytest.approx(20.0, abs=0.5)
    oracle = evaluate.psnr_table(lambda y: x, x, [0.1], seed=3)
    assert oracle[0]["psnr_denoised"] > 100


def test_row_at_reads_the_nearest_noise_level():
    rows = [{"sigma": 0.05}, {"sigma": 0.1}, {"sigma": 0.4}]
    assert evaluate.row_at(rows, 0.1) is rows[1]
    assert evaluate.row_at(rows, 0.3) is rows[2]
    assert evaluate.row_at(rows, 0.0) is rows[0]
    with pytest.raises(ValueError, match="empty"):
        evaluate.row_at([], 0.1)
