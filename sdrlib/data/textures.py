"""Colour textures: one class per photograph (ufoai-textures, opencv-doc, MATE and Plasma wallpapers, photos
bundled in wheels), with a held-out strip of every photograph for test patches."""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from .common import _open_rgb, _seed, _shrink, _wheel_dir, file_stamp, resize, source_counts
from .imageset import ImageSet
from .registry import register

UFOAI_PK3 = ("/usr/share/games/ufoai/base/0textures.pk3",)
UFOAI_FOLDERS = ("tex_nature", "tex_dirt", "tex_material", "tex_mattn", "tex_ctp1")
# The first word of a file name that is a natural material names the texture's material (a coarse second
# label); textures whose name holds none (buildings, signs, metal, concrete, water, leaves...) are skipped.
UFOAI_MATERIALS = {
    "grass": "grass",
    "hedge": "foliage",
    "jungle": "foliage",
    "flower": "flower",
    "bark": "bark",
    "wood": "wood",
    "hay": "straw",
    "straw": "straw",
    "dung": "dung",
    "dirt": "soil",
    "ground": "soil",
    "soil": "soil",
    "drymud": "soil",
    "sand": "sand",
    "desert": "sand",
    "rock": "rock",
    "pjrock": "rock",
    "rockyground": "rock",
    "volcano": "rock",
    "stone": "stone",
    "pebbles": "stone",
    "marble": "marble",
    "marmor": "marble",
    "snow": "snow",
    "snowey": "snow",
    "ice": "ice",
}
# Not photographs: normal/specular/gloss maps; game paths and vehicle tracks painted over grass003 and
# dirt_se01; a framed variant of grass_mowed_dry_a.
UFOAI_EXCLUDE = re.compile(r"_(nm|sm|gm)$|_way_|^dirt_se(?!01)|_k1$")
UFOAI_MIN_SIDES = (128, 256)  # shorter side, longer side, in pixels
UFOAI_MAX_TRANSPARENT = 0.01  # sprites with an alpha cut-out (leaves, trees) are not textures
MIN_STD = 0.03  # near-flat images (std of the pixel values, 1 pixel in 16 sampled, below this) are rejected
DUPLICATE_RMS = 0.01  # a photo this close (RMS over a 16x16 thumbnail) to an earlier one is a duplicate


# Photographs only (no charts, renders, drawings, logos, text, calibration targets; one image per stereo pair).
PHOTO_SOURCES: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "opencv": (
        "/usr/share/doc/opencv-doc/examples/data",
        (
            "aero1.jpg",
            "aloeL.jpg",
            "apple.jpg",
            "baboon.jpg",
            "basketball1.png",
            "board.jpg",
            "box.png",
            "box_in_scene.png",
            "building.jpg",
            "butterfly.jpg",
            "chicky_512.png",
            "ela_original.jpg",
            "fruits.jpg",
            "graf1.png",
            "home.jpg",
            "left.jpg",
            "leuvenA.jpg",
            "messi5.jpg",
            "orange.jpg",
            "rubberwhale1.png",
            "smarties.png",
            "squirrel_cls.jpg",
            "stuff.jpg",
        ),
    ),
    "mate": (
        "/usr/share/backgrounds/mate/nature",
        (
            "Aqua.jpg",
            "Blinds.jpg",
            "Dune.jpg",
            "FreshFlower.jpg",
            "Garden.jpg",
            "GreenMeadow.jpg",
            "LadyBird.jpg",
            "RainDrops.jpg",
            "Storm.jpg",
            "TwoWings.jpg",
            "Wood.jpg",
            "YellowFlower.jpg",
        ),
    ),
    "plasma": (
        "/usr/share/wallpapers",
        (  # <name>/contents/images/<largest>.jpg
            "BytheWater",
            "ColdRipple",
            "ColorfulCups",
            "DarkestHour",
            "EveningGlow",
            "FallenLeaf",
            "Grey",
            "OneStandsOut",
            "Path",
            "summer_1am",
        ),
    ),
    "skimage": (
        _wheel_dir("skimage", "data"),
        (  # files bundled in the wheel only: some loaders download
            "astronaut.png",
            "brick.png",
            "camera.png",
            "cell.png",
            "chelsea.png",
            "coffee.png",
            "coins.png",
            "grass.png",
            "gravel.png",
            "hubble_deep_field.jpg",
            "ihc.png",
            "retina.jpg",
            "rocket.jpg",
        ),
    ),
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
            if (
                len(parts) != 3
                or parts[1] not in UFOAI_FOLDERS
                or UFOAI_EXCLUDE.search(stem)
                or not parts[-1].lower().endswith((".png", ".jpg", ".jpeg"))
            ):
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
            imgs = sorted(
                (Path(root) / d / "contents" / "images").glob("*.jpg"),
                key=lambda f: math.prod(int(v) for v in re.findall(r"\d+", f.stem)[:2] or [0]),
            )
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


def _texture_photos(
    sources: tuple[str, ...], short_side: int, max_classes: int | None
) -> tuple[list[tuple[str, str, np.ndarray]], dict[str, int]]:
    """Texture photographs as (class name, group, image), filtered and de-duplicated; photographs per source.

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
    return photos, counts


def _patch_boxes(
    h: int, w: int, n: int, crop: int, holdout: float, split: str, rng: np.random.Generator, val: float = 0.0
) -> np.ndarray:
    """n random square crops (top, left, height, width): test crops lie in the last ``holdout`` fraction of
    the photograph's longer axis (right-most strip, or bottom strip of a portrait), validation crops in the
    ``val`` fraction just before it (none when 0), train crops before both."""
    wide = w >= h
    long, short = (w, h) if wide else (h, w)
    strip, band = math.ceil(holdout * long), math.ceil(val * long)
    c = min(crop, short, strip, *((band,) if val else ()))
    lo, hi = {
        "train": (0, long - strip - band - c),
        "val": (long - strip - band, long - strip - c),
        "test": (long - strip, long - c),
    }[split]
    a = rng.integers(lo, hi + 1, n)
    b = rng.integers(0, short - c + 1, n)
    top, left = (b, a) if wide else (a, b)
    return np.stack([top, left, np.full(n, c), np.full(n, c)], 1).astype(np.int64)


def _check_sources(sources: tuple[str, ...] | None) -> tuple[str, ...]:
    """The texture sources asked for (all by default); ValueError naming unknown ones."""
    unknown = set(sources or ()) - set(TEXTURE_SOURCES)
    if unknown:
        raise ValueError(f"unknown texture sources {sorted(unknown)}; expected some of {TEXTURE_SOURCES}")
    return tuple(sources or TEXTURE_SOURCES)


def textures_stamp(sources: tuple[str, ...] | None = None, **_: object) -> str:
    """Which texture sources are on this machine: the ufoai archive's size, the photographs found per source."""
    out = []
    for src in _check_sources(sources):
        if src == "ufoai":
            out.append(file_stamp(next((p for p in UFOAI_PK3 if Path(p).is_file()), UFOAI_PK3[0])))
        else:
            files = _photo_files(src)
            out.append(f"{src}: {len(files)} files, {sum(f.stat().st_size for f in files)} B")
    return "; ".join(out)


@register(
    "textures",
    "Colour texture patches (SPEC 5): one class per photograph, a held-out strip per photo for test",
    how_to_get="install the Debian packages that hold the photographs: 'sudo apt-get install "
    f"{TEXTURE_PACKAGES}' (in Colab the chapter's first cell does this), then run again",
    debian=tuple(TEXTURE_PACKAGES.split()),
    stamp=textures_stamp,
)
def textures(
    split: str,
    size: int | None,
    seed: int,
    n_train: int = 64,
    n_test: int = 16,
    crop: int = 64,
    holdout: float = 0.2,
    val: float = 0.0,
    short_side: int = 512,
    sources: tuple[str, ...] | None = None,
    max_classes: int | None = None,
) -> ImageSet:
    """Patches of photographs, each photograph a class (ufoai-textures natural textures, opencv-doc, MATE and
    Plasma wallpapers, photos bundled in scikit-image/scikit-learn/matplotlib wheels).

    Photographs are shrunk so their shorter side is at most ``short_side``; ``crop``-pixel squares (smaller
    where the photo is) are cut at seeded random places and resized to ``size`` (default 32). The last
    ``holdout`` of each photo's longer axis is reserved for test patches, so train and test never share a pixel.
    ``val`` > 0 reserves the band of that fraction just before it for the "val" split (the validation crops that
    choices read): train, val and test crops then share no pixel, and the test crops are the same as with
    ``val`` = 0.
    ``extras["boxes"]`` holds each patch's (top, left, height, width) in the shrunk photograph; ``groups``
    the material (ufoai) or "photo".
    """
    if not 0 < holdout < 0.5:
        raise ValueError(f"holdout must be in (0, 0.5), got {holdout}")
    if not 0 <= val <= 0.5 - holdout:
        raise ValueError(f"val must be in [0, {0.5 - holdout:g}] (with holdout {holdout:g}), got {val}")
    if split == "val" and not val:
        raise ValueError("the 'val' split needs val > 0 (the fraction of each photograph kept for validation)")
    photos, found = _texture_photos(_check_sources(sources), short_side, max_classes)
    meta = {
        "sources": ", ".join(f"{k}={v}" for k, v in found.items() if v),
        "missing_sources": ", ".join(k for k, v in found.items() if not v),
    }
    if not photos:
        raise FileNotFoundError(
            f"no texture photographs found (sources {meta['missing_sources']}); install the "
            f"Debian packages: sudo apt-get install {TEXTURE_PACKAGES}"
        )
    size = size or 32
    n = n_train if split == "train" else n_test
    meta["source_counts"] = source_counts({k: (n * v, v) for k, v in found.items() if v})
    group_names = sorted({g for _, g, _ in photos})
    xs, boxes, labels, groups = [], [], [], []
    for k, (name, group, img) in enumerate(photos):
        rng = np.random.default_rng(_seed(seed, split, name))
        bx = _patch_boxes(img.shape[0], img.shape[1], n, crop, holdout, split, rng, val)
        patches = np.stack([img[t : t + c, left : left + c] for t, left, c, _ in bx])
        xs.append(resize(torch.from_numpy(patches).float().div_(255).permute(0, 3, 1, 2), size))
        boxes.append(torch.from_numpy(bx))
        labels.append(torch.full((n,), k, dtype=torch.int64))
        groups.append(torch.full((n,), group_names.index(group), dtype=torch.int64))
    meta.update(
        {
            "licence": "per source, see book/data_sources.md",
            "holdout": f"last {holdout:g} of the longer axis",
            **({"val": f"the {val:g} of the longer axis before the test strip"} if val else {}),
            "photo_sizes": ";".join(f"{img.shape[0]}x{img.shape[1]}" for _, _, img in photos),
        }
    )
    return ImageSet(
        "textures",
        torch.cat(xs).contiguous(),
        torch.cat(labels),
        [p[0] for p in photos],
        meta,
        torch.cat(groups),
        group_names,
        {"boxes": torch.cat(boxes)},
    )
