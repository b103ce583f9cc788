"""The recipe study's health measures (sdrlib.health): dead channels by both rules and the 10-NN score."""

import torch

from sdrlib import health
from sdrlib.unet import build


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes that a middle block can tell apart: dark and bright noise images."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    x = (0.2 + 0.6 * labels.view(-1, 1, 1, 1) + 0.1 * torch.randn(n, 1, 16, 16, generator=g)).clamp(0, 1)
    return x, labels


def test_middle_health_counts_and_per_query_scores():
    torch.manual_seed(0)
    m = build("tiny", gain_init="ones").eval()
    (xb, lb), (xq, lq) = _data(40, 0), _data(20, 1)
    h = health.middle_health(m, xb, lb, xq, lq, k=5, per_query=True)
    assert h["channels"] == m.cfg.mid_width
    assert 0 <= h["dead_zero"] <= h["dead_relative"] <= h["channels"]  # an exact zero is also relatively dead
    per = torch.tensor(h["knn_per_query"])
    assert per.shape == (20,) and ((per * 5).round() - per * 5).abs().max() < 1e-3  # multiples of 1/k
    assert abs(per.mean().item() - h["knn_agreement"]) < 1e-3
    assert "knn_per_query" not in health.middle_health(m, xb, lb, xq, lq, k=5)


def test_middle_health_sees_a_dead_middle_block():
    """A middle block whose last layer's norm gains are zero outputs only zeros: every channel dead by both rules."""
    torch.manual_seed(0)
    m = build("tiny").eval()
    with torch.no_grad():
        m.mid[-1][1].gain.zero_()
    (xb, lb), (xq, lq) = _data(20, 0), _data(10, 1)
    h = health.middle_health(m, xb, lb, xq, lq, k=3)
    assert h["dead_zero"] == h["dead_relative"] == m.cfg.mid_width
