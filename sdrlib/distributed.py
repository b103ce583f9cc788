"""Data-parallel training under ``torchrun`` (DistributedDataParallel): which process this is, its device,
its shard of every global batch, and the few collective operations the training loop needs.

Every rank draws the same global batch (image indices, noise levels, noise) from generators seeded
alike, and trains on its own contiguous shard of it; DDP averages the gradients, so a run on N
processes takes the same steps as one process with the same global batch and seed. Rank 0 alone
writes checkpoints and logs. Without ``torchrun`` (WORLD_SIZE unset) everything here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .utils import pick_device


@dataclass(frozen=True)
class Dist:
    """This process's place in a (possibly single-process) run."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Whether this process writes checkpoints, logs and progress (rank 0)."""
        return self.rank == 0

    def shard(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share of a global batch (first dimension)."""
        if self.world == 1:
            return t
        n = t.shape[0] // self.world
        return t[self.rank * n : (self.rank + 1) * n]

    def mean(self, value: float) -> float:
        """The mean of a number over all ranks (for the log)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return t.item() / self.world

    def any(self, flag: bool) -> bool:
        """Whether any rank raised ``flag`` (so that all ranks stop at the same step)."""
        if self.world == 1:
            return flag
        t = torch.tensor([int(flag)], device=self._comm_device())
        dist.all_reduce(t)
        return bool(t.item())

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.world > 1:
            dist.barrier()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model wrapped in DistributedDataParallel (itself on one process)."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def setup(device: str = "auto") -> Dist:
    """Join the process group that ``torchrun`` describes (WORLD_SIZE, RANK, LOCAL_RANK), or a single process.

    CUDA ranks use NCCL and the GPU LOCAL_RANK; CPU ranks use gloo (that is how the tests run it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if world == 1:
        return Dist(0, 1, pick_device(device))
    dev = pick_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, dev)


def teardown() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
