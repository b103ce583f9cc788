"""The blind, unconditional UNet denoiser of the paper (SPEC section 1).

The network sees only the noisy image y = x + sigma * z (no noise level, no time
embedding, no attention) and returns the clean-image estimate x_hat(y). Every layer is
conv 3x3 -> norm -> ReLU; the first conv has no norm. ``UNet.blocks(y)`` returns the
post-ReLU output of every block ("enc1".."encL", "mid", "decL".."dec1"), which is what
the representation phi averages (SPEC section 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from . import utils

NORMS = ("scale", "group", "none")
GAIN_INITS = ("paper", "positive", "ones")


@dataclass
class UNetConfig:
    """Architecture of the blind UNet; the defaults are the paper's model (preset ``paper``)."""

    in_channels: int = 1
    widths: tuple[int, ...] = (64, 128, 256)  # encoder level widths
    mid_width: int = 512  # middle-block width
    enc_layers: int = 2  # conv layers per encoder level
    mid_layers: int = 3  # conv layers in the middle block
    dec_layers: tuple[int, ...] = (7, 6, 5)  # conv layers per decoder level, deepest first
    norm: str = "scale"  # "scale" (the paper's), "group" or "none"
    norm_gain_init: float = 0.025  # |initial gain| bound of the scale norm
    gain_init: str = "paper"  # scale-norm gains: "paper" (small, either sign), "positive"
    # (their absolute values) or "ones"
    bias: bool = True
    skips: bool = True  # ordinary UNet skip connections
    residual: bool = False  # True: x_hat = y - f(y) (noise prediction)

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        self.dec_layers = tuple(int(n) for n in self.dec_layers)
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.gain_init not in GAIN_INITS:
            raise ValueError(f"gain_init must be one of {GAIN_INITS}, got {self.gain_init!r}")
        if not self.widths or any(w < 1 for w in self.widths) or self.mid_width < 1:
            raise ValueError(f"widths must be positive, got widths={self.widths}, mid_width={self.mid_width}")
        if len(self.dec_layers) != len(self.widths):
            raise ValueError(
                f"dec_layers needs one entry per encoder level ({len(self.widths)}), got {self.dec_layers}"
            )
        if self.enc_layers < 1 or self.mid_layers < 1 or min(self.dec_layers) < 1:
            raise ValueError(
                "every block needs at least one layer, got "
                f"enc_layers={self.enc_layers}, mid_layers={self.mid_layers}, dec_layers={self.dec_layers}"
            )
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {self.in_channels}")

    @property
    def levels(self) -> int:
        """Number of 2x poolings between the input and the middle block."""
        return len(self.widths)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return utils.to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error (a config of another architecture)."""
        return utils.from_dict(cls, d, strict=True)


PRESETS: dict[str, dict] = {
    # SPEC section 1: 64/128/256 + 512, decoder 7/6/5 layers; ~13.7 M parameters, middle RF 84x84.
    "paper": dict(widths=(64, 128, 256), mid_width=512, dec_layers=(7, 6, 5)),
    # The authors' small variant on synthetic data (16/32/64/128, decoder 2/2/2, ~0.63 M).
    "paper-small": dict(widths=(16, 32, 64), mid_width=128, dec_layers=(2, 2, 2)),
    # The CPU workhorse at 32x32: 4x the paper-small widths (~2.5 M).
    "small": dict(widths=(32, 64, 128), mid_width=256, dec_layers=(2, 2, 2)),
    # For tests: a few thousand parameters.
    "tiny": dict(widths=(8, 16), mid_width=16, enc_layers=1, mid_layers=2, dec_layers=(1, 1)),
}


def preset(name: str, **overrides) -> UNetConfig:
    """The named architecture preset, with optional field overrides (e.g. in_channels=3)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return UNetConfig(**{**PRESETS[name], **overrides})


class _ScaleNormFn(torch.autograd.Function):
    """y = x / (s + eps) * gain, s the standard deviation of each sample over (C, H, W), with its backward
    written out: the generic autograd graph of ``x.std()`` took about a fifth of a CPU training step
    (bench/bench_train.py), this takes two reductions and two passes over x each way."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, gain: torch.Tensor, eps: float) -> torch.Tensor:
        dims = (1, 2, 3)
        mu = x.mean(dim=dims, keepdim=True)
        xc = x - mu  # two-pass variance: exact however large the mean
        s = torch.linalg.vector_norm(xc, dim=dims, keepdim=True) / math.sqrt(x[0].numel())
        r = 1.0 / (s + eps)
        ctx.save_for_backward(xc, mu, s, r, gain)
        return x * (gain * r)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        xc, mu, s, r, gain = ctx.saved_tensors
        # dL/da for a = gain * r, per (sample, channel): sum over pixels of g * x, with x = xc + mu.
        da = (g * xc).sum(dim=(2, 3), keepdim=True) + mu * g.sum(dim=(2, 3), keepdim=True)
        dgain = (da * r).sum(dim=0, keepdim=True)
        dr = (da * gain).sum(dim=1, keepdim=True)
        # r = 1 / (s + eps), ds/dx = xc / (M s): the variance term; zero where a sample is constant.
        k = torch.where(s > 0, -dr * r * r / (s * xc[0].numel()).clamp_min(1e-30), torch.zeros_like(s))
        dx = g * (gain * r)
        dx.addcmul_(xc, k)
        return dx, dgain, None


class ScaleNorm(nn.Module):
    """The paper's norm: y / (std over (C,H,W) per sample + 1e-5) * per-channel gain; no shift."""

    def __init__(self, channels: int, gain_init: float = 0.025, eps: float = 1e-5, mode: str = "paper"):
        super().__init__()
        self.eps = eps
        # The authors' init: normal gains with a small scale, clipped to |g| <= gain_init.
        g = (torch.randn(1, channels, 1, 1) * (2.0 / 9.0 / 64.0)).clamp_(-gain_init, gain_init)
        if mode == "positive":
            g = g.abs()
        elif mode == "ones":
            g = torch.ones_like(g)
        self.gain = nn.Parameter(g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ScaleNormFn.apply(x, self.gain, self.eps)


def _norm(kind: str, channels: int, cfg: UNetConfig) -> nn.Module:
    if kind == "scale":
        return ScaleNorm(channels, cfg.norm_gain_init, mode=cfg.gain_init)
    if kind == "group":
        return nn.GroupNorm(min(32, channels), channels)
    return nn.Identity()


def _layer(cin: int, cout: int, cfg: UNetConfig, norm: bool = True) -> nn.Sequential:
    """One layer: conv 3x3 (zero padding 1) -> norm -> ReLU. The ReLU works in place: no backward reads the
    tensor it overwrites (the norm saves its input, a convolution its input), and a step allocates one
    full-size tensor less (+4 % img/s at 64 px on 2 CPU threads, in two interleaved rounds; same weights)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=cfg.bias),
        _norm(cfg.norm if norm else "none", cout, cfg),
        nn.ReLU(inplace=True),
    )


def _stack(cin: int, cout: int, n: int, cfg: UNetConfig, first_norm: bool = True) -> nn.Sequential:
    return nn.Sequential(*[_layer(cin if i == 0 else cout, cout, cfg, norm=(i > 0 or first_norm)) for i in range(n)])


class UNet(nn.Module):
    """Blind UNet x_hat(y) of SPEC section 1; fully convolutional on sizes divisible by 2**levels."""

    # Whether check_input also refuses NaN or infinite pixels. That check reads a value back from the device
    # (a wait on a GPU, a graph break under torch.compile); the training loop, whose inputs are x + sigma z of
    # checked data, turns it off on its own model.
    check_finite: bool = True

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        w, L = cfg.widths, cfg.levels
        self.enc = nn.ModuleList(
            _stack(cfg.in_channels if i == 0 else w[i - 1], w[i], cfg.enc_layers, cfg, first_norm=(i > 0))
            for i in range(L)
        )
        self.mid = _stack(w[-1], cfg.mid_width, cfg.mid_layers, cfg)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        cin = cfg.mid_width
        for i, n in zip(reversed(range(L)), cfg.dec_layers):  # deepest level first
            self.up.append(nn.ConvTranspose2d(cin, cin // 2, 2, stride=2, bias=False))
            cat = cin // 2 + (w[i] if cfg.skips else 0)
            self.dec.append(_stack(cat, w[i], n, cfg))
            cin = w[i]
        self.out = nn.Conv2d(w[0], cfg.in_channels, 3, padding=1, bias=cfg.bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal (fan-in) weights and zero biases, as the authors did."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def block_names(self) -> list[str]:
        """Names of the blocks whose activations ``blocks()`` returns, input to output."""
        L = self.cfg.levels
        return [f"enc{i + 1}" for i in range(L)] + ["mid"] + [f"dec{i}" for i in range(L, 0, -1)]

    def check_input(self, y: torch.Tensor) -> None:
        """Raise ValueError unless y is (N, in_channels, H, W) with H, W divisible by 2**levels (and finite, unless
        ``check_finite`` is off)."""
        c, k = self.cfg.in_channels, 2**self.cfg.levels
        if not isinstance(y, torch.Tensor) or y.ndim != 4:
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"expected a 4-D tensor (N, {c}, H, W), got {shape}")
        if not y.is_floating_point():
            raise ValueError(f"expected a floating-point tensor (images in [0, 1]), got {y.dtype}")
        if y.shape[1] != c:
            raise ValueError(f"expected {c} image channel(s), got {y.shape[1]} (input shape {tuple(y.shape)})")
        h, w = y.shape[-2:]
        if h % k or w % k or h < k or w < k:
            raise ValueError(f"image size {h}x{w} must be a positive multiple of {k} (2**{self.cfg.levels} levels)")
        if not self.check_finite:
            return
        bad = ~torch.isfinite(y)
        if bad.any():
            raise ValueError(
                f"input contains {int(bad.sum())} NaN or infinite pixel value(s) of {y.numel()}; expected finite values"
            )

    def _trunk(self, y: torch.Tensor, keep: dict[str, torch.Tensor] | None, upto: int) -> torch.Tensor | None:
        """Run the blocks in order, storing each in ``keep``; stop after block number ``upto`` of
        ``block_names`` (the decoder is skipped when the middle block is the deepest one asked for)."""
        skips, h, L = [], y, self.cfg.levels
        for i, block in enumerate(self.enc):
            h = block(h)
            skips.append(h)
            if keep is not None:
                keep[f"enc{i + 1}"] = h
            if upto <= i:
                return None
            h = F.avg_pool2d(h, 2)
        h = self.mid(h)
        if keep is not None:
            keep["mid"] = h
        if upto <= L:
            return None
        for j, (up, block) in enumerate(zip(self.up, self.dec)):
            h = up(h)
            if self.cfg.skips:
                h = torch.cat([h, skips[-1 - j]], dim=1)
            h = block(h)
            if keep is not None:
                keep[f"dec{L - j}"] = h
            if upto <= L + 1 + j:
                return None
        out = self.out(h)
        return y - out if self.cfg.residual else out

    def features(self, y: torch.Tensor, blocks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Post-ReLU activations {name: (N, C, h, w)} of the named blocks (all when None), the one public
        way to read inside the network; it runs only as far as the deepest block asked for (SPEC 2)."""
        names = self.block_names
        want = list(names if blocks is None else blocks)
        bad = [b for b in want if b not in names]
        if bad or not want:
            raise ValueError(f"unknown block(s) {bad or want}; this model has {names}")
        self.check_input(y)
        keep: dict[str, torch.Tensor] = {}
        self._trunk(y, keep, max(names.index(b) for b in want))
        return {b: keep[b] for b in want}

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        """Middle-block activation a_mid(y) (N, mid_width, H/2**L, W/2**L); skips the decoder."""
        return self.features(y, ["mid"])["mid"]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """The denoised image x_hat(y)."""
        self.check_input(y)
        return self._trunk(y, None, len(self.block_names))

    def blocks(self, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x_hat(y) and the post-ReLU output of every block, in one pass."""
        self.check_input(y)
        keep: dict[str, torch.Tensor] = {}
        return self._trunk(y, keep, len(self.block_names)), keep


def build(name_or_cfg: str | UNetConfig, **overrides) -> UNet:
    """A freshly initialised UNet from a preset name or a config."""
    cfg = preset(name_or_cfg, **overrides) if isinstance(name_or_cfg, str) else name_or_cfg
    return UNet(cfg)


def n_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _span(cfg: UNetConfig, block: str, pos: int) -> tuple[int, int]:
    """First and last input pixel (one axis, no border) that unit ``pos`` of ``block`` depends on: each
    3x3 conv widens by one unit a side, a 2x2 pooling maps unit u to 2u..2u+1, a 2x2 stride-2 transposed
    conv maps unit u to u // 2 of the coarser map, and a skip joins the encoder's span."""
    L = cfg.levels

    def enc(i: int, a: int, b: int) -> tuple[int, int]:  # span at the output of encoder level i
        a, b = a - cfg.enc_layers, b + cfg.enc_layers
        return (a, b) if i == 0 else enc(i - 1, 2 * a, 2 * b + 1)

    def mid(a: int, b: int) -> tuple[int, int]:
        return enc(L - 1, 2 * (a - cfg.mid_layers), 2 * (b + cfg.mid_layers) + 1)

    def dec(j: int, a: int, b: int) -> tuple[int, int]:  # span at the output of decoder stage j
        a, b = a - cfg.dec_layers[j], b + cfg.dec_layers[j]
        up = mid(a // 2, b // 2) if j == 0 else dec(j - 1, a // 2, b // 2)
        if not cfg.skips:
            return up
        skip = enc(L - 1 - j, a, b)
        return min(up[0], skip[0]), max(up[1], skip[1])

    if block == "mid":
        return mid(pos, pos)
    if block == "out":
        return dec(L - 1, pos - 1, pos + 1)
    k = int(block[3:])
    return enc(k - 1, pos, pos) if block.startswith("enc") else dec(L - k, pos, pos)


def receptive_field(cfg: UNetConfig, block: str = "mid") -> int:
    """Receptive field (pixels, one side) of ``block`` ("encK", "mid", "decK" or "out"): the widest input
    window one of its units sees. Decoder units see windows that differ with their position (the
    transposed convs), so this is the maximum over positions."""
    names = [f"enc{i + 1}" for i in range(cfg.levels)] + ["mid"] + [f"dec{i}" for i in range(cfg.levels, 0, -1)]
    if block not in names + ["out"]:
        raise ValueError(f"unknown block {block!r}; expected one of {names + ['out']}")
    return max(b - a + 1 for a, b in (_span(cfg, block, p) for p in range(2**cfg.levels)))
