"""Readers of the standard on-disk formats (ImageNet64 .npz, CIFAR-10 pickles, CelebA, LSUN as images), each tested
on tiny files written here in the exact on-disk layout; missing files and unsafe pickles give clear errors."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdrlib import data
from sdrlib.data import cifar10

ENVS = ("SDR_DATA_IMAGENET64", "SDR_DATA_CIFAR10", "SDR_DATA_CELEBA", "SDR_DATA_LSUN_BEDROOM")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Own cache folder; no reader location inherited from the environment."""
    monkeypatch.setenv("SDR_CACHE", str(tmp_path / "cache"))
    for env in ENVS:
        monkeypatch.delenv(env, raising=False)


def _contract(ds: data.ImageSet, channels: int, size: int) -> None:
    x = ds.images[:]
    assert x.dtype == torch.float32
    assert tuple(x.shape[1:]) == (channels, size, size)
    assert float(x.min()) >= 0
    assert float(x.max()) <= 1
    assert ds.labels.dtype == torch.int64
    assert ds.labels.shape == (len(x),)
    assert int(ds.labels.max()) < len(ds.classes)


# --------------------------------------------------------------------------- imagenet64


def _planar(rng: np.random.Generator, n: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """n random images (N,3,S,S) and their rows as the .npz stores them: C,H,W-flattened, uint8."""
    img = rng.integers(0, 256, (n, 3, side, side), dtype=np.uint8)
    return img, img.reshape(n, -1)


def _write_imagenet(root: Path, n: int = 6, side: int = 64, compressed: bool = False) -> dict[str, np.ndarray]:
    """The 10 train batches and val_data.npz (keys data, labels 1..1000 as a list, mean), tiny."""
    root.mkdir(parents=True, exist_ok=True)
    rng, imgs = np.random.default_rng(0), {}
    save = np.savez_compressed if compressed else np.savez
    for name in [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]:
        img, rows = _planar(rng, n, side)
        labels = [int(v) for v in rng.integers(1, 1001, n)]
        labels[0] = 1000 if name == "val_data" else 1
        kw = {"mean": rows.mean(0)} if name.startswith("train") else {}
        save(root / f"{name}.npz", data=rows, labels=labels, **kw)
        imgs[name] = (img, np.array(labels))
    return imgs


@pytest.mark.parametrize("compressed", [False, True])
def test_imagenet64_reads_npz_batches(tmp_path: Path, compressed: bool) -> None:
    truth = _write_imagenet(tmp_path / "in64", compressed=compressed)
    test = data.load("imagenet64", split="test", root=str(tmp_path / "in64"), cache=False)
    _contract(test, 3, 64)
    img, labels = truth["val_data"]
    assert torch.equal(test.images, torch.from_numpy(img).float() / 255)  # C,H,W order, /255
    assert test.labels.tolist() == (labels - 1).tolist()
    assert int(test.labels[0]) == 999
    assert len(test.classes) == 1000
    assert test.classes[0] == "class 1"
    train = data.load("imagenet64", root=str(tmp_path / "in64"), cache=False)
    assert len(train) == 60
    assert int(train.labels[0]) == 0
    assert train.fingerprint()["sources"]["train_data_batch_3.npz"]["images"] == 6
    two = data.load("imagenet64", root=str(tmp_path / "in64"), batches=(2, 5), size=32, cache=False)
    assert two.images.shape == (12, 3, 32, 32)


def test_imagenet32_variant_and_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    truth = _write_imagenet(tmp_path / "in32", n=3, side=32)
    (tmp_path / "in32" / "map_clsloc.txt").write_text("n01440764 1 tench\nn01443537 2 goldfish\n")
    monkeypatch.setenv("SDR_DATA_IMAGENET64", str(tmp_path / "in32"))
    ds = data.load("imagenet64", split="test", cache=False)
    assert ds.images.shape == (3, 3, 32, 32)
    assert ds.meta["native_size"] == "32"
    assert torch.equal(ds.images, torch.from_numpy(truth["val_data"][0]).float() / 255)
    assert ds.classes[:3] == ["n01440764 tench", "n01443537 goldfish", "class 3"]
    assert "val_data.npz=" in data.source_stamp("imagenet64")


def test_imagenet64_missing_files_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_imagenet(tmp_path / "in64", n=2)
    (tmp_path / "in64" / "train_data_batch_7.npz").unlink()
    (tmp_path / "in64" / "train_data_batch_9.npz").unlink()
    with pytest.raises(FileNotFoundError, match=r"train_data_batch_7.npz, train_data_batch_9.npz.*SDR_DATA_IMAGENET64"):
        data.load("imagenet64", root=str(tmp_path / "in64"), cache=False)
    assert len(data.load("imagenet64", root=str(tmp_path / "in64"), batches=(1, 8), cache=False)) == 4
    with pytest.raises(FileNotFoundError, match="SDR_DATA_IMAGENET64"):
        data.load("imagenet64", cache=False)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        data.load("imagenet64", root=str(tmp_path / "nowhere"), cache=False)
    np.savez(tmp_path / "in64" / "val_data.npz", data=np.zeros((2, 100), np.uint8), labels=[1, 2])
    with pytest.raises(ValueError, match="not 3xSxS"):
        data.load("imagenet64", split="test", root=str(tmp_path / "in64"), cache=False)
    np.savez(tmp_path / "in64" / "val_data.npz", data=np.zeros((2, 12288), np.uint8), labels=[0, 2])
    with pytest.raises(ValueError, match=r"labels must be 1..1000"):
        data.load("imagenet64", split="test", root=str(tmp_path / "in64"), cache=False)
    np.savez(tmp_path / "in64" / "val_data.npz", images=np.zeros((2, 12288), np.uint8))
    with pytest.raises(ValueError, match="no array 'data'"):
        data.load("imagenet64", split="test", root=str(tmp_path / "in64"), cache=False)


# --------------------------------------------------------------------------- cifar10

CIFAR_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def _write_cifar(root: Path, n: int = 4, protocol: int = 2) -> dict[str, tuple[np.ndarray, list[int]]]:
    """cifar-10-batches-py/ as published: pickled dicts with bytes keys, data (N, 3072) uint8, labels a list."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)
    rng, out = np.random.default_rng(1), {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        img = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        record = {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": img.reshape(n, 3072),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)],
        }
        (d / name).write_bytes(pickle.dumps(record, protocol=protocol))
        out[name] = (img, labels)
    meta = {b"num_cases_per_batch": n, b"label_names": CIFAR_NAMES, b"num_vis": 3072}
    (d / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return out


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar10_reads_pickle_batches(tmp_path: Path, protocol: int) -> None:
    truth = _write_cifar(tmp_path, protocol=protocol)
    for root in (tmp_path, tmp_path / "cifar-10-batches-py"):  # the folder or the one holding it
        test = data.load("cifar10", split="test", root=str(root), cache=False)
        _contract(test, 3, 32)
        img, labels = truth["test_batch"]
        assert torch.equal(test.images, torch.from_numpy(img).float() / 255)
        assert test.labels.tolist() == labels
        assert test.classes[0] == "airplane"
        assert test.classes[-1] == "truck"
    train = data.load("cifar10", root=str(tmp_path), size=16, cache=False)
    assert train.images.shape == (20, 3, 16, 16)
    assert train.labels.tolist() == sum((truth[f"data_batch_{i}"][1] for i in range(1, 6)), [])


def test_cifar10_missing_files_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    (tmp_path / "cifar-10-batches-py" / "batches.meta").unlink()
    monkeypatch.setenv("SDR_DATA_CIFAR10", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"data_batch_4, batches.meta.*SDR_DATA_CIFAR10"):
        data.load("cifar10", cache=False)


class _Evil:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned > /dev/null",))


def test_cifar_unpickler_refuses_code(tmp_path: Path) -> None:
    _write_cifar(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}, protocol=2))
    with pytest.raises(ValueError, match=r"refusing to unpickle the global (posix|os|nt)\.system"):
        data.load("cifar10", split="test", root=str(tmp_path), cache=False)
    for payload in (pickle.dumps(eval), pickle.dumps(Path("x"))):
        batch.write_bytes(payload)
        with pytest.raises(ValueError, match="refusing to unpickle"):
            cifar10.safe_unpickle(batch)
    batch.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a readable CIFAR pickle"):
        cifar10.safe_unpickle(batch)


# --------------------------------------------------------------------------- celeba

ATTRS = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()


def _write_celeba(root: Path, n: int = 10, distributed: bool = False) -> np.ndarray:
    """img_align_celeba/ (178x218 JPEGs) and the three text files in CelebA's layout (headers, aligned -1/ 1)."""
    img_dir = root / ("Img" if distributed else "") / "img_align_celeba"
    anno, ev = (root / "Anno", root / "Eval") if distributed else (root, root)
    for d in (img_dir, anno, ev):
        d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    attrs = rng.choice([-1, 1], (n, 40))
    ident, part, rows = [], [], []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        grey = 20 + 20 * i
        Image.new("RGB", (178, 218), (grey, grey, grey)).save(img_dir / name, quality=95)
        ident.append(f"{name} {[2880, 2937, 8692][i % 3]}")
        part.append(f"{name} {0 if i < n - 4 else (1 if i < n - 2 else 2)}")
        rows.append(name + " " + " ".join(f"{v:2d}" for v in attrs[i]))
    (anno / "identity_CelebA.txt").write_text("\n".join(ident) + "\n")
    (ev / "list_eval_partition.txt").write_text("\n".join(part) + "\n")
    (anno / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(ATTRS) + " \n" + "\n".join(rows) + "\n")
    return attrs


@pytest.mark.parametrize("distributed", [False, True])
def test_celeba_reads_images_identities_attributes_and_partitions(tmp_path: Path, distributed: bool) -> None:
    attrs = _write_celeba(tmp_path, distributed=distributed)
    train = data.load("celeba", root=str(tmp_path), size=16, cache=False)
    test = data.load("celeba", split="test", root=str(tmp_path), size=16, cache=False)
    both = data.load("celeba", split="test", root=str(tmp_path), size=16, test_partitions=(1, 2), cache=False)
    _contract(train, 3, 16)
    assert (len(train), len(test), len(both)) == (6, 2, 4)
    assert train.classes == test.classes == ["2880", "2937", "8692"]
    assert train.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert test.labels.tolist() == [2, 0]  # files 9, 10
    assert test.extras["attributes"].dtype == torch.bool
    assert test.extras["attributes"].shape == (2, 40)
    assert torch.equal(both.extras["attributes"], torch.from_numpy(attrs[6:] == 1))
    assert test.meta["attribute_names"].split(",") == ATTRS
    assert test.meta["partitions"] == "2"
    grey = train.images.mean((1, 2, 3))
    assert torch.allclose(grey, (20 + 20 * torch.arange(6.0)) / 255, atol=0.02)  # the right file for each row
    smile = data.load("celeba", root=str(tmp_path), size=16, label="Smiling", cache=False)
    assert smile.classes == ["not Smiling", "Smiling"]
    assert smile.labels.tolist() == (attrs[:6, 31] == 1).tolist()
    assert data.load("celeba", split="test", root=str(tmp_path), cache=False).images.shape[-1] == 64


def test_celeba_errors_name_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_celeba(tmp_path)
    (tmp_path / "identity_CelebA.txt").unlink()
    monkeypatch.setenv("SDR_DATA_CELEBA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"identity_CelebA.txt.*SDR_DATA_CELEBA"):
        data.load("celeba", cache=False)
    _write_celeba(tmp_path)
    (tmp_path / "img_align_celeba" / "000003.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 images .*000003.jpg"):
        data.load("celeba", cache=False)
    _write_celeba(tmp_path)
    with pytest.raises(ValueError, match="'Grinning'"):
        data.load("celeba", label="Grinning", cache=False)
    with pytest.raises(ValueError, match="test_partitions"):
        data.load("celeba", test_partitions=(0,), cache=False)


# --------------------------------------------------------------------------- lsun-bedroom


def _write_lsun(root: Path, n: int = 12) -> None:
    """LSUN's export layout: one .webp per image in folders nested by the first characters of its key."""
    for i in range(n):
        key = f"{i:02x}{'ab'[i % 2]}0f3c9e"
        d = root / key[0] / key[1] / key[2]
        d.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (96 + i, 64), (10 * i, 100, 200)).save(d / f"{key}.webp")


def test_lsun_bedroom_reads_an_exported_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_lsun(tmp_path / "bedroom")
    monkeypatch.setenv("SDR_DATA_LSUN_BEDROOM", str(tmp_path / "bedroom"))
    train, test = data.load("lsun-bedroom", size=16, cache=False), data.load("lsun-bedroom", "test", size=16)
    _contract(train, 3, 16)
    assert (len(train), len(test)) == (11, 1)
    assert train.classes == ["bedroom"]
    assert set(train.labels.tolist()) == {0}
    assert data.load("lsun-bedroom", "test", size=16).fingerprint() == test.fingerprint()
    other = data.load("lsun-bedroom", "test", size=16, seed=3, cache=False)
    assert not torch.equal(other.images, test.images)  # the split follows the seed
    assert data.load("lsun-bedroom", "test", cache=False).images.shape[-1] == 64
    monkeypatch.setenv("SDR_DATA_LSUN_BEDROOM", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"missing.*SDR_DATA_LSUN_BEDROOM"):
        data.load("lsun-bedroom", cache=False)
