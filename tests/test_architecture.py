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
    assert mid["resolution"] == f"{k}×{k}" and mid["channels"].endswith(f"→ {cfg.mid_width}")
    assert mid["receptive field"] == f"{receptive_field(cfg)}×{receptive_field(cfg)}"
    assert [r["block"] for r in rows] == build(name).block_names + ["out"]


def test_paper_preset_numbers():
    s = architecture.summary("paper", 64)
    assert s["phi dimension"] == 512 and s["middle resolution"] == "8×8"
    assert s["parameters"] == n_params(build("paper"))


def test_bad_size():
    with pytest.raises(ValueError, match="multiple of 8"):
        architecture.block_table("small", 20)
