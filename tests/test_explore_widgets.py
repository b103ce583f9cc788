"""The widgets of chapter 5 (sdrlib.explore_widgets): each builds without a kernel and calls its view when a
control changes (or, for the slow masked explorer, when its button is pressed)."""

import torch

from sdrlib import explore, explore_widgets, sampling

PNG = b"\x89PNG"


def test_noise_widget_builds_headlessly_and_recomputes_on_change(model, images):
    import ipywidgets

    ex = explore_widgets.noise_widget(model, images, sigma=0.2)
    assert isinstance(ex.widget, ipywidgets.VBox)
    assert bytes(ex.image.value).startswith(PNG)
    assert ex.calls == 1
    before = bytes(ex.image.value)
    ex.controls["sigma"].value = 0.5
    assert ex.calls == 2
    assert ex.result["sigma"] == 0.5
    assert bytes(ex.image.value) != before
    ex.controls["image"].value = 4
    assert ex.calls == 3
    assert torch.equal(ex.result["clean"], images[4])
    assert "psnr noisy" in ex.text.value
    assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()


def test_channel_widget_recomputes_on_change(model, images, feats, labels):
    p = feats["phi mid"]
    ex = explore_widgets.channel_widget(model, images, p, labels)
    first = explore.channel_order(p)[0][1]
    assert ex.result["channel"] == first
    other = explore.channel_order(p)[1][1]
    before = bytes(ex.image.value)
    ex.controls["channel"].value = other
    assert ex.result["channel"] == other
    assert ex.calls == 2
    assert bytes(ex.image.value) != before
    ex.controls["k"].value = 3
    assert len(ex.result["top"]) == 3


def test_neighbour_widget_recomputes_on_change(model, images, feats, labels):
    ex = explore_widgets.neighbour_widget(feats, images, model.block_names, labels)
    assert ex.result["query"] == 0
    assert ex.result["block"] == "mid"
    ex.controls["block"].value = "enc1"
    assert ex.result["block"] == "enc1"
    assert "φ enc1" in ex.result
    assert ex.calls == 2
    before = bytes(ex.image.value)
    ex.controls["query"].value = 9
    assert int(ex.result["φ enc1"][0]) == 9
    assert bytes(ex.image.value) != before
    assert "enc1 same label" in ex.text.value


def test_masked_widget_runs_on_its_button_only(model, images, feats):
    mean = sampling.mean_image(images)
    ex = explore_widgets.masked_widget(model, images, mean, feats["phi mid"], k=4, steps=2, match_iter=2, n_noise=2)
    assert ex.result is None
    assert ex.calls == 0
    assert "Run" in ex.text.value
    ex.controls["mask"].value = "all but top-k"
    assert ex.calls == 0  # no run on a change
    ex.controls["run"].click()
    assert ex.calls == 1
    assert bytes(ex.image.value).startswith(PNG)
    assert ex.result["kept"] == feats["phi mid"].shape[1] - 4
    ex.controls["mask"].value = "top-k of the target"
    ex.controls["run"].click()
    assert ex.calls == 2
    assert ex.result["kept"] == 4
    start = explore.masked_view(
        model, images[0], mean, torch.ones(16, dtype=torch.bool), 2, steps=2, match_iter=2, n_noise=2
    )
    ex = explore_widgets.masked_widget(model, images, mean, feats["phi mid"], initial=start)
    assert ex.result is start[0]
    assert ex.calls == 0
    assert bytes(ex.image.value).startswith(PNG)


def test_a_refused_value_is_shown_not_raised(model, images, feats):
    ex = explore_widgets.channel_widget(model, images, feats["phi mid"])
    ex.compute = lambda: explore.channel_view(model, images, feats["phi mid"], 999)
    ex.update()
    assert ex.error
    assert "channel must be" in ex.text.value
    assert ex.calls == 1
