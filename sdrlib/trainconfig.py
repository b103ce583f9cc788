"""``TrainConfig``: everything that defines a training run (saved into every checkpoint's config.json, one
``sdr train`` option per field), checked on creation so that a bad value fails before any work."""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import noise, utils
from .evaluate import DEFAULT_SIGMAS
from .schedule import DECAYS
from .unet import PRESETS, preset

MAX_SIGMA = 10.0  # noise levels are on the [0, 1] image scale; the authors trained up to 3
# integer fields that must lie in [1, top], and those that must be >= 0
BOUNDED = {
    "batch": 65_536,
    "steps": 10**9,
    "log_every": 10**9,
    "eval_every": 10**9,
    "ckpt_every": 10**9,
    "n_eval": 10**7,
}
NON_NEGATIVE = (
    "warmup",
    "decay_steps",
    "hold_steps",
    "snapshot_every",
    "crop",
    "lr_halve_every",
    "max_train",
    "holdout_every",
    "data_seed",
)


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved into every checkpoint's config.json."""

    preset: str = "small"  # architecture preset (sdrlib.unet.PRESETS)
    data: str = "fashion-mnist"  # data set name (sdrlib.data.names()) or folder:PATH
    size: int | None = None  # image size (None: the data set's default, 32)
    crop: int = 0  # textures: side of the square cut from a photograph (0: the default, 64)
    batch: int = 64  # images per optimisation step (the global batch under torchrun)
    lr: float = 1e-3  # Adam learning rate (the peak, after any warm-up)
    lr_halve_every: int = 0  # halve the learning rate every this many steps (0: never)
    warmup: int = 0  # linear learning-rate warm-up over the first this many steps
    decay: str = "none"  # final decay phase: "none", "cosine" or "linear", down to lr * lr_final
    decay_steps: int = 0  # length of the final decay phase (the last decay_steps before `steps`, less hold_steps)
    lr_final: float = 0.1  # learning-rate factor reached at the end of the decay phase
    hold_steps: int = 0  # steps at lr * lr_final after the decay (extends a finished run without raising the lr)
    ema: float = 0.0  # EMA decay of the weights per step (e.g. 0.999; 0: no EMA)
    steps: int = 10_000  # total optimisation steps (the schedule's horizon)
    minutes: float = 0.0  # stop (and checkpoint) after this wall time; 0: no limit
    sigma_law: str = "uniform"  # "uniform" or "sqrt-uniform"
    sigma_min: float = 0.0  # smallest training noise level (images in [0, 1])
    sigma_max: float = 1.0  # largest training noise level (the authors: up to 3, i.e. 765/255)
    weighted: bool = False  # divide the loss by sigma^2
    hflip: bool = False  # random horizontal flips
    norm: str = ""  # override the preset's norm ("scale", "group", "none")
    gain_init: str = ""  # override the scale-norm gain init ("paper", "positive", "ones")
    seed: int = 0  # seeds the initial weights, the data order and the noise (not the data set itself)
    data_seed: int = 0  # seeds how a data set is drawn (textures: the crops' places; the split), same for all seeds
    val: float = 0.0  # keep this fraction of the training side out of training: the validation split of choices
    device: str = "auto"  # "auto" (cuda, mps, cpu), or a torch device string
    channels_last: bool = True  # channels-last memory layout (faster convolutions)
    bf16: bool = False  # bf16 autocast (CUDA only; 18x slower on CPUs without BF16)
    compile: bool = False  # torch.compile the network (CUDA; no gain on the CPUs measured here)
    threads: int = 0  # torch CPU threads (0: torch's default)
    log_every: int = 50  # steps between two lines of the training log
    eval_every: int = 500  # steps between two held-out PSNR evaluations
    ckpt_every: int = 1000  # steps between two (resumable) checkpoints
    snapshots: tuple[int, ...] = ()  # steps at which to keep a permanent copy of the weights
    snapshot_every: int = 0  # also keep a copy every this many steps (0: never)
    eval_sigmas: tuple[float, ...] = DEFAULT_SIGMAS  # noise levels of the held-out PSNR evaluations
    n_eval: int = 256  # held-out images for the PSNR log
    max_train: int = 0  # use only this many training images (0: all)
    holdout_every: int = 0  # never train on every k-th class (label % k == k-1); 0: none
    out: str = "runs/default"  # the run folder (a resumable checkpoint)
    progress: bool = True  # show a progress bar

    def __post_init__(self) -> None:
        self.snapshots = tuple(int(s) for s in self.snapshots)
        self.eval_sigmas = tuple(float(s) for s in self.eval_sigmas)
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; expected one of {sorted(PRESETS)}")
        if self.sigma_law not in noise.LAWS:
            raise ValueError(f"unknown sigma law {self.sigma_law!r}; expected one of {noise.LAWS}")
        noise.check_range(self.sigma_min, self.sigma_max)
        noise.check_sigma(list(self.eval_sigmas))
        for name, top in BOUNDED.items():
            v = getattr(self, name)
            if not isinstance(v, int) or not 1 <= v <= top:
                raise ValueError(f"{name} must be an integer in [1, {top:,}], got {v!r}")
        for name in NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for holds, message in _rules(self):
            if not holds:
                raise ValueError(message)

    def data_load_kwargs(self) -> dict:
        """The keyword arguments of ``data.load`` that this run's images depend on (size, crop, a validation
        fraction and a data seed other than 0); saved as the checkpoint's ``data_kwargs``. The training ``seed``
        is not one of them: networks of different seeds see the same images, so that their verdicts are read on
        the same held-out set."""
        extra = {"crop": self.crop} if self.crop else {}
        extra |= {"val": self.val} if self.val else {}
        return {"size": self.size, **extra, **({"seed": self.data_seed} if self.data_seed else {})}

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return utils.to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of to_dict (options of newer versions are dropped)."""
        return utils.from_dict(cls, d, strict=False)


def _rules(c: TrainConfig):
    """The config's other checks, in order: (whether it holds, the error when it does not)."""
    levels = preset(c.preset).levels
    k = 2**levels
    yield (
        c.size is None or (isinstance(c.size, int) and c.size >= max(8, k) and not c.size % k),
        f"size must be a multiple of {k} and at least {max(8, k)} (preset {c.preset!r} halves the image {levels} "
        f"times), got {c.size!r}",
    )
    yield (
        c.sigma_max <= MAX_SIGMA and all(s <= MAX_SIGMA for s in c.eval_sigmas),
        f"noise levels above {MAX_SIGMA} (images in [0, 1]) are not meaningful, got sigma_max={c.sigma_max}, "
        f"eval_sigmas={list(c.eval_sigmas)}",
    )
    yield not (c.minutes < 0 or c.threads < 0), f"minutes and threads must be >= 0, got {c.minutes}, {c.threads}"
    yield c.lr > 0 and math.isfinite(c.lr), f"lr must be a positive number, got {c.lr}"
    yield c.decay in DECAYS, f"unknown decay {c.decay!r}; expected one of {DECAYS}"
    yield (
        c.decay == "none" or 0 < c.decay_steps <= c.steps - c.hold_steps,
        f"decay {c.decay!r} needs 0 < decay_steps <= steps - hold_steps ({c.steps - c.hold_steps}), "
        f"got decay_steps={c.decay_steps}",
    )
    yield (
        not (c.hold_steps and c.decay == "none"),
        f"hold_steps={c.hold_steps} holds the rate after a decay phase; set decay too",
    )
    yield 0 <= c.val < 1, f"val must be in [0, 1), got {c.val}"
    yield 0 <= c.lr_final <= 1, f"lr_final must be in [0, 1], got {c.lr_final}"
    yield 0 <= c.ema < 1, f"ema must be in [0, 1), got {c.ema}"
    yield (
        not c.bf16 or c.device.startswith(("cuda", "auto")),
        f"bf16 autocast is for CUDA devices only, got device {c.device!r}",
    )
