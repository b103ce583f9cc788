"""The memory-mapped uint8 store (sdrlib.data.store): indexing semantics, the in-memory / store rule, the cache
record of a stored set, and a bound on the memory used while building and iterating over a set larger than it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdrlib import data
from sdrlib.data.store import U8Images, memory_budget, use_memory, write_store


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Own cache folder, default budget."""
    monkeypatch.setenv("SDR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SDR_DATA_BUDGET_GB", raising=False)
    monkeypatch.delenv("SDR_DATA_IMAGENET64", raising=False)


def _store(tmp_path: Path, n: int = 10) -> tuple[U8Images, np.ndarray]:
    a = np.random.default_rng(0).integers(0, 256, (n, 3, 4, 5), dtype=np.uint8)
    return U8Images(write_store(tmp_path / "s.npy", n, (3, 4, 5), (a[i : i + 3] for i in range(0, n, 3)))), a


def test_store_indexing_reads_only_what_is_asked(tmp_path: Path) -> None:
    x, a = _store(tmp_path)
    ref = torch.from_numpy(a).float() / 255
    assert x.shape == (10, 3, 4, 5)
    assert len(x) == 10
    assert x.dtype == torch.float32
    assert x.ndim == 4
    assert torch.equal(x[:], ref)
    assert torch.equal(x[3], ref[3])
    assert torch.equal(x[-1], ref[-1])
    assert torch.equal(x[2:9:3], ref[2:9:3])
    assert x[5:5].shape == (0, 3, 4, 5)
    idx = torch.tensor([7, 1, 1, 9, 0])  # unsorted, repeated
    assert torch.equal(x[idx], ref[idx])
    assert torch.equal(x[idx.numpy()], ref[idx])
    assert torch.equal(x[[4, 2]], ref[[4, 2]])
    mask = torch.arange(10) % 3 == 0
    assert torch.equal(x[mask], ref[mask])
    assert torch.equal(x[:, 1], ref[:, 1])
    view = x.take(torch.tensor([8, 6, 4]))
    assert len(view) == 3
    assert torch.equal(view[:], ref[[8, 6, 4]])
    assert torch.equal(view[[2, 0]], ref[[4, 8]])
    assert torch.equal(view.take([1])[:], ref[[6]])
    assert x.to("cpu") is not x
    assert torch.equal(x.to("cpu")[0], ref[0])
    assert [b.shape[0] for b in x.batches(4)] == [4, 4, 2]
    with pytest.raises(IndexError, match="0..10"):
        x[[0, 10]]
    with pytest.raises(TypeError, match="index images"):
        x[torch.rand(3)]


def test_store_writing_is_checked_and_atomic(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk of uint8"):
        write_store(tmp_path / "bad.npy", 4, (1, 2, 2), [np.zeros((4, 1, 3, 3), np.uint8)])
    with pytest.raises(ValueError, match="expected 4 images, the source gave 2"):
        write_store(tmp_path / "short.npy", 4, (1, 2, 2), [np.zeros((2, 1, 2, 2), np.uint8)])
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind
    np.save(tmp_path / "f.npy", np.zeros((2, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="expected uint8 NCHW"):
        U8Images(tmp_path / "f.npy")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        U8Images(tmp_path / "none.npy")


def test_budget_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    assert memory_budget() == 2 * 2**30
    assert use_memory(1000, (3, 64, 64), None)
    assert not use_memory(100000, (3, 64, 64), None)
    assert use_memory(100000, (3, 64, 64), True)
    assert not use_memory(10, (3, 8, 8), False)
    monkeypatch.setenv("SDR_DATA_BUDGET_GB", "0.001")
    assert not use_memory(1000, (3, 64, 64), None)
    for bad in ("lots", "-1"):
        monkeypatch.setenv("SDR_DATA_BUDGET_GB", bad)
        with pytest.raises(ValueError, match="SDR_DATA_BUDGET_GB"):
            memory_budget()


def _fake_imagenet(root: Path, rows: int, batches: int = 10, side: int = 64) -> None:
    """train batches and val_data.npz in the official layout, each ``rows`` images, written one at a time."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"train_data_batch_{i}" for i in range(1, batches + 1)] + ["val_data"]:
        img = rng.integers(0, 256, (rows, 3 * side * side), dtype=np.uint8)
        np.savez(root / f"{name}.npz", data=img, labels=rng.integers(1, 1001, rows).tolist())


def test_stored_and_in_memory_sets_are_the_same(tmp_path: Path) -> None:
    _fake_imagenet(tmp_path / "in64", rows=7)
    kw = {"root": str(tmp_path / "in64"), "split": "test"}
    mem = data.load("imagenet64", in_memory=True, **kw)
    st = data.load("imagenet64", in_memory=False, **kw)
    assert isinstance(mem.images, torch.Tensor)
    assert isinstance(st.images, U8Images)
    assert torch.equal(mem.images, st.images[:])
    assert torch.equal(mem.labels, st.labels)
    assert mem.fingerprint() == st.fingerprint()
    assert st.images.path.parent == data.cache_dir()
    again = data.load("imagenet64", in_memory=False, **kw)  # from the cache record: the same store, not rebuilt
    assert isinstance(again.images, U8Images)
    assert again.images.path == st.images.path
    assert torch.equal(again.images[:], mem.images)
    st.images.path.unlink()  # a record whose store is gone is rebuilt
    assert torch.equal(data.load("imagenet64", in_memory=False, **kw).images[:], mem.images)
    sub = st.subset(3, seed=1)  # small subsets come back in memory
    assert isinstance(sub.images, torch.Tensor)
    assert torch.equal(sub.images, mem.subset(3, seed=1).images)
    x = st.images.to("cpu")  # as the trainer uses ImageSet.images
    idx = torch.randint(0, x.shape[0], (5,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(x[idx], mem.images[idx])
    assert x[idx].dtype == torch.float32
    data.check_contract(st)


def test_large_takes_stay_in_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_imagenet(tmp_path / "in64", rows=4, batches=2)
    monkeypatch.setenv("SDR_DATA_BUDGET_GB", str(5 * 3 * 64 * 64 * 4 / 2**30))  # five float32 images
    ds = data.load("imagenet64", root=str(tmp_path / "in64"), batches=(1, 2))
    assert isinstance(ds.images, U8Images)
    assert len(ds) == 8  # 8 images > budget: stored
    kept, out = ds.split_classes(2)
    assert len(kept) + len(out) == 8
    assert isinstance(ds.take(torch.arange(6)).images, U8Images)
    assert isinstance(ds.take(torch.arange(5)).images, torch.Tensor)
    assert torch.equal(ds.take(torch.arange(6)).images[:], ds.images[:6])


def test_folder_store_skips_unreadable_rows(tmp_path: Path) -> None:
    root = tmp_path / "tree" / "a"
    root.mkdir(parents=True)
    for i in range(6):
        Image.new("RGB", (20, 20), (40 * i, 0, 0)).save(root / f"{i}.png")
    (root / "3.png").write_bytes(b"broken")
    name = f"folder:{tmp_path / 'tree'}"
    mem = data.load(name, size=8, test_fraction=0.2, in_memory=True)
    st = data.load(name, size=8, test_fraction=0.2, in_memory=False)
    assert isinstance(st.images, U8Images)
    assert st.images.rows is not None
    assert st.meta["skipped"] == "1"
    assert torch.equal(mem.images, st.images[:])
    assert torch.equal(mem.labels, st.labels)
    assert len(st) == 4


def _vm(key: str) -> int:
    """A /proc/self/status memory figure in bytes."""
    line = next(v for v in Path("/proc/self/status").read_text().splitlines() if v.startswith(key + ":"))
    return int(line.split()[1]) * 1024


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to reset the peak RSS")
def test_memory_stays_bounded_for_a_set_larger_than_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = 2440  # 10 batches x 2440 x 12288 B = 300 MB of uint8, 1.2 GB as float32
    _fake_imagenet(tmp_path / "in64", rows=rows)
    _fake_imagenet(tmp_path / "warm", rows=8)
    monkeypatch.setenv("SDR_DATA_BUDGET_GB", "0.1")
    list(data.load("imagenet64", root=str(tmp_path / "warm"), in_memory=False).images.batches(4))  # code paths
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak resident set to the current one
    before = _vm("VmRSS")
    ds = data.load("imagenet64", root=str(tmp_path / "in64"))
    x = ds.images
    total, n = 0.0, 0
    for b in x.batches(256):
        total += float(b.sum())
        n += len(b)
    growth = _vm("VmHWM") - before
    float_bytes = len(x) * 3 * 64 * 64 * 4
    assert isinstance(x, U8Images)
    assert n == 10 * rows
    assert float_bytes > 1100000000.0
    assert abs(total / (n * 3 * 64 * 64) - 127.5 / 255) < 0.01  # every image was read
    # in memory it would be 1.2 GB; stored, the process holds a few batches (plus what the allocator keeps)
    assert growth < float_bytes / 5, f"peak RSS grew by {growth / 1e6:.0f} MB for a {float_bytes / 1e9:.1f} GB set"
