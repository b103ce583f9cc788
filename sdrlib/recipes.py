"""Named training recipes (``sdr train --recipe NAME``), beside the architecture presets of ``unet``: each a set
of ``TrainConfig`` fields and the results it reached (held-out PSNR of a shipped reference, from its log).

A recipe may give its warm-up and decay as fractions of the run's steps: they are resolved against the steps
of the run (``--recipe healthy --steps 4000`` warms up over 400 steps and decays over the last 1,200), unless
the warm-up or decay length is given. A recipe named after a reference gives exactly that reference's training
config (its ``config.json``), all but the run folder, which is ``runs/NAME``. Options given beside ``--recipe``
override its values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .trainconfig import TrainConfig

WARMUP_CAP = 1000  # a warm-up given as a fraction of the steps lasts at most this many steps


@dataclass(frozen=True)
class Result:
    """What a recipe reached: the held-out denoised PSNR at sigma 0.1 (dB, images in [0, 1]; 512 held-out
    images) at the last evaluation of a shipped reference's training log, of the weights it loads."""

    reference: str  # the checkpoint folder, checkpoints/<reference>
    step: int  # the step of that evaluation (the end of the run)
    psnr: float  # dB at sigma 0.1 (the noisy input: 20.0 dB)
    weights: str = "ema"  # "ema" (the EMA of the weights) or "raw" (a run without EMA)
    seed: int = 0


@dataclass(frozen=True)
class Recipe:
    """A named set of TrainConfig fields, the lengths it gives as fractions of the steps, and its results."""

    about: str  # one sentence: what it is and where it comes from
    fields: dict = field(default_factory=dict)  # TrainConfig fields
    warmup_frac: float = 0.0  # warm-up over this fraction of the steps, at most WARMUP_CAP (unless warmup is set)
    decay_frac: float = 0.0  # decay over this fraction of the steps before the hold (unless decay_steps is set)
    halve_frac: float = 0.0  # halve the rate every this fraction of the steps (unless lr_halve_every is set)
    base: str = ""  # the recipe this one specialises (its results count for the base too)
    results: tuple[Result, ...] = ()


def _on(base: str, about: str, results: tuple[Result, ...] = (), **fields) -> Recipe:
    """A recipe that is ``base`` with some fields set (a budget, a data set, the run's bookkeeping)."""
    b = RECIPES[base]
    return dataclasses.replace(b, about=about, fields={**b.fields, **fields}, base=base, results=results)


# the bookkeeping of the CPU references: evaluations, checkpoints, held-out images, one thread, no progress bar
CPU_REFERENCE = dict(eval_every=500, ckpt_every=250, n_eval=512, threads=1, progress=False)
SNAPSHOTS = (500, 1500, 4000, 8000)  # the references' snapshots for the training-length studies

RECIPES: dict[str, Recipe] = {}
RECIPES["v1"] = Recipe(
    "The recipe of the first references (55 of 256 middle channels dead on Fashion-MNIST): Adam at 1e-3 from step "
    "0, halved every 3,000 steps, the paper's small scale-norm gains, no EMA.",
    dict(lr=1e-3, lr_halve_every=3000),
    results=(
        Result("small-fashion-mnist", step=9000, psnr=28.61, weights="raw"),
        Result("small-textures", step=8000, psnr=28.52, weights="raw"),
    ),
)
RECIPES["healthy"] = Recipe(
    "The recipe the appendix chose (scripts/health_study.py), which keeps the middle block alive: unit "
    "scale-norm gains and a linear warm-up over 10 % of the steps (at most 1,000), Adam at 5e-4, a cosine decay "
    "to lr/10 over the last 30 % of the steps before any hold, and an EMA of the weights.",
    dict(lr=5e-4, gain_init="ones", decay="cosine", ema=0.999),
    warmup_frac=0.1,
    decay_frac=0.3,
)
# What a CPU reference and its twin of another recipe share: the preset and the data they see.
FASHION_MNIST_32 = dict(preset="small", data="fashion-mnist")
TEXTURES_64 = dict(preset="paper-small", data="textures", size=64, crop=64, hflip=True, holdout_every=5)
RECIPES["fashion-mnist-small-32"] = _on(
    "healthy",
    "The Fashion-MNIST reference: `healthy`, preset `small` at 32x32, 14,500 steps of which the last 1,500 hold "
    "the final rate (4.3 CPU-hours on one thread).",
    (Result("fashion-mnist-small-32", step=14500, psnr=28.64),),
    **FASHION_MNIST_32,
    steps=14500,
    hold_steps=1500,
    snapshots=SNAPSHOTS,
    **CPU_REFERENCE,
)
RECIPES["fashion-mnist-small-32-short"] = _on(
    "healthy",
    "The reduced budget of the Fashion-MNIST reference's extra training seeds (give --seed): `healthy` for "
    "4,000 steps with the warm-up kept at 1,000 steps (1.1 CPU-hours each on one thread).",
    (
        Result("fashion-mnist-small-32-seed1", step=4000, psnr=26.76, seed=1),
        Result("fashion-mnist-small-32-seed2", step=4000, psnr=25.67, seed=2),
        Result("fashion-mnist-small-32-seed3", step=4000, psnr=25.40, seed=3),
    ),
    **FASHION_MNIST_32,
    steps=4000,
    warmup=1000,
    **CPU_REFERENCE,
)
RECIPES["textures-paper-small-64"] = _on(
    "healthy",
    "The textures reference: `healthy`, preset `paper-small` on 64x64 crops with flips, every 5th photograph "
    "held out, 17,500 steps of which the last 6,000 hold the final rate (5.9 CPU-hours on one thread).",
    (Result("textures-paper-small-64", step=17500, psnr=27.78),),
    **TEXTURES_64,
    steps=17500,
    hold_steps=6000,
    snapshots=SNAPSHOTS,
    **CPU_REFERENCE,
)
RECIPES["fashion-mnist-paper-32"] = _on(
    "healthy",
    "The paper's preset on Fashion-MNIST on one GPU: `healthy` at batch 256, 12,000 steps, bf16 and torch.compile, "
    "stopped by the clock after 3.7 minutes (step 9,234 on an H200).",
    (Result("fashion-mnist-paper-32", step=9234, psnr=28.93),),
    preset="paper",
    data="fashion-mnist",
    batch=256,
    steps=12000,
    minutes=3.7,
    device="cuda",
    bf16=True,
    compile=True,
    log_every=100,
    eval_every=2000,
    ckpt_every=1_000_000,
    snapshots=(12000,),
    n_eval=512,
    progress=False,
)
RECIPES["authors"] = Recipe(
    "The authors' training defaults (SPEC 1, from their public code; never trained here): loss weighted by "
    "1/sigma^2, noise levels 1/255 to 765/255, batch 4096, Adam at 1e-3 halved every 10 % of the steps (every "
    "100 of about 1,000 epochs), the paper's small scale-norm gains.",
    dict(weighted=True, sigma_min=1 / 255, sigma_max=3.0, batch=4096, lr=1e-3, gain_init="paper"),
    halve_frac=0.1,
)
# The authors' recipe at the budget of each CPU reference (#24): their gains, loss weighting, noise range and
# halving schedule, with the reference's preset, data, batch and steps, so that both see the same images.
RECIPES["fashion-mnist-small-32-authors"] = _on(
    "authors",
    "`authors` at the Fashion-MNIST reference's budget: preset `small` at 32x32, batch 64 for 14,500 steps (the "
    "reference's 0.93 M images), Adam at 1e-3 halved every 1,450 steps, no EMA.",
    **FASHION_MNIST_32,
    batch=64,
    steps=14500,
    snapshots=SNAPSHOTS,
    **CPU_REFERENCE,
)
RECIPES["textures-paper-small-64-authors"] = _on(
    "authors",
    "`authors` at the textures reference's budget: preset `paper-small` on 64x64 crops with flips, every 5th "
    "photograph held out, batch 64 for 17,500 steps (the reference's 1.12 M images), Adam at 1e-3 halved every "
    "1,750 steps, no EMA.",
    **TEXTURES_64,
    batch=64,
    steps=17500,
    snapshots=SNAPSHOTS,
    **CPU_REFERENCE,
)


def names() -> list[str]:
    """The recipes' names."""
    return list(RECIPES)


def get(name: str) -> Recipe:
    """The recipe of that name (ValueError naming the known ones)."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; expected one of {names()}")
    return RECIPES[name]


def results(name: str) -> tuple[Result, ...]:
    """The results a recipe reached: its own and those of the recipes built on it."""
    return get(name).results + tuple(r for k, v in RECIPES.items() if v.base == name for r in results(k))


def resolve(name: str, **over) -> dict:
    """The TrainConfig fields of a recipe with some fields overridden, its fractions resolved against the steps."""
    r = get(name)
    f = {"out": f"runs/{name}", **r.fields, **over}
    defaults = {x.name: x.default for x in dataclasses.fields(TrainConfig)}
    steps, hold = (f.get(k, defaults[k]) for k in ("steps", "hold_steps"))
    if r.warmup_frac and "warmup" not in f:
        f["warmup"] = min(WARMUP_CAP, int(r.warmup_frac * steps))
    if r.decay_frac and "decay_steps" not in f and f.get("decay", defaults["decay"]) != "none":
        f["decay_steps"] = max(1, int(r.decay_frac * (steps - hold)))
    if r.halve_frac and "lr_halve_every" not in f:
        f["lr_halve_every"] = max(1, int(r.halve_frac * steps))
    return f


def config(name: str, **over) -> TrainConfig:
    """The TrainConfig of a recipe (``over``: fields that override its values)."""
    return TrainConfig(**resolve(name, **over))


def match(train: dict) -> tuple[str, bool] | None:
    """The recipe a run's training config (config.json's ``train``) follows, and whether exactly: ``config(name,
    seed=..., out=...)`` gives it; else the first recipe whose own fields it has (its fractions resolved at the
    run's steps); None when it follows none."""
    run = TrainConfig.from_dict(train)
    for name in RECIPES:
        if config(name, seed=run.seed, out=run.out) == run:
            return name, True
    for name in RECIPES:
        at = {k: getattr(run, k) for k in ("steps", "hold_steps") if k not in RECIPES[name].fields}
        if all(getattr(run, k) == v for k, v in resolve(name, **at).items() if k != "out"):
            return name, False
    return None


def describe(config: dict) -> str:
    """A run's recipe in words, for its README: the name its config records (trained with --recipe) or the one it
    matches, and whether ``sdr train --recipe NAME`` gives its training config."""
    found = match(config["train"])
    name = config.get("recipe") or (found[0] if found else None)
    if name is None:
        return "none of the named recipes (`sdrlib.recipes`): its options are in the commands above"
    seed = config["train"].get("seed", 0)
    command = f"`sdr train --recipe {name}" + (f" --seed {seed}" if seed else "") + "`"
    if found == (name, True):
        return f"`{name}`: {command} gives this run's training config (its folder aside)"
    return f"`{name}`, with the other options of the commands above ({command} plus those options)"
