"""Training the blind denoiser (SPEC section 1): minimise ||x_hat(x + sigma z) - x||^2
(optionally divided by sigma^2) over random sigma, with Adam and a step-halving learning
rate. A run folder is itself a resumable checkpoint (see ``checkpoints``), plus
``log.jsonl`` and optional snapshots ``step-NNNNNNN/`` kept for training-length studies.
"""

from __future__ import annotations

import errno
import math
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checkpoints, data, distributed, noise, trainstate, utils
from .evaluate import DEFAULT_SIGMAS, psnr_table
from .unet import PRESETS, UNet, n_params, preset

DECAYS = ("none", "cosine", "linear")
MAX_SIGMA = 10.0  # noise levels are on the [0, 1] image scale; the authors trained up to 3


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
    seed: int = 0  # seeds the initial weights, the data order and the noise
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
        levels = preset(self.preset).levels
        k = 2**levels
        if self.size is not None and (not isinstance(self.size, int) or self.size < max(8, k) or self.size % k):
            raise ValueError(
                f"size must be a multiple of {k} and at least {max(8, k)} (preset {self.preset!r} halves "
                f"the image {levels} times), got {self.size!r}"
            )
        if self.sigma_law not in noise.LAWS:
            raise ValueError(f"unknown sigma law {self.sigma_law!r}; expected one of {noise.LAWS}")
        noise.check_range(self.sigma_min, self.sigma_max)
        noise.check_sigma(list(self.eval_sigmas))
        for name, top in (
            ("batch", 65_536),
            ("steps", 10**9),
            ("log_every", 10**9),
            ("eval_every", 10**9),
            ("ckpt_every", 10**9),
            ("n_eval", 10**7),
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or not 1 <= v <= top:
                raise ValueError(f"{name} must be an integer in [1, {top:,}], got {v!r}")
        if self.sigma_max > MAX_SIGMA or any(s > MAX_SIGMA for s in self.eval_sigmas):
            raise ValueError(
                f"noise levels above {MAX_SIGMA} (images in [0, 1]) are not meaningful, got "
                f"sigma_max={self.sigma_max}, eval_sigmas={list(self.eval_sigmas)}"
            )
        if self.minutes < 0 or self.threads < 0:
            raise ValueError(f"minutes and threads must be >= 0, got {self.minutes}, {self.threads}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if self.decay not in DECAYS:
            raise ValueError(f"unknown decay {self.decay!r}; expected one of {DECAYS}")
        for name in (
            "warmup",
            "decay_steps",
            "hold_steps",
            "snapshot_every",
            "crop",
            "lr_halve_every",
            "max_train",
            "holdout_every",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.decay != "none" and not 0 < self.decay_steps <= self.steps - self.hold_steps:
            raise ValueError(
                f"decay {self.decay!r} needs 0 < decay_steps <= steps - hold_steps ({self.steps - self.hold_steps}), "
                f"got decay_steps={self.decay_steps}"
            )
        if self.hold_steps and self.decay == "none":
            raise ValueError(f"hold_steps={self.hold_steps} holds the rate after a decay phase; set decay too")
        if not 0 <= self.lr_final <= 1:
            raise ValueError(f"lr_final must be in [0, 1], got {self.lr_final}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.bf16 and not self.device.startswith(("cuda", "auto")):
            raise ValueError(f"bf16 autocast is for CUDA devices only, got device {self.device!r}")

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return utils.to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of to_dict (options of newer versions are dropped)."""
        return utils.from_dict(cls, d, strict=False)


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate at a step: linear warm-up, halving every lr_halve_every steps (the authors halve every
    100 epochs), then a final cosine or linear decay to lr * lr_final over decay_steps steps, held there for
    the last hold_steps steps."""
    lr = cfg.lr * 0.5 ** (step // cfg.lr_halve_every) if cfg.lr_halve_every else cfg.lr
    if step < cfg.warmup:
        lr *= (step + 1) / cfg.warmup
    start = cfg.steps - cfg.hold_steps - cfg.decay_steps
    if cfg.decay != "none" and step >= start:
        p = min((step - start) / cfg.decay_steps, 1.0)
        shape = 0.5 * (1 + math.cos(math.pi * p)) if cfg.decay == "cosine" else 1 - p
        lr *= cfg.lr_final + (1 - cfg.lr_final) * shape
    return lr


def make_model(cfg: TrainConfig, in_channels: int) -> UNet:
    """A freshly initialised UNet for this run, seeded by cfg.seed."""
    over = {
        "in_channels": in_channels,
        **({"norm": cfg.norm} if cfg.norm else {}),
        **({"gain_init": cfg.gain_init} if cfg.gain_init else {}),
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return UNet(preset(cfg.preset, **over))


def data_kwargs(cfg: TrainConfig) -> dict:
    """The keyword arguments of ``data.load`` that this run's images depend on (size, crop)."""
    return {"size": cfg.size, **({"crop": cfg.crop} if cfg.crop else {})}


def draw_batch(
    x: torch.Tensor,
    cfg: TrainConfig,
    gen: torch.Generator,
    dd: distributed.Dist,
    gen_dev: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One training batch (SPEC 1): the global batch's randomness drawn alike on every rank (image indices,
    flips, sigma from the law, then the noise z), and this rank's shard: clean x, noisy y = x + sigma z, sigma.

    Indices, flips and sigma come from the CPU generator ``gen``; z from ``gen_dev`` (a generator on the
    training device, for speed on CUDA) when given, else from ``gen``. Each is drawn on its generator's device
    and moved to the training device without waiting for it; ``x`` may sit on the CPU or on the device."""
    idx = utils.randint(0, x.shape[0], (cfg.batch,), gen)
    flip = utils.rand(cfg.batch, gen) < 0.5 if cfg.hflip else None
    sigma = noise.sample_sigma(cfg.batch, cfg.sigma_law, cfg.sigma_min, cfg.sigma_max, gen)
    z = utils.randn((cfg.batch, *x.shape[1:]), gen_dev if gen_dev is not None else gen)
    xb = utils.move(x[utils.move(dd.shard(idx), _where(x))], dd.device)
    if flip is not None:
        xb = torch.where(utils.move(dd.shard(flip), dd.device).view(-1, 1, 1, 1), xb.flip(-1), xb)
    sigma = utils.move(dd.shard(sigma), dd.device)
    return xb, xb + sigma.view(-1, 1, 1, 1) * utils.move(dd.shard(z), dd.device), sigma


def _where(x: torch.Tensor) -> torch.device:
    """The device a training set's batches are indexed on (a tensor's own; the CPU for a uint8 store)."""
    return x.device if isinstance(x, torch.Tensor) else torch.device("cpu")


def resident(x: torch.Tensor, device: torch.device, share: float = 0.25) -> torch.Tensor:
    """The training set on the training device when it is a tensor taking at most ``share`` of the device's free
    memory (CUDA), so that batches are indexed there; otherwise (CPU, MPS, a uint8 store, too large) as it is."""
    if device.type != "cuda" or not isinstance(x, torch.Tensor) or x.device == device:
        return x
    free, _ = torch.cuda.mem_get_info(device)
    return x.to(device) if x.numel() * x.element_size() <= share * free else x


def batch_loss(x_hat: torch.Tensor, xb: torch.Tensor, sigma: torch.Tensor, weighted: bool) -> torch.Tensor:
    """The training loss of one batch (SPEC 1): the mean over images of the (1/sigma^2-weighted, when
    ``weighted``) mean squared error of x_hat against x, in float32 whatever the network's autocast dtype."""
    per = (x_hat.float() - xb).pow(2).flatten(1).mean(1)
    return (per * noise.loss_weights(sigma, weighted)).mean()


def make_optimizer(model: torch.nn.Module, lr: float, device: torch.device | str) -> torch.optim.Adam:
    """Adam over the model's parameters: the fused kernel on CUDA, the multi-tensor (foreach) one elsewhere (on
    the CPU the same numbers as the per-tensor loop, bit for bit)."""
    kind = {"fused": True} if torch.device(device).type == "cuda" else {"foreach": True}
    return torch.optim.Adam(model.parameters(), lr=lr, **kind)


def _data(cfg: TrainConfig) -> tuple[data.ImageSet, torch.Tensor, dict, list[str]]:
    """The training set (held-out classes and max_train applied), held-out evaluation images, the data
    fingerprint of both splits, and the names of the classes kept out of training."""
    dkw = data_kwargs(cfg)
    train_set = data.load(cfg.data, "train", seed=cfg.seed, **dkw)
    test_set = data.load(cfg.data, "test", seed=cfg.seed, **dkw)
    fingerprint = {"train": train_set.fingerprint(), "test": test_set.fingerprint()}
    held_out: list[str] = []
    if cfg.holdout_every:
        train_set, rest = train_set.split_classes(cfg.holdout_every)
        held_out = sorted({rest.classes[i] for i in rest.labels.unique().tolist()})
    if cfg.max_train:
        train_set = train_set.subset(cfg.max_train, seed=cfg.seed)
    return train_set, test_set.subset(cfg.n_eval, seed=0).images, fingerprint, held_out


def _check_resume(out: Path, cfg: TrainConfig, ck: checkpoints.Checkpoint, model: UNet) -> None:
    """Refuse to continue a run with a set-up that changes what it trains on or what it is."""
    old = TrainConfig.from_dict(ck.config["train"])
    same = ("preset", "data", "size", "crop", "holdout_every", "max_train", "batch", "norm", "gain_init", "seed")
    diff = [f"{k}={getattr(old, k)!r} (asked {getattr(cfg, k)!r})" for k in same if getattr(old, k) != getattr(cfg, k)]
    if diff or ck.model.cfg != model.cfg:
        raise ValueError(
            f"cannot resume {out} with a different set-up: it was trained with "
            f"{', '.join(diff) or 'another architecture'}; start a new --out instead"
        )


def _check_writable(out: Path) -> None:
    """Refuse, before any work, a run folder that cannot be created or written (a file on its path, no permission,
    a read-only file system)."""
    p = out
    while not p.exists() and p.parent != p:
        p = p.parent
    if not p.is_dir():
        raise NotADirectoryError(f"--out {out}: {p} is a file, not a folder")
    try:  # a real write: os.access answers yes for root even on a read-only mount
        with tempfile.TemporaryFile(dir=p, prefix=".sdr-write-check-"):
            pass
    except OSError as e:
        raise PermissionError(
            f"--out {out}: cannot write in {p} ({e.strerror or e}: permission denied or a read-only file system); "
            "choose a writable folder"
        ) from e


def _save_failed(e: OSError, out: Path, path: Path, step: int) -> OSError:
    """The error of a checkpoint save that failed (disk full, no permission): what is kept, and how to go on."""
    fix = (
        "free some space"
        if e.errno in (errno.ENOSPC, errno.EDQUOT)
        else "make it writable"
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
        else "fix the cause"
    )
    try:
        previous = checkpoints.read_config(out)["step"] if checkpoints.exists(out) else None
    except (OSError, ValueError, KeyError):
        previous = "?"
    kept = (
        (
            f"the previous checkpoint in {out} (step {previous}) is intact; {fix}, then continue with "
            f"'sdr train --out {out} --resume'"
        )
        if previous is not None
        else f"no checkpoint was written; {fix}, then start the run again"
    )
    return OSError(e.errno, f"could not save the checkpoint of step {step} to {path}: {e.strerror or e}; {kept}")


def train(cfg: TrainConfig, resume: bool = False, stop_at: int | None = None, command: str | None = None) -> Path:
    """Run (or resume) training; checkpoints into cfg.out; returns the run folder. Under ``torchrun`` every
    process trains its shard of each batch and rank 0 writes (see ``distributed``).

    ``stop_at`` stops after that step with a checkpoint, exactly as an interruption would.
    """
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file, not a folder")
    _check_writable(out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dd = distributed.setup(cfg.device)
    if cfg.batch % dd.world:
        raise ValueError(f"batch {cfg.batch} must be divisible by the number of processes ({dd.world})")
    train_set, eval_x, fingerprint, held_out = _data(cfg)
    x = resident(train_set.images, dd.device)
    model = make_model(cfg, x.shape[1]).to(dd.device)
    model.check_finite = False  # its inputs are x + sigma z of checked data; the check would wait for the device
    opt = make_optimizer(model, cfg.lr, dd.device)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    gen_dev = torch.Generator(device=dd.device).manual_seed(cfg.seed + 1) if dd.device.type == "cuda" else None
    step, elapsed, cpu, log, commands = 0, 0.0, 0.0, [], []
    ema = {k: v.detach().float().clone() for k, v in model.state_dict().items()} if cfg.ema else None
    if out.is_dir() and dd.main:
        checkpoints.finish_pending(out)  # a save that a kill interrupted: complete it or drop it
    dd.barrier()
    if resume:
        if not checkpoints.exists(out):
            raise FileNotFoundError(f"cannot resume: no checkpoint in {out}")
        ck = checkpoints.load(out, device=dd.device, with_state=True, weights="raw")
        _check_resume(out, cfg, ck, model)
        model.load_state_dict(ck.model.state_dict())
        step, elapsed, cpu = trainstate.unpack(ck.state, opt, gen, gen_dev)
        if ema is not None:  # switched on at resume: the EMA starts from the current weights
            src = ck.ema if ck.ema is not None else model.state_dict()
            ema = {k: v.detach().float().clone().to(dd.device) for k, v in src.items()}
        log, commands = ck.log, ck.config.get("commands", [])
    elif checkpoints.exists(out):
        raise FileExistsError(f"{out} already holds a checkpoint; pass resume=True (--resume) or choose another --out")
    if cfg.channels_last and dd.device.type != "mps":
        model = model.to(memory_format=torch.channels_last)
    if ema is not None:
        ema = trainstate.ema_like(ema, model)
    net = dd.wrap(model)
    if cfg.compile:
        net = torch.compile(net)
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    extra = {
        "train": cfg.to_dict(),
        "data_kwargs": data_kwargs(cfg),
        "data_fingerprint": fingerprint,
        "data_classes": train_set.classes,
        "held_out_classes": held_out,
        "n_train": len(train_set),
        "n_params": n_params(model),
        "command": command,
        "commands": commands + [command],
        "device": str(dd.device),
        "processes": dd.world,
        "torch": torch.__version__,
    }

    def save(path: Path, with_state: bool = True) -> None:
        if dd.main:
            st = trainstate.pack(opt, gen, step, elapsed, cpu, gen_dev) if with_state else None
            info = {**extra, "step": step, "elapsed_s": round(elapsed, 1), "cpu_s": round(cpu, 1)}
            net, keep = model, ema
            if not with_state and ema is not None:  # a snapshot keeps one set of weights: the EMA
                net, keep, info["snapshot_weights"] = trainstate.with_weights(model, ema), None, "ema"
            try:
                checkpoints.save(path, net, info, log, st, keep)
            except OSError as e:
                raise _save_failed(e, out, path, step) from e

    def evaluate() -> None:
        if not dd.main:
            return
        model.eval()
        ev = eval_x.to(dd.device)
        rec = {"step": step, "elapsed_s": round(elapsed, 1), "eval": psnr_table(model, ev, cfg.eval_sigmas)}
        if ema is not None:
            rec["eval_ema"] = psnr_table(trainstate.with_weights(model, ema), ev, cfg.eval_sigmas)
        model.train()
        log.append(rec)

    bar = tqdm(
        total=cfg.steps,
        initial=step,
        disable=not (cfg.progress and dd.main),
        unit="step",
        desc=f"train {cfg.preset}/{cfg.data}",
        dynamic_ncols=True,
    )
    last_stop = min(cfg.steps, stop_at) if stop_at is not None else cfg.steps
    t0, c0, run_n = time.perf_counter() - elapsed, time.process_time() - cpu, 0
    # the losses since the last log line, summed on the device (float64 where it exists: the sum of the
    # per-step values in double, as a Python float would give) and read only when a line is written
    run_loss = torch.zeros((), dtype=torch.float32 if dd.device.type == "mps" else torch.float64, device=dd.device)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if cfg.bf16 and dd.device.type == "cuda"
        else trainstate.null_context()
    )
    model.train()
    if step == 0:
        evaluate()
    restore = trainstate.interrupt_on_signals()
    try:
        while step < last_stop:
            for grp in opt.param_groups:
                grp["lr"] = lr_at(cfg, step)
            xb, y, sigma = draw_batch(x, cfg, gen, dd, gen_dev)
            if cfg.channels_last:
                y = y.contiguous(memory_format=torch.channels_last)
            with amp:
                x_hat = net(y)
            loss = batch_loss(x_hat, xb, sigma, cfg.weighted)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                trainstate.update_ema(ema, model, trainstate.ema_decay(cfg.ema, step))
            step += 1
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            run_loss += loss.detach()
            run_n += 1
            if step % cfg.log_every == 0 or step == last_stop:
                mean_loss = dd.mean(run_loss.item() / run_n)
                log.append(
                    {
                        "step": step,
                        "loss": mean_loss,
                        "lr": lr_at(cfg, step - 1),
                        "elapsed_s": round(elapsed, 1),
                        "cpu_s": round(cpu, 1),
                        "img_per_s": round(step * cfg.batch / max(elapsed, 1e-9), 1),
                    }
                )
                bar.set_postfix(loss=f"{mean_loss:.2e}")
                run_loss.zero_()
                run_n = 0
            if step % cfg.eval_every == 0 or step == cfg.steps:
                evaluate()
            if step in cfg.snapshots or (cfg.snapshot_every and step % cfg.snapshot_every == 0):
                save(out / f"step-{step:07d}", with_state=False)
            if step % cfg.ckpt_every == 0:
                save(out)
            bar.update(1)
            if cfg.minutes and dd.any(elapsed > cfg.minutes * 60):
                break
    except KeyboardInterrupt:
        bar.close()
        save(out)
        if dd.main:
            print(f"\ninterrupted at step {step}: checkpoint saved to {out} (continue with --resume)", file=sys.stderr)
        raise
    finally:
        restore()
    bar.close()
    if not log or log[-1].get("step") != step or "eval" not in log[-1]:
        evaluate()
    save(out)
    dd.barrier()
    return out
