"""sdrlib.adapter: phi (SPEC section 2) read from a named layer of any torch.nn.Module by a forward hook."""

from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sdrlib import representation
from sdrlib.adapter import layer_phi
from sdrlib.claims import sparse
from sdrlib.stats import VERDICTS
from sdrlib.unet import build


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return build("tiny").eval()


def foreign_cnn(seed: int = 0) -> nn.Sequential:
    """A small CNN built outside sdrlib, with named layers: conv-ReLU-pool-conv-ReLU."""
    torch.manual_seed(seed)
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(1, 6, 3, padding=1),
            relu1=nn.ReLU(),
            pool=nn.MaxPool2d(2),
            conv2=nn.Conv2d(6, 10, 3, padding=1),
            relu2=nn.ReLU(),
        )
    )


def by_hand(net: nn.Sequential, x: torch.Tensor, upto: str) -> torch.Tensor:
    """Run the layers one by one up to ``upto`` and average its output over H and W."""
    h = x
    for name, m in net.named_children():
        h = m(h)
        if name == upto:
            return h.mean(dim=(2, 3))
    raise KeyError(upto)


@pytest.mark.parametrize("sigma, n_noise", [(0.0, 1), (0.3, 3)])
def test_unet_middle_block_equals_phi_blocks(unet, sigma, n_noise):
    """For an sdrlib UNet, the hook on its middle block ("mid") gives exactly representation's phi."""
    x = torch.rand(7, 1, 16, 16)
    got = layer_phi(unet, "mid", x, sigma, n_noise, seed=4, batch=3)
    ref = representation.phi_blocks(unet, x, sigma, n_noise, ("mid",), seed=4, batch=3)["mid"]
    assert got.shape == ref.shape == (7, unet.cfg.mid_width)
    assert torch.equal(got, ref)


def test_unet_any_block_and_index_follow_representation(unet):
    """An encoder block by its module path, and the per-image noise rule (``index``) of representation."""
    x = torch.rand(4, 1, 16, 16)
    idx = torch.tensor([9, 2, 5, 0])
    got = layer_phi(unet, "enc.1", x, 0.2, 2, seed=1, index=idx)
    ref = representation.phi_blocks(unet, x, 0.2, 2, ("enc2",), seed=1, index=idx)["enc2"]
    assert torch.equal(got, ref)


def test_stopping_early_changes_nothing(unet):
    x = torch.rand(3, 1, 16, 16)
    early = layer_phi(unet, "mid", x, 0.5, 2, seed=3, stop=True)
    full = layer_phi(unet, "mid", x, 0.5, 2, seed=3, stop=False)
    assert torch.equal(early, full)


def test_stop_skips_the_rest_of_the_network():
    net = foreign_cnn()
    calls = []
    net.conv2.register_forward_pre_hook(lambda *_: calls.append(1))
    layer_phi(net, "pool", torch.rand(2, 1, 8, 8))
    assert calls == []
    layer_phi(net, "pool", torch.rand(2, 1, 8, 8), stop=False)
    assert calls == [1]


@pytest.mark.parametrize("layer", ["conv1", "relu1", "pool", "conv2", "relu2"])
def test_foreign_network_equals_a_hand_computation(layer):
    net = foreign_cnn().eval()
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        ref = by_hand(net, x, layer)
    torch.testing.assert_close(layer_phi(net, layer, x, batch=2), ref)


def test_a_later_in_place_op_does_not_change_what_was_read():
    """The hook reduces the output at once: a ReLU(inplace=True) after the layer must not overwrite it."""
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 4, 3, padding=1), relu=nn.ReLU(inplace=True))).eval()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        ref = net.conv(x).mean(dim=(2, 3))
    assert (ref < 0).any()
    torch.testing.assert_close(layer_phi(net, "conv", x, stop=False), ref)


def test_foreign_network_noisy_phi_is_the_average_over_draws():
    net = foreign_cnn().eval()
    x = torch.rand(4, 1, 8, 8)
    z = representation.noise_for(torch.arange(4), x.shape[1:], 3, seed=7)
    with torch.no_grad():
        ref = torch.stack([by_hand(net, x + 0.2 * z[d], "relu2") for d in range(3)]).mean(0)
    torch.testing.assert_close(layer_phi(net, "relu2", x, 0.2, 3, seed=7), ref)


def test_non_negative_after_a_relu():
    p = layer_phi(foreign_cnn(), "relu2", torch.randn(6, 1, 8, 8), sigma=1.0, n_noise=2)
    assert p.shape == (6, 10)
    assert (p >= 0).all()


def test_tuple_and_2d_outputs():
    class Pair(nn.Module):
        def forward(self, x):
            return F.relu(x), "extra"

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 3, 3, padding=1)
            self.pair = Pair()
            self.head = nn.Linear(3, 2)

        def forward(self, x):
            h, _ = self.pair(self.conv(x))
            return self.head(h.mean(dim=(2, 3)))

    torch.manual_seed(0)
    net = Net().eval()
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        h = F.relu(net.conv(x)).mean(dim=(2, 3))
        torch.testing.assert_close(layer_phi(net, "pair", x), h)
        torch.testing.assert_close(layer_phi(net, "head", x), net.head(h))


def test_hook_removed_and_modes_restored_when_the_forward_raises():
    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), boom=Boom()))
    net.train()
    net.conv.eval()  # a mixed state must come back as it was
    with pytest.raises(RuntimeError, match="boom"):
        layer_phi(net, "boom", torch.rand(2, 1, 8, 8))
    with pytest.raises(RuntimeError, match="boom"):
        layer_phi(net, "conv", torch.rand(2, 1, 8, 8), stop=False)
    for m in net.modules():
        assert not m._forward_hooks
    assert net.training
    assert not net.conv.training


def test_hook_removed_and_modes_restored_after_success(unet):
    unet.train()
    try:
        layer_phi(unet, "mid", torch.rand(2, 1, 16, 16), 0.1, 2)
        assert all(not m._forward_hooks for m in unet.modules())
        assert all(m.training for m in unet.modules())
    finally:
        unet.eval()


def test_value_errors():
    net = foreign_cnn()
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="'conv3'.*'conv1'"):
        layer_phi(net, "conv3", x)
    with pytest.raises(ValueError, match="sigma"):
        layer_phi(net, "conv1", x, sigma=-0.1)
    with pytest.raises(ValueError, match="n_noise"):
        layer_phi(net, "conv1", x, 0.1, n_noise=0)
    with pytest.raises(ValueError, match="images"):
        layer_phi(net, "conv1", torch.zeros(2, 1, 8, 8, dtype=torch.uint8))

    class Seq(nn.Module):
        def forward(self, x):
            return x.flatten(2)  # (N, C, L): neither (N, C, H, W) nor (N, C)

    odd = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), flat=Seq()))
    with pytest.raises(ValueError, match=r"'flat'.*\(2, 2, 36\)"):
        layer_phi(odd, "flat", x)

    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = nn.Conv2d(1, 1, 1)

        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="'unused' did not run"):
        layer_phi(Skip(), "unused", x)


def test_claims_layer_runs_on_a_foreign_network():
    x = torch.rand(24, 1, 8, 8)
    trained = layer_phi(foreign_cnn(0), "relu2", x, 0.1, 2)
    other = layer_phi(foreign_cnn(1), "relu2", x, 0.1, 2)
    res = sparse.sparsity_claim([trained], [other], n_boot=50)
    assert res.verdict in VERDICTS
