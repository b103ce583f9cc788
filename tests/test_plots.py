"""Figure helpers draw what they are given, and refuse what they cannot draw."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sdrlib import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def rows(offset: float) -> list[dict]:
    return [
        {"sigma": s, "psnr_noisy": 20 - 20 * np.log10(s / 0.1), "psnr_denoised": 25 + offset - 5 * s}
        for s in (0.05, 0.1, 0.2)
    ]


def test_image_grid_layout_titles_and_colour():
    imgs = torch.rand(5, 3, 8, 8)
    fig = plots.image_grid(imgs, 3, titles=list("abcde"))
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 6
    assert [a.get_title() for a in axes[:5]] == list("abcde")
    assert not axes[5].axison  # the unused slot is blank
    shown = axes[0].images[0].get_array()
    assert shown.shape == (8, 8, 3)
    assert np.allclose(shown, imgs[0].permute(1, 2, 0).numpy())


def test_image_grid_on_an_axis_tiles_one_picture():
    fig, ax = plt.subplots()
    out = plots.image_grid(torch.rand(4, 1, 6, 6), 2, ax=ax)
    assert out is fig
    assert ax.images[0].get_array().shape == (13, 13)  # 2x2 tiles with a 1-pixel gap


def test_image_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="nrow"):
        plots.image_grid(torch.rand(2, 1, 4, 4), 0)
    with pytest.raises(ValueError, match="titles"):
        plots.image_grid(torch.rand(2, 1, 4, 4), 2, titles=["x"])
    with pytest.raises(ValueError, match="channels"):
        plots.image_grid(torch.rand(2, 2, 4, 4), 2)


def test_psnr_curves_one_line_per_method_plus_noisy():
    fig = plots.psnr_curves({"a": rows(0), "b": rows(1)})
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["a", "b", "noisy input"]
    assert list(lines[1].get_ydata()) == [r["psnr_denoised"] for r in rows(1)]
    assert fig.axes[0].get_xscale() == "log"


def test_training_curves_from_a_log():
    log = [
        {"step": 0, "eval": rows(0)},
        {"step": 10, "loss": 0.1},
        {"step": 20, "loss": 0.05},
        {"step": 20, "eval": rows(2)},
    ]
    fig = plots.training_curves(log, title="t")
    loss_ax, psnr_ax = fig.axes[:2]
    assert list(loss_ax.get_lines()[0].get_ydata()) == [0.1, 0.05]
    curves = [ln for ln in psnr_ax.get_lines() if ln.get_label().startswith("σ")]
    assert len(curves) == 3
    assert list(curves[0].get_xdata()) == [0, 20]
    with pytest.raises(ValueError, match="no loss"):
        plots.training_curves([{"step": 1}])


def test_sigma_grid_shape_and_labels():
    clean = torch.rand(2, 1, 8, 8)
    res = {"noisy": torch.rand(3, 2, 1, 8, 8), "net": torch.rand(3, 2, 1, 8, 8)}
    fig = plots.sigma_grid(clean, res, [0.1, 0.2, 0.4], {"net": torch.full((3, 2), 21.0)})
    assert len(fig.axes) == 2 * 3 * 3
    assert fig.axes[0].get_title() == "σ = 0.1"
    assert fig.axes[0].get_ylabel() == "clean"
    assert fig.axes[2 * 3].get_xlabel() == "21.0 dB"  # row "net" of the first image, first sigma
    with pytest.raises(ValueError, match="expected \\(3, 2"):
        plots.sigma_grid(clean, {"x": torch.rand(2, 2, 1, 8, 8)}, [0.1, 0.2, 0.4])


def test_sweep_and_tables():
    fig = plots.sweep_curves({0.5: rows(0), 1.0: rows(1)}, xlabel="h")
    assert len([ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("σ")]) == 3
    md = plots.markdown_table([{"a": 1, "b": 2.345}, {"a": 3, "b": 4.0}])
    assert md.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2.35 |", "| 3 | 4.00 |"]
    md = plots.psnr_markdown({"x": rows(0), "y": rows(1)})
    assert md.splitlines()[0] == "| σ | σ × 255 | noisy | x | y |"
    assert len(md.splitlines()) == 5


def test_short_label_keeps_the_part_of_a_class_name_that_tells_classes_apart():
    """Texture classes are photographs named by source ("ufoai:ctp1/dirt_b_1"): the first 14 characters, which
    the figures used to show, tell 93 of the 230 photographs apart; the names without their source, 195."""
    assert plots.short_label("ufoai:ctp1/dirt_b_1") == "dirt_b_1"
    assert plots.short_label("opencv:basketball1") == "basketball1"
    assert plots.short_label("T-shirt/top") == "T-shirt/top"  # no source: a Fashion-MNIST name is kept whole
    assert plots.short_label("Ankle boot", 6) == "Ankle…"
    assert len(plots.short_label("x" * 40)) == 14
