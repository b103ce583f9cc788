"""The widgets of chapter 5: a small ``*_widget`` builder per explorer of ``sdrlib.explore`` that wires ipywidgets
controls to its view function and shows the figure as a PNG (ipywidgets is imported only inside them)."""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from matplotlib.figure import Figure

from . import sampling, sparsity, targets, utils
from .explore import View, channel_order, channel_view, masked_view, neighbour_view, noise_view
from .representation import phi as phi_sigma
from .unet import UNet

# ------------------------------------------------------------------ widgets


def figure_png(fig: Figure, dpi: int = 90) -> bytes:
    """A figure as PNG bytes (what the widgets show)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def numbers_html(res: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The scalar results named by ``keys`` as one line of HTML."""
    parts = []
    for k in keys:
        v = res.get(k)
        if isinstance(v, torch.Tensor):
            v = float(v.float().mean()) if v.numel() else float("nan")
        if v is not None:
            parts.append(
                f"{html.escape(k.replace('_', ' '))}: <b>{v:.3g}</b>"
                if isinstance(v, float)
                else f"{html.escape(k.replace('_', ' '))}: <b>{html.escape(str(v))}</b>"
            )
    return "<span style='font-size: 90%'>" + " &nbsp;·&nbsp; ".join(parts) + "</span>"


@dataclass
class Explorer:
    """A live explorer: its controls, the figure (a PNG image widget), a line of numbers, and the latest result
    of its callback. Displaying an Explorer displays its widget."""

    widget: Any
    controls: dict[str, Any]
    image: Any
    text: Any
    compute: Callable[[], View]
    keys: Sequence[str] = ()
    result: dict | None = None
    calls: int = 0
    status: Any = None
    error: str | None = field(default=None)

    def update(self, *_: Any) -> None:
        """Run the callback with the controls' current values and show its figure and numbers."""
        if self.status is not None:
            self.status.value = "<i>computing ...</i>"
        try:
            res, fig = self.compute()
        except ValueError as e:  # a control value the callback refuses: say so in place of the figure
            self.error = str(e)
            self.text.value = f"<span style='color: #b00'>{html.escape(str(e))}</span>"
            return
        finally:
            if self.status is not None:
                self.status.value = ""
        self.calls += 1
        self.show(res, fig)

    def show(self, res: dict, fig: Figure) -> None:
        """Show a result of the callback (computed here or passed in) and its figure."""
        self.error = None
        self.result = res
        self.image.value = figure_png(fig)
        self.text.value = numbers_html(res, self.keys)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _explorer(
    controls: dict[str, Any],
    compute: Callable[[], View],
    keys: Sequence[str],
    button: str | None = None,
    initial: View | None = None,
) -> Explorer:
    """Lay out controls over a numbers line and the figure; recompute on every change, or on a button (then
    the explorer starts from ``initial``, a result computed beforehand, if given)."""
    import ipywidgets as w

    image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
    text = w.HTML()
    status = w.HTML() if button else None
    if button:
        controls = {**controls, "run": w.Button(description=button, button_style="primary")}
    rows = w.HBox(
        list(controls.values()) + ([status] if status is not None else []), layout=w.Layout(flex_flow="row wrap")
    )
    ex = Explorer(w.VBox([rows, text, image]), controls, image, text, compute, keys, status=status)
    if button:
        controls["run"].on_click(ex.update)
        if initial is not None:
            ex.show(*initial)
        else:
            text.value = f"<i>choose, then press {html.escape(button)}</i>"
    else:
        for c in controls.values():
            c.observe(ex.update, names="value")
        ex.update()
    return ex


def _image_picker(n: int, value: int = 0, description: str = "image") -> Any:
    import ipywidgets as w

    return w.BoundedIntText(value=value, min=0, max=n - 1, description=description, layout=w.Layout(width="170px"))


def noise_widget(
    model: UNet,
    images: torch.Tensor,
    sigma: float = 0.2,
    index: int = 0,
    seed: int = 0,
    n_noise: int = 8,
    order: torch.Tensor | None = None,
    max_sigma: float = 1.0,
) -> Explorer:
    """The noise-level explorer: an image picker and a sigma slider over ``noise_view``."""
    import ipywidgets as w

    c = {
        "image": _image_picker(len(images), index),
        "sigma": w.FloatSlider(
            value=sigma,
            min=0.0,
            max=max_sigma,
            step=0.01,
            description="σ",
            continuous_update=False,
            readout_format=".2f",
        ),
        "seed": w.IntText(value=seed, description="noise seed", layout=w.Layout(width="170px")),
    }
    return _explorer(
        c,
        lambda: noise_view(model, images[c["image"].value], c["sigma"].value, c["seed"].value, n_noise, order),
        ("sigma", "psnr_noisy", "psnr_denoised"),
    )


def channel_widget(
    model: UNet,
    images: torch.Tensor,
    phi: torch.Tensor,
    labels: torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
    channel: int | None = None,
    k: int = 8,
    tau: float = sparsity.DEFAULT_TAU,
    block: str = "mid",
    sigma: float = 0.0,
    n_noise: int = 1,
    seed: int = 0,
    index: torch.Tensor | None = None,
) -> Explorer:
    """The channel explorer: a dropdown of the channels (most selective first) over ``channel_view`` (maps at
    phi's noise level: see there)."""
    import ipywidgets as w

    options = channel_order(phi, tau)
    c = {
        "channel": w.Dropdown(
            options=options,
            value=options[0][1] if channel is None else int(channel),
            description="channel",
            layout=w.Layout(width="420px"),
        ),
        "k": w.IntSlider(value=k, min=1, max=min(16, len(images)), description="images", continuous_update=False),
    }
    return _explorer(
        c,
        lambda: channel_view(
            model,
            images,
            phi,
            c["channel"].value,
            c["k"].value,
            labels,
            classes,
            block,
            tau,
            sigma,
            n_noise,
            seed,
            index,
        ),
        ("channel", "frequency", "pair_agreement", "pair_chance"),
    )


def neighbour_widget(
    features: Mapping[str, torch.Tensor],
    images: torch.Tensor,
    blocks: Sequence[str],
    labels: torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
    query: int = 0,
    block: str = "mid",
    k: int = 8,
) -> Explorer:
    """The neighbour explorer: a query picker and a block selector over ``neighbour_view``."""
    import ipywidgets as w

    c = {
        "query": _image_picker(len(images), query, "query"),
        "block": w.Dropdown(options=list(blocks), value=block, description="block", layout=w.Layout(width="200px")),
        "k": w.IntSlider(
            value=k, min=1, max=min(16, len(images) - 1), description="neighbours", continuous_update=False
        ),
    }

    def compute() -> View:
        return neighbour_view(features, images, c["query"].value, c["block"].value, c["k"].value, labels, classes)

    keys = ("query", "block") + tuple(f"{s} same label" for s in (f"φ {block}", "pixels"))
    ex = _explorer(c, compute, keys)
    c["block"].observe(
        lambda ch: setattr(ex, "keys", ("query", "block", f"φ {ch['new']} same label", "pixels same label")),
        names="value",
    )
    return ex


def masked_widget(
    model: UNet,
    images: torch.Tensor,
    mean: torch.Tensor,
    base_phi: torch.Tensor,
    index: int = 0,
    choice: str = "top-k of the target",
    k: int = 16,
    n_samples: int = 2,
    steps: int = 10,
    match_iter: int = 10,
    lr: float = 0.01,
    n_noise: int = 4,
    seed: int = 0,
    tau: float = sparsity.DEFAULT_TAU,
    initial: View | None = None,
) -> Explorer:
    """The masked-reconstruction explorer: target picker, mask choice and k, run on a button (it is slow); it
    starts from ``initial`` (e.g. the chapter's ``masked_view`` of the same target) when given."""
    import ipywidgets as w

    c = {
        "image": _image_picker(len(images), index, "target"),
        "mask": w.Dropdown(
            options=list(targets.MASK_CHOICES), value=choice, description="guide on", layout=w.Layout(width="280px")
        ),
        "k": w.BoundedIntText(value=k, min=1, max=base_phi.shape[1], description="k", layout=w.Layout(width="150px")),
        "steps": w.BoundedIntText(value=steps, min=1, max=1000, description="steps", layout=w.Layout(width="150px")),
    }
    cache: dict[tuple[int, int], targets.Target] = {}

    def compute() -> View:
        i, steps_ = c["image"].value, c["steps"].value
        key = (i, steps_)
        if key not in cache:
            cache.clear()
            cache[key] = sampling.image_target_on_schedule(model, images[i], n_samples, steps_, n_noise, seed)
        tp = phi_sigma(model, images[i : i + 1].to(utils.model_device(model)), 0.0)[0].cpu()
        mask = targets.channel_mask_for(c["mask"].value, tp, base_phi, c["k"].value, tau)
        return masked_view(
            model,
            images[i],
            mean,
            mask,
            n_samples,
            steps_,
            match_iter,
            lr,
            n_noise,
            seed,
            cache[key],
            title=c["mask"].value,
        )

    return _explorer(
        c,
        compute,
        ("kept", "kept_error", "kept_error_unguided", "free_error", "free_error_unguided"),
        button="Run",
        initial=initial,
    )
