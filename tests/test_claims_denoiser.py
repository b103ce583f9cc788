"""The denoiser claim (sdrlib.claims.denoiser) on planted per-image PSNR tables whose answer is known."""

import pytest
import torch

from sdrlib.claims import denoiser
from sdrlib.claims.catalogue import BY_KEY

SIGMAS = [0.05, 0.1, 0.2, 0.4, 0.8]
JUDGED = [0.1, 0.2, 0.4]
MIN = BY_KEY["denoiser"].part("beats classical").min_effect


def _table(margins: dict[str, list[float]], n: int = 200, seed: int = 0) -> dict[str, list[dict]]:
    """Per-image PSNR of the methods: a shared per-image difficulty plus each method's planted offset per sigma and
    a little independent noise, as psnr_versus_sigma(per_image=True) returns it."""
    g = torch.Generator().manual_seed(seed)
    base = 25 + 3 * torch.randn(n, generator=g, dtype=torch.float64)
    out = {}
    for m, offsets in margins.items():
        out[m] = [
            {"sigma": s, "per_image": base + o + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)}
            for s, o in zip(SIGMAS, offsets)
        ]
        for r in out[m]:
            r["psnr_denoised"] = r["per_image"].mean().item()
    return out


def test_a_network_one_db_above_every_method_holds_with_the_margin_measured():
    t = _table({"net": [1.0] * 5, "bm3d": [0.0] * 5, "nlm": [-0.5] * 5})
    r = denoiser.denoiser_claim(t, ["net"], ["bm3d", "nlm"], JUDGED, n_boot=300)
    assert r.verdict == "holds"
    assert r.headline.effect.lo > MIN
    assert abs(r.headline.effect.value - 1.0) < 0.05  # against the best method (bm3d), not the weaker one


def test_the_worst_judged_sigma_decides_and_unjudged_sigmas_do_not():
    """Far ahead at 0.1 and 0.2, behind at 0.4: fails; behind only at 0.8 (not judged): holds."""
    behind = _table({"net": [1, 1, 1, -1, 1], "bm3d": [0] * 5})
    assert denoiser.denoiser_claim(behind, ["net"], ["bm3d"], JUDGED, n_boot=300).verdict == "fails"
    unjudged = _table({"net": [1, 1, 1, 1, -3], "bm3d": [0] * 5})
    assert denoiser.denoiser_claim(unjudged, ["net"], ["bm3d"], JUDGED, n_boot=300).verdict == "holds"


def test_the_best_classical_method_is_chosen_per_sigma():
    """Each classical method wins at some sigmas; the network is 0.5 dB above whichever wins, so the margin is 0.5
    (against the weaker method at a sigma it would look 1.5 dB or more)."""
    t = _table({"net": [1.5, 0.5, 2.5, 1.5, 1.5], "a": [0, 0, 2, 0, 0], "b": [1, -1, 0, 1, 1]})
    r = denoiser.denoiser_claim(t, ["net"], ["a", "b"], JUDGED, n_boot=300)
    assert abs(r.headline.effect.value - 0.5) < 0.05
    assert [m["best classical"] for m in r.measures] == ["b", "a", "a", "b", "b"]
    assert [m["judged"] for m in r.measures] == ["no", "yes", "yes", "yes", "no"]


def test_a_tie_below_the_smallest_effect_that_counts_is_not_a_win():
    """A network 0.02 dB ahead, measured precisely, is confidently below 0.1 dB: the claim fails, not holds."""
    t = _table({"net": [0.02] * 5, "bm3d": [0.0] * 5}, n=2000)
    r = denoiser.denoiser_claim(t, ["net"], ["bm3d"], JUDGED, n_boot=300)
    assert r.headline.effect.lo > 0
    assert r.verdict == "fails"


def test_several_networks_are_resampled():
    """Two networks, one far ahead and one behind: their spread enters the interval, which then spans 0."""
    t = _table({"good": [1.0] * 5, "bad": [-1.0] * 5, "bm3d": [0.0] * 5})
    r = denoiser.denoiser_claim(t, ["good", "bad"], ["bm3d"], JUDGED, n_boot=300)
    assert r.n_trained == 2
    assert r.headline.effect.lo < 0 < r.headline.effect.hi
    one = denoiser.denoiser_claim(t, ["good"], ["bm3d"], JUDGED, n_boot=300)
    assert one.headline.effect.hi - one.headline.effect.lo < 0.2


def test_bad_inputs_name_what_is_wrong():
    t = _table({"net": [1.0] * 5, "bm3d": [0.0] * 5})
    with pytest.raises(ValueError, match="'nope'"):
        denoiser.denoiser_claim(t, ["net"], ["nope"], JUDGED)
    with pytest.raises(ValueError, match="no judged sigma"):
        denoiser.denoiser_claim(t, ["net"], ["bm3d"], [0.3])
    del t["bm3d"][0]["per_image"]
    with pytest.raises(ValueError, match="per_image=True"):
        denoiser.denoiser_claim(t, ["net"], ["bm3d"], JUDGED)
