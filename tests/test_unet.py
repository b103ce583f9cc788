"""The blind UNet of SPEC section 1: architecture arithmetic, the scale norm, blocks, errors."""

import inspect

import pytest
import torch

from sdrlib.unet import ScaleNorm, UNet, UNetConfig, _ScaleNormFn, build, n_params, preset, receptive_field


def conv(cin: int, cout: int, bias: bool = True, k: int = 3) -> int:
    return k * k * cin * cout + (cout if bias else 0)


def paper_param_count(c: int = 1) -> int:
    """Parameter count of the paper's model written out layer by layer from SPEC section 1."""

    def layer(cin, cout):
        return conv(cin, cout) + cout  # conv + scale-norm gain

    enc = conv(c, 64) + layer(64, 64) + layer(64, 128) + layer(128, 128) + layer(128, 256) + layer(256, 256)
    mid = layer(256, 512) + 2 * layer(512, 512)
    dec3 = conv(512, 256, False, 2) + layer(512, 256) + 6 * layer(256, 256)
    dec2 = conv(256, 128, False, 2) + layer(256, 128) + 5 * layer(128, 128)
    dec1 = conv(128, 64, False, 2) + layer(128, 64) + 4 * layer(64, 64)
    return enc + mid + dec3 + dec2 + dec1 + conv(64, c)


def test_paper_preset_matches_spec():
    m = build("paper")
    assert n_params(m) == paper_param_count(1) == 13_712_833
    assert abs(n_params(m) / 1e6 - 13.7) < 0.05
    assert receptive_field(m.cfg) == 84
    assert n_params(build("paper", in_channels=3)) == paper_param_count(3)
    assert abs(n_params(build("paper-small")) / 1e6 - 0.63) < 0.01
    assert abs(n_params(build("small")) / 1e6 - 2.5) < 0.05


@pytest.mark.parametrize("block", ["enc1", "enc2", "mid", "dec2", "dec1", "out"])
def test_receptive_field_matches_gradient_support(block):
    """The analytic receptive field of every block is the widest support of d a_block[u] / d y over its
    units u (decoder units differ with their position, so several neighbouring units are tried)."""
    torch.manual_seed(0)
    cfg = preset("tiny", norm="none")
    m = UNet(cfg).double()
    for p in m.parameters():  # positive weights: no accidental cancellation in the gradient
        p.data.abs_()
    widths = []
    for off in range(4):
        y = torch.rand(1, 1, 128, 128, dtype=torch.float64, requires_grad=True)
        a = m(y) if block == "out" else m.features(y, [block])[block]
        a[0, :, a.shape[2] // 2 + off, a.shape[3] // 2].sum().backward()
        rows = (y.grad[0, 0].abs().sum(1) > 0).nonzero()
        widths.append(int(rows.max() - rows.min() + 1))
    assert max(widths) == receptive_field(cfg, block)
    assert receptive_field(cfg, "mid") == 26
    assert receptive_field(preset("paper"), "mid") == 84


def test_features_stop_at_the_deepest_block_asked_for():
    """features() returns exactly the blocks named, equal to those of a full pass, and runs no decoder
    layer when only encoder and middle blocks are asked for."""
    torch.manual_seed(0)
    m = build("tiny").eval()
    y = torch.rand(2, 1, 16, 16)
    _, every = m.blocks(y)
    got = m.features(y, ["mid", "enc1"])
    assert list(got) == ["mid", "enc1"]
    assert all((torch.equal(got[k], every[k]) for k in got))
    calls = []
    m.dec[0].register_forward_hook(lambda *a: calls.append(1))
    m.features(y, ["mid"])
    assert calls == []
    m.features(y, ["dec2"])
    assert calls == [1]
    with pytest.raises(ValueError, match="unknown block"):
        m.features(y, ["dec9"])


def test_blind_and_fully_convolutional():
    m = build("tiny").eval()
    assert list(inspect.signature(m.forward).parameters) == ["y"]  # no sigma / time input
    for shape in [(2, 1, 32, 32), (1, 1, 16, 48)]:
        y = torch.rand(shape)
        assert m(y).shape == shape


def test_scale_norm_definition():
    torch.manual_seed(1)
    n = ScaleNorm(6)
    n.gain.data = torch.randn(1, 6, 1, 1)
    x = torch.randn(3, 6, 5, 7) * 3 + 1
    ref = torch.stack([x[i] / (x[i].std(unbiased=False) + 1e-5) for i in range(3)]) * n.gain
    torch.testing.assert_close(n(x), ref)
    assert ScaleNorm(512).gain.abs().max() <= 0.025  # the paper's small initial gains
    # scale equivariance: the norm divides out any positive scale of its input
    torch.testing.assert_close(n(5 * x), n(x), rtol=1e-4, atol=1e-5)


def test_blocks_are_post_relu_and_consistent():
    torch.manual_seed(0)
    m = build("tiny").eval()
    y = torch.rand(2, 1, 32, 32)
    x_hat, blocks = m.blocks(y)
    assert list(blocks) == ["enc1", "enc2", "mid", "dec2", "dec1"] == sorted(blocks, key=m.block_names.index)
    assert all((b >= 0).all() for b in blocks.values())
    assert blocks["mid"].shape == (2, 16, 8, 8)
    torch.testing.assert_close(m.encode(y), blocks["mid"])
    torch.testing.assert_close(m(y), x_hat)


def test_tiny_exact_output_values():
    """Regression pin: a seeded tiny model gives these outputs (torch 2.13 CPU, float32)."""
    torch.manual_seed(0)
    m = build("tiny").eval()
    for mod in m.modules():  # unit gains, so that every layer contributes visibly
        if isinstance(mod, ScaleNorm):
            mod.gain.data.fill_(1.0)
    y = torch.linspace(0, 1, 32 * 32).view(1, 1, 32, 32)
    out = m(y)[0, 0]
    got = torch.stack([out[0, 0], out[16, 16], out[31, 31], out.mean()])
    torch.testing.assert_close(got, EXPECTED_TINY, rtol=1e-4, atol=2e-5)


EXPECTED_TINY = torch.tensor([-0.00335, -1.03142, -0.69234, -1.27119])


def test_residual_and_options():
    cfg = preset("tiny", residual=True, skips=False, norm="group", bias=False)
    m = UNet(cfg).eval()
    y = torch.rand(1, 1, 16, 16)
    assert m(y).shape == y.shape
    assert all(not isinstance(x, torch.nn.Conv2d) or x.bias is None for x in m.modules())
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "shape, msg", [((1, 3, 32, 32), "channel"), ((1, 1, 30, 32), "multiple of 4"), ((1, 32, 32), "4-D")]
)
def test_bad_input_shapes(shape, msg):
    with pytest.raises(ValueError, match=msg):
        build("tiny")(torch.rand(shape))


def test_nan_pixels_rejected():
    y = torch.rand(1, 1, 16, 16)
    y[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        build("tiny")(y)


def test_bad_configs():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        preset("huge")
    with pytest.raises(ValueError, match="norm"):
        UNetConfig(norm="batch")
    with pytest.raises(ValueError, match="dec_layers"):
        UNetConfig(widths=(8, 16), dec_layers=(1,))
    with pytest.raises(ValueError, match="unknown UNetConfig keys"):
        UNetConfig.from_dict({"depth": 3})


def test_gain_init_modes():
    torch.manual_seed(0)

    def gains(m):
        return torch.cat([x.gain.flatten() for x in m.modules() if isinstance(x, ScaleNorm)])

    paper = gains(build("small"))
    assert paper.abs().max() <= 0.025
    assert (paper < 0).any()
    assert (paper > 0).any()
    torch.manual_seed(0)
    assert torch.equal(gains(build("small", gain_init="positive")), paper.abs())
    assert (gains(build("small", gain_init="ones")) == 1).all()
    with pytest.raises(ValueError, match="gain_init"):
        UNetConfig(gain_init="zeros")


def test_scale_norm_matches_its_definition_and_gradients():
    """The scale norm's written-out backward equals autograd's on the definition y = x / (std + eps) * g,
    on both memory layouts and with a mean far larger than the spread (the two-pass variance)."""
    torch.manual_seed(0)
    g = torch.randn(1, 4, 1, 1, dtype=torch.double, requires_grad=True)
    for offset in (0.0, 1e3):
        x0 = torch.randn(3, 4, 5, 5, dtype=torch.double) * 0.5 + offset
        for x in (x0.clone(), x0.contiguous(memory_format=torch.channels_last)):
            x.requires_grad_(True)
            n = ScaleNorm(4).double()
            n.gain.data.copy_(g.detach())
            ref = x / (x.flatten(1).std(dim=1, unbiased=False).view(-1, 1, 1, 1) + n.eps) * g
            w = torch.randn_like(ref)
            gx, gg = torch.autograd.grad((ref * w).sum(), (x, g))
            out = n(x)
            hx, hg = torch.autograd.grad((out * w).sum(), (x, n.gain))
            torch.testing.assert_close(out, ref)
            torch.testing.assert_close(hx, gx)
            torch.testing.assert_close(hg, gg)
    assert torch.autograd.gradcheck(
        lambda x, g: _ScaleNormFn.apply(x, g, 1e-5), (x0[:, :, :3, :3].clone().requires_grad_(True), g)
    )
