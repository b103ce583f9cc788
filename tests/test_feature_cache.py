"""The cached features of a checkpoint (sdrlib.feature_cache): the disk cache, shared controls and control seeds.
(tests/test_feature_caches.py checks the committed caches themselves.)"""

import pytest
import torch

from sdrlib import feature_cache, representation
from sdrlib.unet import build


def test_cache_round_trip(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"phi": torch.arange(6.0).view(2, 3)}

    k = feature_cache.cache_key("abc", "fashion-mnist", sigma=0.1, n=2)
    a = feature_cache.cached(k, compute, tmp_path)
    b = feature_cache.cached(k, compute, tmp_path)
    assert torch.equal(a["phi"], b["phi"])
    assert len(calls) == 1
    assert k != feature_cache.cache_key("abc", "fashion-mnist", sigma=0.2, n=2)


def test_checkpoint_features_share_one_control_across_image_sets(tmp_path, monkeypatch):
    from sdrlib import checkpoints

    monkeypatch.setenv("SDR_CACHE", str(tmp_path))
    torch.manual_seed(0)
    path = checkpoints.save(tmp_path / "ck", build("tiny"), {"train": {"data": "fashion-mnist", "size": None}})
    a, ia = feature_cache.checkpoint_features(path, "test", 8, 0.0, 1, blocks=["mid"], seed=0)
    b, ib = feature_cache.checkpoint_features(path, "test", 8, 0.0, 1, blocks=["mid"], seed=1)
    ctrl = representation.untrained_like(checkpoints.load_model(path), 0)
    torch.testing.assert_close(a["untrained phi mid"], representation.phi(ctrl, ia.images, 0.0))
    torch.testing.assert_close(b["untrained phi mid"], representation.phi(ctrl, ib.images, 0.0))
    again, _ = feature_cache.checkpoint_features(path, "test", 8, 0.0, 1, blocks=["mid"], seed=0)  # from the cache
    assert torch.equal(again["phi mid"], a["phi mid"])


def test_control_phi_seed_0_is_the_features_control_and_seeds_differ(tmp_path, monkeypatch):
    """control_phi reads the same images and noise as checkpoint_features: its seed-0 network is the features'
    untrained control, and another seed is another network."""
    from sdrlib import checkpoints

    monkeypatch.setenv("SDR_CACHE", str(tmp_path))
    torch.manual_seed(0)
    path = checkpoints.save(tmp_path / "ck", build("tiny"), {"train": {"data": "fashion-mnist", "size": None}})
    f, _ = feature_cache.checkpoint_features(path, "test", 8, 0.1, 2, blocks=["mid"], seed=3)
    c0, c1 = feature_cache.control_phi(path, [0, 1], "test", 8, 0.1, 2, seed=3)
    torch.testing.assert_close(c0, f["untrained phi mid"])
    assert not torch.allclose(c0, c1)
    with pytest.raises(ValueError, match="block 'nope'"):
        feature_cache.control_phi(path, [0], "test", 8, block="nope")
