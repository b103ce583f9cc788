"""A judge that never sees phi: a small pixel-space CNN classifier trained on a reference's training split,
used to say what class a sample shows (chapter 4), so that the check of self-guided samples is not
circular. It is trained once per reference and data set, and kept beside the reference
(``checkpoints/<name>/classifier/``: safetensors weights + JSON with its held-out accuracy)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import utils

FOLDER = "classifier"


class SmallCNN(nn.Module):
    """Three conv blocks (32, 64, 128 channels, 3x3, ReLU, 2x2 max-pool), global average pooling, one linear
    layer: a plain image classifier, unrelated to the denoiser."""

    def __init__(self, in_channels: int, n_classes: int, width: int = 32):
        super().__init__()
        w = (width, 2 * width, 4 * width)
        layers, c = [], in_channels
        for out in w:
            layers += [
                nn.Conv2d(c, out, 3, padding=1),
                nn.BatchNorm2d(out),
                nn.ReLU(),
                nn.Conv2d(out, out, 3, padding=1),
                nn.BatchNorm2d(out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            c = out
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes)."""
        return self.head(self.body(x).mean(dim=(2, 3)))


def fit(
    images: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    epochs: int = 10,
    batch: int = 128,
    lr: float = 2e-3,
    width: int = 32,
    hflip: bool = True,
    seed: int = 0,
    progress: bool = False,
) -> SmallCNN:
    """Train the classifier with Adam and a cosine learning rate (random flips when ``hflip``)."""
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN(images.shape[1], n_classes, width)
    steps = epochs * ((len(images) + batch - 1) // batch)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for _ in tqdm(range(epochs), disable=not progress, desc="classifier"):
        for idx in torch.randperm(len(images), generator=g).split(batch):
            x = images[idx]
            if hflip:
                flip = torch.rand(len(x), generator=g) < 0.5
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def predict(model: SmallCNN, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """The predicted class of each image."""
    model.eval()
    return torch.cat([model(images[i : i + batch].float()).argmax(1) for i in range(0, len(images), batch)])


def for_reference(
    ck,
    epochs: int = 8,
    seed: int = 0,
    cache_in: str = "reference",
    max_train: int = 20_000,
    width: int = 16,
    progress: bool = False,
) -> tuple[SmallCNN, dict]:
    """The judge of a reference's data set: loaded from beside the reference when it matches the data
    fingerprint and settings, else trained on its training split and saved there. Returns (model, info)
    where info holds its held-out accuracy and per-image correctness. At most ``max_train`` training images
    (a seeded subset) and a narrow network keep it to minutes on a CPU."""
    from safetensors.torch import load_file, save_file

    from . import checkpoints

    full = checkpoints.load_data(ck, "train")
    train = full.subset(max_train, seed=seed)
    test = checkpoints.load_data(ck, "test")
    spec = {
        "data": ck.config["train"]["data"],
        "fingerprint": full.fingerprint()["sha256"],
        "test_fingerprint": test.fingerprint()["sha256"],
        "epochs": epochs,
        "seed": seed,
        "max_train": max_train,
        "width": width,
        "n_classes": len(full.classes),
        "in_channels": full.images.shape[1],
    }
    folder = (
        Path(ck.path) / FOLDER
        if cache_in == "reference"
        else utils.cache_dir("classifier", f"{spec['data']}-{spec['fingerprint']}-{epochs}-{seed}-{max_train}-{width}")
    )
    cfg = folder / "config.json"
    loaded = cfg.is_file() and json.loads(cfg.read_text()).get("spec") == spec
    if loaded:
        model = SmallCNN(spec["in_channels"], spec["n_classes"], width)
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        info = json.loads(cfg.read_text())
    else:
        t0 = time.perf_counter()
        model = fit(train.images, train.labels, spec["n_classes"], epochs, width=width, seed=seed, progress=progress)
        info = {"spec": spec, "train_seconds": round(time.perf_counter() - t0, 1)}
        folder.mkdir(parents=True, exist_ok=True)
        utils.atomic_write(
            folder / "model.safetensors",
            lambda p: save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(p)),
        )
    correct = (predict(model, test.images) == test.labels).double()
    info.update({"held_out_accuracy": correct.mean().item(), "n_test": len(test)})
    if not loaded:
        utils.write_json(cfg, info)
    return model.eval(), {**info, "correct": correct}
