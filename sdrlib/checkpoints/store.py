"""The checkpoint format: a folder holding ``model.safetensors`` (weights), ``config.json`` (the
UNet and training configs, the sha256 of every tensor file, the producing command) and
``log.jsonl`` (the training log). Runs trained with an EMA add ``ema.safetensors``;
resumable checkpoints add ``state.safetensors`` (optimizer moments, RNG state, clocks).
Nothing is ever unpickled: a tampered, truncated or mismatched file is refused with a
message that says which, and a save killed at any moment leaves one whole version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..unet import UNet, UNetConfig
from ..utils import atomic_write, write_json

FORMAT = "sdrlib-checkpoint/1"
WEIGHTS, EMA, STATE = "model.safetensors", "ema.safetensors", "state.safetensors"
CONFIG, LOG = "config.json", "log.jsonl"
PENDING, COMMIT = ".next", "COMMIT"  # a new version is written here whole, then moved in (see save)
FILES = (WEIGHTS, EMA, STATE, LOG, CONFIG)  # the order of the move; config.json, holding the hashes, last
WEIGHT_CHOICES = ("default", "raw", "ema")
REPO_CHECKPOINTS = Path(__file__).resolve().parent.parent.parent / "checkpoints"  # the shipped references


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
    ema: dict[str, torch.Tensor] | None = None
    weights: str = "raw"

    @property
    def sha256(self) -> str:
        """Hash of the weights in use (keys the feature caches)."""
        return weights_sha256(self.config, self.weights)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tensors(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}


def save(
    path: str | Path,
    model: UNet,
    extra: dict | None = None,
    log: list[dict] | None = None,
    state: dict[str, torch.Tensor] | None = None,
    ema: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Save a checkpoint folder so that a kill at any moment leaves one whole, readable version.

    The new version (weights, EMA weights, optimiser state, log, config with the sha256 of every
    tensor file) is first written complete into ``PATH/.next/``, sealed by a ``COMMIT`` file, then
    moved file by file over the old one, config.json last. Until the move ends, readers take each
    file from ``.next/`` where it still is; an unsealed ``.next/`` (a kill while writing) is ignored,
    and the previous version stays whole.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"checkpoint folder {path} is a file")
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    finish_pending(path)
    nxt = path / PENDING
    shutil.rmtree(nxt, ignore_errors=True)
    try:
        nxt.mkdir()
        _write_version(nxt, model, extra, log, state, ema)
    except BaseException:  # a full disk, no permission, Ctrl-C: drop the unsealed version, keep the old one
        shutil.rmtree(path if created else nxt, ignore_errors=True)
        raise
    finish_pending(path)
    return path


def _write_version(
    nxt: Path,
    model: UNet,
    extra: dict | None,
    log: list[dict] | None,
    state: dict[str, torch.Tensor] | None,
    ema: dict[str, torch.Tensor] | None,
) -> None:
    """Write one whole version of a checkpoint into ``nxt`` and seal it with ``COMMIT`` (see ``save``)."""
    atomic_write(nxt / WEIGHTS, lambda p: save_file(_tensors(model.state_dict()), str(p), metadata={"format": FORMAT}))
    written = [WEIGHTS]
    for fname, tensors in ((EMA, ema), (STATE, state)):
        if tensors is not None:
            atomic_write(nxt / fname, lambda p, t=tensors: save_file(_tensors(t), str(p)))
            written.append(fname)
    hashes = {f: sha256_file(nxt / f) for f in written}
    if log is not None:
        atomic_write(nxt / LOG, lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in log)))
        written.append(LOG)
    config = {
        "format": FORMAT,
        "sdrlib_version": __version__,
        "model": model.cfg.to_dict(),
        **(extra or {}),
        "sha256": hashes,
    }
    write_json(nxt / CONFIG, config)
    written.append(CONFIG)
    write_json(nxt / COMMIT, {"files": written, "remove": [f for f in (EMA, STATE) if f not in written]})


def finish_pending(path: Path) -> None:
    """Complete an interrupted save: move a sealed ``.next/`` in (roll forward), drop an unsealed one."""
    nxt = Path(path) / PENDING
    if not nxt.is_dir():
        return
    try:
        plan = json.loads((nxt / COMMIT).read_text())
    except (OSError, json.JSONDecodeError):
        shutil.rmtree(nxt, ignore_errors=True)  # never sealed: the old version is whole
        return
    for f in plan["remove"]:
        if (path / f).exists():
            (path / f).unlink()
    for f in FILES:
        if (nxt / f).exists():
            os.replace(nxt / f, path / f)
    shutil.rmtree(nxt, ignore_errors=True)


def _file(path: Path, fname: str) -> Path:
    """Where the current version of ``fname`` lies: in a sealed ``.next/`` not yet moved in, or in place."""
    nxt = path / PENDING
    try:
        plan = json.loads((nxt / COMMIT).read_text())
    except (OSError, json.JSONDecodeError):  # no sealed version (or it was just moved in and removed)
        return path / fname
    if (nxt / fname).exists() or fname in plan["remove"]:
        return nxt / fname  # still waiting to move in, or removed in the new version (a path that does not exist)
    return path / fname


def exists(path: str | Path) -> bool:
    """Whether ``path`` is a checkpoint folder (a whole version is there, possibly still being moved in)."""
    p = Path(path)
    return p.is_dir() and (_file(p, CONFIG).is_file() or (p / CONFIG).is_file())  # either side of a move


_is_checkpoint = exists


def resolve(name_or_path: str | Path) -> Path:
    """A checkpoint folder from a path, or a shipped name under checkpoints/ (or $SDR_CHECKPOINTS)."""
    p = Path(name_or_path)
    if p.name == CONFIG and p.is_file():
        return p.parent
    if p.exists() and not p.is_dir():
        raise CheckpointError(f"{p} is a file, not a checkpoint folder")
    if _is_checkpoint(p):
        return p
    roots = [Path(r) for r in os.environ.get("SDR_CHECKPOINTS", "").split(os.pathsep) if r] + [REPO_CHECKPOINTS]
    for r in roots:
        if _is_checkpoint(r / str(name_or_path)):
            return r / str(name_or_path)
    shipped = sorted(d.name for r in roots if r.is_dir() for d in r.iterdir() if _is_checkpoint(d))
    raise FileNotFoundError(
        f"no checkpoint at {str(name_or_path)!r} (no {CONFIG} there); shipped checkpoints: {shipped or 'none'}"
    )


def _verify(path: Path, fname: str, config: dict) -> Path:
    """The current file ``fname`` of a checkpoint, after checking it against the sha256 in its config."""
    want = config.get("sha256", {}).get(fname)
    f = _file(path, fname)
    if not f.is_file():
        raise CheckpointError(f"{path / fname} is missing")
    if want is None:
        raise CheckpointError(f"{path / CONFIG} records no sha256 for {fname}")
    got = sha256_file(f)
    if got != want:
        raise CheckpointError(
            f"{path / fname} does not match the sha256 in {CONFIG} (expected {want[:12]}..., "
            f"got {got[:12]}...): the file was modified, truncated or half-written; refusing it"
        )
    return f


def _while_writing(fn):
    """Retry a read that a concurrent save disturbed (a file moved in between, or config and weights read
    on either side of the move): a few tries while that folder has a pending version."""
    import functools
    import time

    @functools.wraps(fn)
    def wrapper(path, *a, **kw):
        p = Path(path)
        for attempt in range(20):
            pending = (p / PENDING).exists()  # a save under way when this try started
            try:
                return fn(path, *a, **kw)
            except (FileNotFoundError, CheckpointError):
                if attempt == 19 or not (pending or (p / PENDING).exists()):
                    raise
                time.sleep(0.05)

    return wrapper


@_while_writing
def read_config(path: str | Path) -> dict:
    """The parsed config.json of a checkpoint folder (or shipped name)."""
    path = resolve(path)
    try:
        config = json.loads(_file(path, CONFIG).read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path / CONFIG} is not valid JSON ({e})") from e
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(f"{path / CONFIG} has format {got!r}, expected {FORMAT!r}")
    return config


def read_log(path: str | Path) -> list[dict]:
    """The training log (one dict per line) of a checkpoint folder or log file; a torn last line (a kill
    while it was written) is dropped with a warning."""
    p = Path(path)
    f = _file(p, LOG) if p.is_dir() else p
    if not f.is_file():
        return []
    lines = [line for line in f.read_text().splitlines() if line.strip()]
    out = []
    for i, line in enumerate(lines):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i != len(lines) - 1:
                raise CheckpointError(f"{f}: line {i + 1} is not JSON; the log is damaged") from None
            warnings.warn(f"{f}: ignoring a torn last line (the run was killed while writing it)", stacklevel=2)
    return out


def _load_tensors(f: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(f))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{f} could not be read as safetensors ({e})") from e


def _mismatch(want: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> str:
    """How the tensors of a file differ from those of an architecture, in one line (counts and a first example)."""
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    shape = [k for k in want if k in got and got[k].shape != want[k].shape]
    parts = [
        f"{len(missing)} tensor(s) missing (e.g. {missing[0]!r})" if missing else "",
        f"{len(extra)} unexpected (e.g. {extra[0]!r})" if extra else "",
        f"{len(shape)} of another shape (e.g. {shape[0]!r}: {list(got[shape[0]].shape)} in the file, "
        f"{list(want[shape[0]].shape)} expected)"
        if shape
        else "",
    ]
    return "the file has " + ", ".join(p for p in parts if p) if any(parts) else "tensor types differ"


def default_weights(config: dict) -> str:
    """Which weights ``load`` uses by default: the EMA when the run kept one, else the raw weights."""
    return "ema" if EMA in config.get("sha256", {}) else "raw"


def weights_sha256(config: dict, weights: str = "default") -> str:
    """Hash of a checkpoint's "raw" or "ema" weights (or those ``load`` uses by default), from its config alone."""
    which = default_weights(config) if weights == "default" else weights
    return config["sha256"][EMA if which == "ema" else WEIGHTS]


@_while_writing
def load(
    name_or_path: str | Path, device: str | torch.device = "cpu", with_state: bool = False, weights: str = "default"
) -> Checkpoint:
    """Load and verify a checkpoint: hashes, then config, then a strict weight load.

    ``weights``: "raw" (the optimiser's), "ema" (the moving average, when the run kept one) or
    "default" (the EMA if present). With ``with_state`` the optimiser state and the EMA come too.
    """
    if weights not in WEIGHT_CHOICES:
        raise ValueError(f"weights must be one of {WEIGHT_CHOICES}, got {weights!r}")
    path = resolve(name_or_path)
    config = read_config(path)
    which = default_weights(config) if weights == "default" else weights
    if which == "ema" and EMA not in config.get("sha256", {}):
        raise CheckpointError(f"{path} holds no EMA weights (trained without --ema); use weights='raw'")
    fname = EMA if which == "ema" else WEIGHTS
    if which == "raw" and not _file(path, WEIGHTS).is_file() and _file(path, EMA).is_file():
        raise CheckpointError(
            f"{path} holds only the EMA weights ({EMA}; no {WEIGHTS}: the raw weights were not kept, so the run "
            f"cannot be resumed either); use weights='ema' or 'default'"
        )
    f = _verify(path, fname, config)
    try:
        cfg = UNetConfig.from_dict(config["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path / CONFIG}: bad model config ({e})") from e
    model = UNet(cfg)
    tensors = _load_tensors(f)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise CheckpointError(
            f"weights in {path / fname} do not match the architecture in {CONFIG} (another "
            f"architecture's config?): {_mismatch(model.state_dict(), tensors)}"
        ) from e
    state = ema = None
    if with_state:
        state = _load_tensors(_verify(path, STATE, config))
        if EMA in config.get("sha256", {}):
            ema = _load_tensors(_verify(path, EMA, config))
    model.to(device).eval()
    return Checkpoint(model, config, read_log(path), path, state, ema, which)


def load_model(name_or_path: str | Path, device: str | torch.device = "cpu", weights: str = "default") -> UNet:
    """The verified model of a checkpoint (folder path or shipped name), in eval mode."""
    return load(name_or_path, device, weights=weights).model


def training_snapshots(name_or_path: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of a run's intermediate snapshots (``step-NNNNNNN/``) and its final checkpoint, by step."""
    path = resolve(name_or_path)
    final = int(read_config(path)["step"])
    out = [(int(read_config(d)["step"]), d) for d in sorted(path.glob("step-*")) if _is_checkpoint(d)]
    return sorted([(s, d) for s, d in out if s != final] + [(final, path)])
