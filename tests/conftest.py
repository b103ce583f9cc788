"""Fixtures for test files that do not define their own (a local fixture of the same name wins); written for the
tests of chapter 5's explorers (test_explore.py) and their widgets (test_explore_widgets.py): a tiny untrained
UNet, 40 random images in 4 labels, and their features."""

import pytest
import torch

from sdrlib import representation, unet


@pytest.fixture(scope="module")
def model() -> unet.UNet:
    torch.manual_seed(0)
    return unet.build("tiny").eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(40, 1, 16, 16, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def labels() -> torch.Tensor:
    return torch.arange(40) % 4


@pytest.fixture(scope="module")
def feats(model, images) -> dict:
    return representation.features(model, images, sigma=0.1, n_noise=2)
