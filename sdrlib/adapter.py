"""phi of any network: the representation of SPEC section 2 read from a named layer of any ``torch.nn.Module``.

``layer_phi(model, layer, images, sigma, n_noise, seed)`` registers a forward hook on ``model.get_submodule(layer)``,
runs the model on y = x + sigma z, takes the spatial mean of the layer's output over (H, W) and averages it over
the noise draws; so the claims layer (``sdrlib.claims``) runs on a network sdrlib did not build::

    phi_t = layer_phi(resnet, "layer3", images, sigma=0.2, n_noise=4)
    phi_u = layer_phi(untrained_resnet, "layer3", images, sigma=0.2, n_noise=4)
    sparse.sparsity_claim([phi_t], [phi_u]).verdict

The noise draws are those of ``representation.noise_for`` (image i's draws depend only on (seed, i)), and the
input is in channels_last memory format as in ``representation.phi_blocks``, so that for an sdrlib UNet
``layer_phi(unet, "mid", ...)`` equals ``representation.phi_blocks(unet, ..., ("mid",), ...)["mid"]`` exactly.

By default (``stop=True``) the forward pass stops as soon as the hooked layer has run (the hook raises a private
exception that ``layer_phi`` catches), so only the part of the network up to that layer is computed: for a UNet's
middle block, the encoder alone (the decoder is about half the cost of a forward pass). A network whose
``forward`` swallows exceptions (``except Exception``) should be read with ``stop=False``.
"""

from __future__ import annotations

import difflib

import torch
import torch.nn as nn

from . import utils
from .noise import check_sigma
from .representation import noise_for


class _Stop(Exception):
    """Raised by the hook to end the forward pass once the hooked layer has run (never leaves ``layer_phi``)."""


def find_layer(model: nn.Module, layer: str) -> nn.Module:
    """The submodule named ``layer`` (a dotted path, as ``named_modules`` spells it: the block whose activations
    phi averages, SPEC 2); a ValueError naming it and a few valid names when there is none."""
    if not isinstance(layer, str):
        raise ValueError(f"layer must be a module path (str), got {type(layer).__name__}")
    names = [n for n, _ in model.named_modules() if n]
    if layer and layer not in names:
        close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
        shown = close or names[:8]
        more = "" if close or len(names) <= 8 else f" (and {len(names) - 8} more: see model.named_modules())"
        label = "close matches" if close else "valid names include"
        listed = ", ".join(map(repr, shown))
        raise ValueError(f"layer {layer!r} is not a submodule of {type(model).__name__}; {label}: {listed}{more}")
    return model.get_submodule(layer)


def spatial_mean(out, layer: str) -> torch.Tensor:
    """The spatial mean (N, C) of one layer's output for a batch (the "spatial mean of a_block(y)" of SPEC 2): a
    (N, C, H, W) tensor is averaged over H and W, a (N, C) one taken as is; of a tuple or list, its first tensor."""
    if isinstance(out, (tuple, list)):
        out = next((o for o in out if isinstance(o, torch.Tensor)), None)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"layer {layer!r} returned no tensor (got {type(out).__name__}); expected (N, C, H, W)")
    if out.ndim == 4:
        return out.mean(dim=(2, 3))
    if out.ndim == 2:
        return out
    raise ValueError(f"layer {layer!r} returned shape {tuple(out.shape)}; expected (N, C, H, W) or (N, C)")


@torch.no_grad()
def layer_means(model: nn.Module, layer: str, y: torch.Tensor, stop: bool = True) -> torch.Tensor:
    """Spatial means (N, C) of ``layer``'s output for one batch of noisy images y (one draw of SPEC 2's
    expectation), read by a forward hook that is removed afterwards whatever happens; with ``stop``, the
    forward pass ends right after that layer. If the layer runs several times in one pass, its first call counts."""
    module = find_layer(model, layer)
    got: list[torch.Tensor] = []

    def hook(_module, _inputs, out):
        if not got:  # reduce at once: a later in-place op (ReLU(inplace=True)) may overwrite the output
            got.append(spatial_mean(out, layer).float())
        if stop:
            raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        model(y)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not got:
        raise ValueError(f"layer {layer!r} did not run during the forward pass of {type(model).__name__}")
    return got[0]


@torch.no_grad()
def layer_phi(
    model: nn.Module,
    layer: str,
    images: torch.Tensor,
    sigma: float = 0.0,
    n_noise: int = 1,
    seed: int = 0,
    batch: int = 256,
    index: torch.Tensor | None = None,
    stop: bool = True,
    channels_last: bool = True,
) -> torch.Tensor:
    """phi_sigma(x) read from ``layer`` of any network (SPEC 2): (N, C) on the CPU, the spatial means of that
    layer's output averaged over n_noise draws of y = x + sigma z (one clean pass when sigma = 0).

    ``index`` names the images (default 0..N-1) for their noise draws (``representation.noise_for``: drawn on
    the CPU, then moved to the model's device). ``stop`` ends each forward pass after the layer (see the module
    docstring); ``channels_last`` feeds 4-D inputs in that memory format, as ``representation.phi_blocks`` does
    (faster convolutions; turn it off for a network that calls ``.view`` on its input). The model runs in eval
    mode without gradients; every submodule's train/eval flag is restored afterwards.
    """
    check_sigma(sigma)
    if n_noise < 1:
        raise ValueError(f"n_noise must be >= 1, got {n_noise}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.ndim < 2:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a floating-point tensor (N, C, H, W) in [0, 1], got {got}")
    find_layer(model, layer)  # fail before any work
    index = torch.arange(images.shape[0]) if index is None else torch.as_tensor(index)
    if index.shape != (images.shape[0],):
        raise ValueError(f"index must name each of the {images.shape[0]} images, got shape {tuple(index.shape)}")
    draws = 1 if sigma == 0 else n_noise
    dev = utils.model_device(model, images.device)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        out = []
        for i in range(0, images.shape[0], batch):
            x = images[i : i + batch].to(dev)
            z = noise_for(index[i : i + batch], x.shape[1:], draws, seed) if sigma > 0 else None
            z = z.to(device=dev, dtype=x.dtype) if z is not None else None
            acc = None
            for d in range(draws):
                y = x + sigma * z[d] if z is not None else x
                if channels_last and y.ndim == 4:
                    y = y.contiguous(memory_format=torch.channels_last)
                m = layer_means(model, layer, y, stop)
                acc = m if acc is None else acc + m
            out.append((acc / draws).cpu())
        return torch.cat(out)
    finally:
        for m, mode in modes:
            m.training = mode
