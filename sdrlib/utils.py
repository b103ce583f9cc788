"""Small helpers every module shares: device choice, the one rule of random draws across devices, the cache
directory, the one atomic-write helper, and dataclass <-> dict with one rule for unknown keys.

Random draws: a draw is made on its generator's device and the numbers are then moved to where they are used:
``randn(shape, generator, device)`` and its siblings. The library's generators live on the CPU (the one
exception: the training loop's noise generator on CUDA, for speed), so a seed gives the same numbers whatever
device uses them (the held-out noise of a CUDA run is the CPU run's); torch refuses a CPU generator for a
draw asked on CUDA. A CPU generator may still draw directly with torch on the CPU (no ``device=``)."""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from pathlib import Path
from typing import Any, Callable, Sequence

import torch


def pick_device(name: str = "auto") -> torch.device:
    """cuda if available, else mps, else cpu (or the named device)."""
    if name != "auto":
        try:
            return torch.device(name)
        except RuntimeError as e:
            raise ValueError(f"unknown device {name!r}; expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from e
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def model_device(model: torch.nn.Module, fallback: torch.device | str | None = None) -> torch.device:
    """Where a model lives: its first parameter's or buffer's device; ``fallback`` (default the CPU) for a
    module with neither. The one answer to "which device does this network run on"."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device(fallback) if fallback is not None else torch.device("cpu")


def draw_device(generator: torch.Generator | None) -> torch.device:
    """Where a generator draws: its own device (the CPU for None, torch's default generator)."""
    return generator.device if generator is not None else torch.device("cpu")


def move(t: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    """``t`` on ``device`` (None: where it is); a copy to an accelerator does not wait for the device."""
    if device is None:
        return t
    device = torch.device(device)
    return t.to(device, non_blocking=device.type != "cpu")


def randn(
    shape: Sequence[int] | int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Standard normal numbers drawn on the generator's device, returned on ``device`` (None: the generator's)."""
    return move(torch.randn(_shape(shape), generator=generator, device=draw_device(generator), dtype=dtype), device)


def rand(
    shape: Sequence[int] | int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Uniform [0, 1) numbers drawn on the generator's device, returned on ``device`` (None: the generator's)."""
    return move(torch.rand(_shape(shape), generator=generator, device=draw_device(generator), dtype=dtype), device)


def randint(
    low: int,
    high: int,
    shape: Sequence[int] | int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Integers in [low, high) drawn on the generator's device, returned on ``device`` (None: the generator's)."""
    if high <= low:
        raise ValueError(f"randint needs low < high, got low={low}, high={high}")
    return move(torch.randint(low, high, _shape(shape), generator=generator, device=draw_device(generator)), device)


def randperm(
    n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """A random permutation of 0..n-1 drawn on the generator's device, returned on ``device``."""
    return move(torch.randperm(n, generator=generator, device=draw_device(generator)), device)


def _shape(shape: Sequence[int] | int) -> tuple[int, ...]:
    return (shape,) if isinstance(shape, int) else tuple(shape)


def cache_dir(*sub: str) -> Path:
    """Where built data sets and features are cached: $SDR_CACHE or ~/.cache/sdrlib (plus ``sub``)."""
    return Path(os.environ.get("SDR_CACHE", Path.home() / ".cache" / "sdrlib"), *sub)


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Write ``path`` all-or-nothing: ``write(tmp)`` fills a temporary file beside it, which is flushed to
    disk and renamed over ``path``. A kill at any moment leaves either the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write a text file."""
    return atomic_write(path, lambda p: p.write_text(text))


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomically write pretty JSON."""
    return write_text(path, json.dumps(obj, indent=2) + "\n")


def field_docs(cls: type) -> dict[str, str]:
    """The comment written after each field of a dataclass (its one place of documentation), by name."""
    import inspect
    import re

    docs: dict[str, str] = {}
    last = None
    for line in inspect.getsource(cls).splitlines():
        m = re.match(r"\s+(\w+)\s*:[^#]*?(?:#\s*(.*))?$", line)
        if m and m.group(1) in {f.name for f in dataclasses.fields(cls)}:
            last = m.group(1)
            docs[last] = (m.group(2) or "").strip()
        elif last and re.match(r"\s+#\s*(.*)$", line):  # a comment continued on the next line
            docs[last] = (docs[last] + " " + line.strip()[1:].strip()).strip()
        else:
            last = None
    return docs


def to_dict(obj: Any) -> dict:
    """A dataclass as a JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(obj).items()}


T = typing.TypeVar("T")


def from_dict(cls: type[T], d: dict, strict: bool = True) -> T:
    """Inverse of :func:`to_dict`. Unknown keys raise ValueError when ``strict`` (a config from another
    architecture or a typo); with ``strict=False`` they are dropped (a newer version's extra options)."""
    names = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(d) - names)
    if bad and strict:
        raise ValueError(f"unknown {cls.__name__} keys {bad}; expected some of {sorted(names)}")
    return cls(**{k: v for k, v in d.items() if k in names})
