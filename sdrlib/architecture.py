"""A readable description of the blind UNet (SPEC section 1): one row per block with its layers,
channels, resolution, parameter count and receptive field, measured on the built network."""

from __future__ import annotations

import torch

from .unet import UNet, UNetConfig, n_params, preset, receptive_field


def block_table(cfg: UNetConfig | str, size: int) -> list[dict]:
    """Rows (block, layers, channels in -> out, resolution, parameters, receptive field) of the UNet at size x size."""
    cfg = preset(cfg) if isinstance(cfg, str) else cfg
    k = 2**cfg.levels
    if size < k or size % k:
        raise ValueError(f"size must be a positive multiple of {k} for {cfg.levels} levels, got {size}")
    model = UNet(cfg).eval()
    with torch.no_grad():
        acts = model.features(torch.zeros(1, cfg.in_channels, size, size))
    L, rows = cfg.levels, []
    cin = cfg.in_channels
    for i, block in enumerate(model.enc):
        a = acts[f"enc{i + 1}"]
        rows.append(_row(f"enc{i + 1}", cfg.enc_layers, cin, a, n_params(block), receptive_field(cfg, f"enc{i + 1}")))
        cin = a.shape[1]
    a = acts["mid"]
    rows.append(_row("mid", cfg.mid_layers, cin, a, n_params(model.mid), receptive_field(cfg, "mid")))
    cin = a.shape[1]
    for j, (up, block) in enumerate(zip(model.up, model.dec)):
        name = f"dec{L - j}"
        a = acts[name]
        layers = f"up + {cfg.dec_layers[j]}"
        rows.append(_row(name, layers, cin, a, n_params(up) + n_params(block), receptive_field(cfg, name)))
        cin = a.shape[1]
    rows.append(
        {
            "block": "out",
            "layers": 1,
            "channels": f"{cin} → {cfg.in_channels}",
            "resolution": f"{size}×{size}",
            "parameters": n_params(model.out),
            "receptive field": f"{receptive_field(cfg, 'out')}×{receptive_field(cfg, 'out')}",
        }
    )
    return rows


def _row(name: str, layers, cin: int, act: torch.Tensor, params: int, rf: int | None) -> dict:
    """One row of block_table from a block's activation."""
    return {
        "block": name,
        "layers": layers,
        "channels": f"{cin} → {act.shape[1]}",
        "resolution": f"{act.shape[2]}×{act.shape[3]}",
        "parameters": params,
        "receptive field": f"{rf}×{rf}" if rf is not None else "—",
    }


def summary(cfg: UNetConfig | str, size: int) -> dict:
    """Total parameters, middle-block width and resolution, and its receptive field, at size x size."""
    cfg = preset(cfg) if isinstance(cfg, str) else cfg
    rows = block_table(cfg, size)
    mid = next(r for r in rows if r["block"] == "mid")
    return {
        "parameters": n_params(UNet(cfg)),
        "phi dimension": cfg.mid_width,
        "middle resolution": mid["resolution"],
        "middle receptive field": mid["receptive field"],
        "image size": f"{size}×{size}",
    }
