"""Training the blind denoiser (SPEC section 1): minimise ||x_hat(x + sigma z) - x||^2
(optionally divided by sigma^2) over random sigma, with Adam and the learning-rate schedule of ``schedule``.
A run folder is itself a resumable checkpoint (see ``checkpoints``), plus ``log.jsonl`` and optional
snapshots ``step-NNNNNNN/`` kept for training-length studies.

``train`` reads as its steps: ``Run(cfg)`` sets up (data, network, optimiser, generators, a resumed state),
``Run.train_step`` makes one optimisation step, ``Run.log_line`` and ``Run.evaluate`` write the log (loss;
held-out PSNR), ``Run.save`` writes a checkpoint or a snapshot. What a run is: ``TrainConfig``
(``trainconfig``); named configs: ``recipes``.
"""

from __future__ import annotations

import errno
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checkpoints, data, distributed, noise, trainstate, utils
from .evaluate import psnr_table
from .schedule import lr_at
from .trainconfig import TrainConfig
from .unet import UNet, n_params, preset


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


def draw_batch(
    x: torch.Tensor,
    cfg: TrainConfig,
    gen: torch.Generator,
    dist: distributed.Dist,
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
    xb = utils.move(x[utils.move(dist.shard(idx), _where(x))], dist.device)
    if flip is not None:
        xb = torch.where(utils.move(dist.shard(flip), dist.device).view(-1, 1, 1, 1), xb.flip(-1), xb)
    sigma = utils.move(dist.shard(sigma), dist.device)
    return xb, xb + sigma.view(-1, 1, 1, 1) * utils.move(dist.shard(z), dist.device), sigma


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
    """The training set (held-out classes and max_train applied), held-out evaluation images (the validation
    split when the run keeps one, so that its log and stopping rule never read the test split), the data
    fingerprint of every split, and the names of the classes kept out of training."""
    dkw = cfg.data_load_kwargs()
    train_set = data.load(cfg.data, "train", **dkw)
    test_set = data.load(cfg.data, "test", **dkw)
    fingerprint = {"train": train_set.fingerprint(), "test": test_set.fingerprint()}
    if cfg.val:
        test_set = data.load(cfg.data, "val", **dkw)
        fingerprint["val"] = test_set.fingerprint()
    held_out: list[str] = []
    if cfg.holdout_every:
        train_set, rest = train_set.split_classes(cfg.holdout_every)
        held_out = sorted({rest.classes[i] for i in rest.labels.unique().tolist()})
    if cfg.max_train:
        train_set = train_set.subset(cfg.max_train, seed=cfg.data_seed)
    return train_set, test_set.subset(cfg.n_eval, seed=0).images, fingerprint, held_out


def _check_resume(out: Path, cfg: TrainConfig, ck: checkpoints.Checkpoint, model: UNet) -> None:
    """Refuse to continue a run with a set-up that changes what it trains on or what it is."""
    old = TrainConfig.from_dict(ck.config["train"])
    same = ("preset", "data", "size", "crop", "val", "holdout_every", "max_train", "batch", "norm", "gain_init", "seed")
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


class Run:
    """One training run in progress: its data, network, optimiser, random generators, EMA of the weights, step
    and clocks, log, and the facts its checkpoints record. Creating it is the set-up; ``train`` drives it."""

    def __init__(
        self, cfg: TrainConfig, resume: bool = False, command: str | None = None, recipe: str | None = None
    ) -> None:
        # the run folder and the processes
        self.cfg, self.out = cfg, Path(cfg.out)
        if self.out.exists() and not self.out.is_dir():
            raise NotADirectoryError(f"--out {self.out} is a file, not a folder")
        _check_writable(self.out)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.dist = dist = distributed.setup(cfg.device)
        if cfg.batch % dist.world:
            raise ValueError(f"batch {cfg.batch} must be divisible by the number of processes ({dist.world})")
        # a fresh start: data, network, optimiser, generators, EMA
        train_set, self.eval_x, fingerprint, held_out = _data(cfg)
        self.x = resident(train_set.images, dist.device)
        self.model = make_model(cfg, self.x.shape[1]).to(dist.device)
        # its inputs are x + sigma z of checked data; the check of every input would wait for the device
        self.model.check_finite = False
        self.opt = make_optimizer(self.model, cfg.lr, dist.device)
        self.gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        self.gen_dev = (
            torch.Generator(device=dist.device).manual_seed(cfg.seed + 1) if dist.device.type == "cuda" else None
        )
        self.step, self.elapsed, self.cpu, self.log, commands = 0, 0.0, 0.0, [], []
        self.ema = {k: v.detach().float().clone() for k, v in self.model.state_dict().items()} if cfg.ema else None
        # or the state of the checkpoint it continues
        if self.out.is_dir() and dist.main:
            checkpoints.finish_pending(self.out)  # a save that a kill interrupted: complete it or drop it
        dist.barrier()
        if resume:
            commands, recipe = self._resume(recipe)
        elif checkpoints.exists(self.out):
            raise FileExistsError(
                f"{self.out} already holds a checkpoint; pass resume=True (--resume) or choose another --out"
            )
        # layout and wrappers for speed; what its checkpoints record; the clocks
        if cfg.channels_last and dist.device.type != "mps":
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.ema is not None:
            self.ema = trainstate.ema_like(self.ema, self.model)
        self.net = dist.wrap(self.model)
        if cfg.compile:
            self.net = torch.compile(self.net)
        self.extra = self._record(train_set, fingerprint, held_out, commands, command, recipe)
        self.t0, self.c0 = time.perf_counter() - self.elapsed, time.process_time() - self.cpu
        # the losses since the last log line, summed on the device (float64 where it exists: the sum of the
        # per-step values in double, as a Python float would give) and read only when a line is written
        dtype = torch.float32 if dist.device.type == "mps" else torch.float64
        self.run_loss, self.run_n = torch.zeros((), dtype=dtype, device=dist.device), 0
        amp = cfg.bf16 and dist.device.type == "cuda"
        self.amp = torch.autocast("cuda", dtype=torch.bfloat16) if amp else trainstate.null_context()
        self.model.train()

    def _record(self, train_set, fingerprint, held_out, commands, command, recipe) -> dict:
        """What every checkpoint of the run records beside its step and clocks (config.json)."""
        command = command or " ".join(shlex.quote(a) for a in sys.argv)
        return {
            "train": self.cfg.to_dict(),
            **({"recipe": recipe} if recipe else {}),
            "data_kwargs": self.cfg.data_load_kwargs(),
            "data_fingerprint": fingerprint,
            "data_classes": train_set.classes,
            "held_out_classes": held_out,
            "eval_split": "val" if self.cfg.val else "test",  # what the log's held-out PSNR reads
            "n_train": len(train_set),
            "n_params": n_params(self.model),
            "command": command,
            "commands": commands + [command],
            "device": str(self.dist.device),
            "processes": self.dist.world,
            "torch": torch.__version__,
        }

    def _resume(self, recipe: str | None) -> tuple[list[str], str | None]:
        """Continue the checkpoint in the run folder: its weights, optimiser moments, generators, clocks, EMA and
        log; returns the commands that made it and its recipe (``recipe`` when it names one)."""
        if not checkpoints.exists(self.out):
            raise FileNotFoundError(f"cannot resume: no checkpoint in {self.out}")
        ck = checkpoints.load(self.out, device=self.dist.device, with_state=True, weights="raw")
        _check_resume(self.out, self.cfg, ck, self.model)
        self.model.load_state_dict(ck.model.state_dict())
        self.step, self.elapsed, self.cpu = trainstate.unpack(ck.state, self.opt, self.gen, self.gen_dev)
        if self.ema is not None:  # switched on at resume: the EMA starts from the current weights
            src = ck.ema if ck.ema is not None else self.model.state_dict()
            self.ema = {k: v.detach().float().clone().to(self.dist.device) for k, v in src.items()}
        self.log = ck.log
        return ck.config.get("commands", []), recipe or ck.config.get("recipe")

    def train_step(self) -> None:
        """One optimisation step (SPEC 1): the scheduled rate, a noisy batch, the loss, Adam, the EMA; then the
        step count, the clocks and the running loss."""
        cfg = self.cfg
        for grp in self.opt.param_groups:
            grp["lr"] = lr_at(cfg, self.step)
        xb, y, sigma = draw_batch(self.x, cfg, self.gen, self.dist, self.gen_dev)
        if cfg.channels_last:
            y = y.contiguous(memory_format=torch.channels_last)
        with self.amp:
            x_hat = self.net(y)
        loss = batch_loss(x_hat, xb, sigma, cfg.weighted)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.ema is not None:
            trainstate.update_ema(self.ema, self.model, trainstate.ema_decay(cfg.ema, self.step))
        self.step += 1
        self.elapsed, self.cpu = time.perf_counter() - self.t0, time.process_time() - self.c0
        self.run_loss += loss.detach()
        self.run_n += 1

    def log_line(self) -> float:
        """Append a line to the log: the mean loss since the last line (over all processes), the rate of the
        last step, the clocks and the speed; returns the mean loss."""
        mean_loss = self.dist.mean(self.run_loss.item() / self.run_n)
        self.log.append(
            {
                "step": self.step,
                "loss": mean_loss,
                "lr": lr_at(self.cfg, self.step - 1),
                "elapsed_s": round(self.elapsed, 1),
                "cpu_s": round(self.cpu, 1),
                "img_per_s": round(self.step * self.cfg.batch / max(self.elapsed, 1e-9), 1),
            }
        )
        self.run_loss.zero_()
        self.run_n = 0
        return mean_loss

    def evaluate(self) -> None:
        """Append the held-out PSNR table of the weights (and of their EMA) to the log (rank 0)."""
        if not self.dist.main:
            return
        self.model.eval()
        ev, sigmas = self.eval_x.to(self.dist.device), self.cfg.eval_sigmas
        rec = {"step": self.step, "elapsed_s": round(self.elapsed, 1), "eval": psnr_table(self.model, ev, sigmas)}
        if self.ema is not None:
            rec["eval_ema"] = psnr_table(trainstate.with_weights(self.model, self.ema), ev, sigmas)
        self.model.train()
        self.log.append(rec)

    def save(self, snapshot: bool = False) -> None:
        """Write a resumable checkpoint into the run folder, or (``snapshot``) a permanent copy of the weights,
        without optimiser state, into ``step-NNNNNNN/``: the EMA's when the run keeps one (rank 0)."""
        if not self.dist.main:
            return
        path = self.out / f"step-{self.step:07d}" if snapshot else self.out
        st = None if snapshot else trainstate.pack(self.opt, self.gen, self.step, self.elapsed, self.cpu, self.gen_dev)
        info = {**self.extra, "step": self.step, "elapsed_s": round(self.elapsed, 1), "cpu_s": round(self.cpu, 1)}
        net, keep = self.model, self.ema
        if snapshot and self.ema is not None:  # a snapshot keeps one set of weights: the EMA
            net, keep, info["snapshot_weights"] = trainstate.with_weights(self.model, self.ema), None, "ema"
        try:
            checkpoints.save(path, net, info, self.log, st, keep)
        except OSError as e:
            raise _save_failed(e, self.out, path, self.step) from e


def train(
    cfg: TrainConfig,
    resume: bool = False,
    stop_at: int | None = None,
    command: str | None = None,
    recipe: str | None = None,
) -> Path:
    """Run (or resume) training; checkpoints into cfg.out; returns the run folder. Under ``torchrun`` every
    process trains its shard of each batch and rank 0 writes (see ``distributed``).

    ``stop_at`` stops after that step with a checkpoint, exactly as an interruption would. ``command`` is the
    command line recorded in the checkpoint, ``recipe`` the name of the recipe the config came from (``recipes``).
    """
    run = Run(cfg, resume, command, recipe)
    last = min(cfg.steps, stop_at) if stop_at is not None else cfg.steps
    bar = tqdm(
        total=cfg.steps,
        initial=run.step,
        disable=not (cfg.progress and run.dist.main),
        unit="step",
        desc=f"train {cfg.preset}/{cfg.data}",
        dynamic_ncols=True,
    )
    if run.step == 0:
        run.evaluate()
    restore = trainstate.interrupt_on_signals()
    try:
        while run.step < last:
            run.train_step()
            if run.step % cfg.log_every == 0 or run.step == last:
                bar.set_postfix(loss=f"{run.log_line():.2e}")
            if run.step % cfg.eval_every == 0 or run.step == cfg.steps:
                run.evaluate()
            if run.step in cfg.snapshots or (cfg.snapshot_every and run.step % cfg.snapshot_every == 0):
                run.save(snapshot=True)
            if run.step % cfg.ckpt_every == 0:
                run.save()
            bar.update(1)
            if cfg.minutes and run.dist.any(run.elapsed > cfg.minutes * 60):
                break
    except KeyboardInterrupt:
        bar.close()
        run.save()
        if run.dist.main:
            print(
                f"\ninterrupted at step {run.step}: checkpoint saved to {run.out} (continue with --resume)",
                file=sys.stderr,
            )
        raise
    finally:
        restore()
    bar.close()
    if not run.log or run.log[-1].get("step") != run.step or "eval" not in run.log[-1]:
        run.evaluate()
    run.save()
    run.dist.barrier()
    return run.out
