"""Checkpoints: a folder holding ``model.safetensors`` (weights), ``config.json`` (the
UNet and training configs, the sha256 of every tensor file, the producing command) and
``log.jsonl`` (the training log). Resumable checkpoints add ``state.safetensors``
(optimizer moments and RNG state). Nothing is ever unpickled: a tampered, truncated or
mismatched file is refused with a message that says which.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .unet import UNet, UNetConfig

FORMAT = "sdrlib-checkpoint/1"
WEIGHTS, STATE, CONFIG, LOG = "model.safetensors", "state.safetensors", "config.json", "log.jsonl"
REPO_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, tampered with, or does not match its config."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode), its config dict, training log and folder."""

    model: UNet
    config: dict
    log: list[dict] = field(default_factory=list)
    path: Path | None = None
    state: dict[str, torch.Tensor] | None = None

    @property
    def sha256(self) -> str:
        """Hash of the weights file (used to key caches)."""
        return self.config["sha256"][WEIGHTS]


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic(path: Path, write) -> None:
    """Write ``path`` through a temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: Path, text: str) -> None:
    """Atomically write a text file."""
    _atomic(Path(path), lambda p: p.write_text(text))


def write_json(path: Path, obj) -> None:
    """Atomically write pretty JSON."""
    _atomic(Path(path), lambda p: p.write_text(json.dumps(obj, indent=2) + "\n"))


def save(path: str | Path, model: UNet, extra: dict | None = None, log: list[dict] | None = None,
         state: dict[str, torch.Tensor] | None = None) -> Path:
    """Save a checkpoint folder atomically (each file by temp + rename; config.json, holding the hashes, last)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    _atomic(path / WEIGHTS, lambda p: save_file(tensors, str(p), metadata={"format": FORMAT}))
    hashes = {WEIGHTS: sha256_file(path / WEIGHTS)}
    if state is not None:
        _atomic(path / STATE, lambda p: save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(p)))
        hashes[STATE] = sha256_file(path / STATE)
    elif (path / STATE).exists():
        (path / STATE).unlink()
    if log is not None:
        _atomic(path / LOG, lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in log)))
    config = {"format": FORMAT, "sdrlib_version": __version__, "model": model.cfg.to_dict(),
              **(extra or {}), "sha256": hashes}
    write_json(path / CONFIG, config)
    return path


def resolve(name_or_path: str | Path) -> Path:
    """A checkpoint folder from a path, or a shipped name under checkpoints/ (or $SDR_CHECKPOINTS)."""
    p = Path(name_or_path)
    if (p / CONFIG).is_file() or (p.name == CONFIG and p.is_file()):
        return p if p.is_dir() else p.parent
    roots = [Path(r) for r in os.environ.get("SDR_CHECKPOINTS", "").split(os.pathsep) if r] + [REPO_CHECKPOINTS]
    for r in roots:
        if (r / str(name_or_path) / CONFIG).is_file():
            return r / str(name_or_path)
    shipped = sorted(d.name for r in roots if r.is_dir() for d in r.iterdir() if (d / CONFIG).is_file())
    raise FileNotFoundError(f"no checkpoint at {str(name_or_path)!r} (no {CONFIG} there); "
                            f"shipped checkpoints: {shipped or 'none'}")


def _verify(path: Path, fname: str, config: dict) -> None:
    want = config.get("sha256", {}).get(fname)
    if not (path / fname).is_file():
        raise CheckpointError(f"{path / fname} is missing")
    if want is None:
        raise CheckpointError(f"{path / CONFIG} records no sha256 for {fname}")
    got = sha256_file(path / fname)
    if got != want:
        raise CheckpointError(f"{path / fname} does not match the sha256 in {CONFIG} (expected {want[:12]}..., "
                              f"got {got[:12]}...): the file was modified, truncated or half-written; refusing it")


def read_config(path: str | Path) -> dict:
    """The parsed config.json of a checkpoint folder (or shipped name)."""
    path = resolve(path)
    try:
        config = json.loads((path / CONFIG).read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path / CONFIG} is not valid JSON ({e})") from e
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{path / CONFIG} has format {config.get('format')!r}, expected {FORMAT!r}")
    return config


def read_log(path: str | Path) -> list[dict]:
    """The training log (one dict per line) of a checkpoint folder or run folder."""
    p = Path(path)
    f = p / LOG if p.is_dir() else p
    if not f.is_file():
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


def _load_tensors(path: Path, fname: str) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path / fname))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path / fname} could not be read as safetensors ({e})") from e


def load(name_or_path: str | Path, device: str | torch.device = "cpu", with_state: bool = False) -> Checkpoint:
    """Load and verify a checkpoint: hashes, then config, then a strict weight load."""
    path = resolve(name_or_path)
    config = read_config(path)
    _verify(path, WEIGHTS, config)
    try:
        cfg = UNetConfig.from_dict(config["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path / CONFIG}: bad model config ({e})") from e
    model = UNet(cfg)
    try:
        model.load_state_dict(_load_tensors(path, WEIGHTS), strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise CheckpointError(f"weights in {path / WEIGHTS} do not match the architecture in {CONFIG}: {first}") from e
    state = None
    if with_state:
        _verify(path, STATE, config)
        state = _load_tensors(path, STATE)
    model.to(device).eval()
    return Checkpoint(model, config, read_log(path), path, state)


def load_model(name_or_path: str | Path, device: str | torch.device = "cpu") -> UNet:
    """The verified model of a checkpoint (folder path or shipped name), in eval mode."""
    return load(name_or_path, device).model


def training_snapshots(name_or_path: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of a run's intermediate snapshots (``step-NNNNNNN/``) and its final checkpoint, by step."""
    path = resolve(name_or_path)
    out = [(int(read_config(d)["step"]), d) for d in sorted(path.glob("step-*")) if (d / CONFIG).is_file()]
    out.append((int(read_config(path)["step"]), path))
    return sorted(out)
