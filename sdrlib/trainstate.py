"""The state a training run carries from step to step and across restarts: optimiser moments, the random
generators, the clocks, the EMA of the weights; packed into plain tensors for ``state.safetensors``
(nothing pickled), and restored bit-exactly on resume. Also the signal handling that turns a kill
request into a checkpoint."""

from __future__ import annotations

import copy

import torch

from .unet import UNet


def ema_decay(ema: float, step: int) -> float:
    """EMA decay at a step: ``ema``, ramped up as (1 + step) / (10 + step) so early weights are forgotten."""
    return min(ema, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * weights, for every tensor of the model's state dict, as one
    multi-tensor update (one kernel launch per group of tensors on CUDA instead of one per tensor)."""
    sd = model.state_dict()
    torch._foreach_lerp_([ema[k] for k in sd], [v.detach().float() for v in sd.values()], 1 - decay)


def ema_like(ema: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The EMA in float32 on the model's device and in its memory layout (channels-last weights get
    channels-last averages), so that ``update_ema`` runs on the multi-tensor fast path; values unchanged."""
    return {k: torch.empty_like(v, dtype=torch.float32).copy_(ema[k]) for k, v in model.state_dict().items()}


def pack(
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    step: int,
    elapsed: float,
    cpu: float = 0.0,
    gen_dev: torch.Generator | None = None,
) -> dict:
    """Optimizer moments, RNG states and clocks as plain tensors (safetensors, nothing pickled)."""
    st = {
        "step": torch.tensor([step], dtype=torch.int64),
        "elapsed": torch.tensor([elapsed], dtype=torch.float64),
        "cpu": torch.tensor([cpu], dtype=torch.float64),
        "rng": gen.get_state(),
    }
    if gen_dev is not None:
        st["rng_dev"] = gen_dev.get_state()
    for i, s in opt.state_dict()["state"].items():
        for k, v in s.items():
            st[f"opt.{i}.{k}"] = torch.as_tensor(v)
    return st


def unpack(
    st: dict, opt: torch.optim.Optimizer, gen: torch.Generator, gen_dev: torch.Generator | None = None
) -> tuple[int, float, float]:
    """Restore what ``pack`` saved into the optimiser and generators; returns (step, elapsed, cpu seconds)."""
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for k, v in st.items():
        if k.startswith("opt."):
            _, i, name = k.split(".", 2)
            state.setdefault(int(i), {})[name] = v
    sd["state"] = state
    opt.load_state_dict(sd)
    gen.set_state(st["rng"])
    if gen_dev is not None and "rng_dev" in st:
        gen_dev.set_state(st["rng_dev"])
    cpu = float(st["cpu"].item()) if "cpu" in st else 0.0
    return int(st["step"].item()), float(st["elapsed"].item()), cpu


def with_weights(model: UNet, weights: dict[str, torch.Tensor]) -> UNet:
    """A copy of ``model`` (eval mode) holding other weights, e.g. the EMA."""
    twin = copy.deepcopy(model).eval()
    twin.load_state_dict({k: weights[k].to(p.dtype) for k, p in model.state_dict().items()})
    return twin


def interrupt_on_signals():
    """Make SIGINT and SIGTERM raise KeyboardInterrupt while training (so a kill saves a checkpoint), also in
    background jobs, where the shell starts Python with SIGINT ignored; returns a function restoring the handlers."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(sig, h) for sig, h in old.items()]


class null_context:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False
