"""The feature caches committed beside each reference (checkpoints/<name>/features/) hold what they say: a
random subset of the rows of every file, recomputed from the checkpoint and its data, matches the stored
values (float16), and each file was made with the reference's current weights."""

from pathlib import Path

import pytest
import torch

from sdrlib import checkpoints, feature_cache, representation

ALL = sorted(checkpoints.REPO_CHECKPOINTS.glob(f"**/{feature_cache.FEATURES}/*.safetensors"))
# Feature caches (phi per image, phi on a sigma grid) are recomputed in part; the sample sets of chapter 4 that
# share the folder (sdrlib.samples) are checked for their weights and parameters only: a sampler's batch is
# not reproducible row by row.
FILES = [p for p in ALL if feature_cache.cache_meta(p)["kind"] in ("features", "grid", "control phi")]
SAMPLES = [p for p in ALL if feature_cache.cache_meta(p)["kind"].startswith("samples-")]
CLASSICAL = [p for p in ALL if feature_cache.cache_meta(p)["kind"] == "classical"]


def recompute(ck: checkpoints.Checkpoint, meta: dict, rows: torch.Tensor) -> dict[str, torch.Tensor]:
    """The stored tensors of a cache file, recomputed for some of its rows."""

    full = checkpoints.load_data(ck, meta["split"], **meta.get("data_kwargs", {}))
    images = full.images[rows]
    if meta["kind"] == "control phi":  # feature_cache.control_phi: one untrained network's phi of one block
        net = representation.untrained_like(ck.model, meta["control"])
        b = meta["block"]
        return {
            "phi": representation.phi_blocks(
                net, images, meta["sigma"], meta["n_noise"], (b,), meta["seed"], index=rows
            )[b]
        }
    nets = {"phi": ck.model}
    if meta["control"] is not None:
        nets["untrained phi"] = representation.untrained_like(ck.model, meta["control"])
    out = {}
    for prefix, m in nets.items():
        if meta["kind"] == "features":
            got = representation.phi_blocks(
                m, images, meta["sigma"], meta["n_noise"], meta["blocks"], meta["seed"], index=rows
            )
            out.update({f"{prefix} {b}": v for b, v in got.items()})
        else:
            out[f"{prefix} mid"] = torch.stack(
                [
                    representation.phi_blocks(m, images, s, meta["n_noise"], ("mid",), meta["seed"], index=rows)["mid"]
                    for s in meta["sigmas"]
                ]
            )
    if meta.get("texture"):
        out["texture stats"] = representation.texture_stats(images)
    return out


@pytest.mark.parametrize(
    "path", FILES, ids=[f"{p.parent.parent.relative_to(checkpoints.REPO_CHECKPOINTS)}/{p.stem[:8]}" for p in FILES]
)
def test_cache_matches_a_recomputed_subset(path: Path):
    from safetensors.torch import load_file

    meta = feature_cache.cache_meta(path)
    ck = checkpoints.load(path.parent.parent, weights=meta["weights"])
    assert ck.sha256 == meta["checkpoint"], f"{path} was made with other weights: delete it and re-run the chapters"
    stored = load_file(str(path))
    all_rows = stored["rows"]
    pick = torch.randperm(len(all_rows), generator=torch.Generator().manual_seed(len(all_rows)))[:4]
    fresh = recompute(ck, meta, all_rows[pick])
    for key, v in fresh.items():
        s = stored[key].float()
        s = s[:, pick] if meta["kind"] == "grid" else s[pick]
        torch.testing.assert_close(
            v, s, rtol=5e-3, atol=2e-3 * max(float(s.abs().max()), 1e-6), msg=lambda m, k=key: f"{path.name} {k}: {m}"
        )


def test_every_cache_file_has_its_parameters():
    for path in FILES:
        meta = feature_cache.cache_meta(path)
        assert {"kind", "split", "seed", "n_noise", "checkpoint", "weights", "fingerprint"} <= set(meta), path


@pytest.mark.parametrize(
    "path", SAMPLES, ids=[f"{p.parent.parent.relative_to(checkpoints.REPO_CHECKPOINTS)}/{p.stem[:8]}" for p in SAMPLES]
)
def test_sample_sets_were_drawn_with_the_current_weights(path: Path):
    from safetensors.torch import load_file

    meta = feature_cache.cache_meta(path)
    assert meta["kind"].startswith("samples-"), path
    assert {"checkpoint", "weights", "seed"} <= set(meta), path
    ck = checkpoints.load(path.parent.parent, weights=meta["weights"])
    assert ck.sha256 == meta["checkpoint"], f"{path} was drawn with other weights: delete it and re-run chapter 4"
    stored = load_file(str(path))
    x = stored["samples"].float()
    assert x.ndim == 4, path
    assert x.shape[1] == ck.model.cfg.in_channels, path
    assert 0 <= x.min(), path
    assert x.max() <= 1, path


@pytest.mark.parametrize(
    "path",
    CLASSICAL,
    ids=[f"{p.parent.parent.relative_to(checkpoints.REPO_CHECKPOINTS)}/{p.stem[:8]}" for p in CLASSICAL],
)
def test_classical_results_match_a_recomputed_method(path: Path):
    """Chapter 1's per-image PSNR of the classical denoisers: the fast one (wavelet) recomputed on every image
    and noise level, with the same noise draws, matches the stored table (BM3D, the slow one, is not rerun)."""
    from safetensors.torch import load_file

    from sdrlib import baselines

    meta = feature_cache.cache_meta(path)
    ck = checkpoints.load(path.parent.parent)
    test = checkpoints.load_data(ck, "test")
    assert test.fingerprint()["sha256"] == meta["fingerprint"], f"{path}: the held-out set changed"
    stored = load_file(str(path))
    assert set(stored) == set(meta["methods"]), path
    name = next(m for m, f in meta["methods"].items() if f == "wavelet")
    rows = torch.tensor(meta["rows"])
    t = baselines.psnr_versus_sigma(
        {name: "wavelet"}, test.images[rows], meta["sigmas"], seed=meta["seed"], per_image=True
    )
    fresh = torch.stack([r["per_image"] for r in t[name]])
    torch.testing.assert_close(fresh.float(), stored[name].float(), rtol=0, atol=1e-3)


@pytest.mark.parametrize(
    "path",
    CLASSICAL,
    ids=[f"{p.parent.parent.relative_to(checkpoints.REPO_CHECKPOINTS)}/{p.stem[:8]}" for p in CLASSICAL],
)
def test_classical_psnr_finds_the_committed_table_under_its_own_key(path: Path, monkeypatch):
    """feature_cache.classical_psnr, given the parameters stored with a committed table, reads that very file (its
    key is unchanged) and computes nothing: chapter 1 re-executed reuses BM3D's results."""
    from safetensors.torch import load_file

    from sdrlib import baselines

    def never(*a, **k):
        raise AssertionError("classical_psnr recomputed a table that is committed")

    monkeypatch.setattr(baselines, "psnr_versus_sigma", never)
    meta = feature_cache.cache_meta(path)
    ck = checkpoints.load(path.parent.parent)
    test = checkpoints.load_data(ck, "test")
    got = feature_cache.classical_psnr(
        ck, test, torch.tensor(meta["rows"]), meta["sigmas"], meta["methods"], meta["seed"], cache_in="reference"
    )
    stored = load_file(str(path))
    assert set(got) == set(stored)
    for m in stored:
        assert torch.equal(got[m], stored[m].float()), m
