"""The architecture table agrees with the built network."""

import pytest

from sdrlib import architecture
from sdrlib.unet import build, n_params, preset, receptive_field


@pytest.mark.parametrize("name,size", [("small", 32), ("paper-small", 32), ("tiny", 16)])
def test_block_table_matches_the_network(name, size):
    rows = architecture.block_table(name, size)
    cfg = preset(name)
    assert sum(r["parameters"] for r in rows) == n_params(build(name))
    mid = next(r for r in rows if r["block"] == "mid")
    k = size // 2**cfg.levels
    assert mid["resolution"] == f"{k}×{k}"
    assert mid["channels"].endswith(f"→ {cfg.mid_width}")
    assert mid["receptive field"] == f"{receptive_field(cfg)}×{receptive_field(cfg)}"
    assert [r["block"] for r in rows] == build(name).block_names + ["out"]


def test_paper_preset_numbers():
    """The paper preset's table against numbers known apart from it: SPEC's "about 13.7 M parameters" (the exact
    count, 13,712,833, the README states), a 512-channel middle block at 8x8 for 64x64 images."""
    s = architecture.summary("paper", 64)
    assert s["phi dimension"] == 512
    assert s["middle resolution"] == "8×8"
    assert s["parameters"] == 13_712_833
    assert abs(s["parameters"] / 13.7e6 - 1) < 0.005


def test_bad_size():
    with pytest.raises(ValueError, match="multiple of 8"):
        architecture.block_table("small", 20)
