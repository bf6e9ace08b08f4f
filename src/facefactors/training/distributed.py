"""Multi-process training with ``torch.distributed`` DDP, launched by ``torchrun``.

``torchrun --nproc-per-node N -m facefactors train ...`` sets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT; :func:`init_distributed` reads them
and joins the process group (NCCL on CUDA, gloo on CPU). Trainers wrap each
trainable network in its own DistributedDataParallel (:func:`ddp_wrap`) so that
phases that call different networks with different ones frozen each all-reduce
exactly the gradients they produce; frozen uses call the raw modules, outside DDP.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from facefactors.devices import check_device


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: rank, world size and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this module created the process group (and should end it)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0, what: str = "Device") -> torch.device:
    """``auto`` → this process's CUDA device if there is one, else CPU.

    Raises:
        ConfigError: a name :func:`~facefactors.devices.check_device` refuses.
    """
    check_device(name, what)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(name)


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group if launched by torchrun (WORLD_SIZE > 1), else stay single.

    Args:
        device: the config's ``train.device``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world <= 1:
        return DistInfo(device=dev)
    owns = not dist.is_initialized()
    if owns:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, owns)


def ddp_wrap(module: nn.Module | None, info: DistInfo) -> nn.Module | None:
    """``module`` in a DDP wrapper when distributed (``None`` and single-process pass through)."""
    if module is None or not info.distributed:
        return module
    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def broadcast_module(module: nn.Module | None, info: DistInfo) -> None:
    """Copy rank 0's weights and buffers of a module DDP does not wrap (a frozen network)."""
    if module is None or not info.distributed:
        return
    for t in module.state_dict().values():
        dist.broadcast(t, src=0)


def all_reduce_mean(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average scalar metrics over processes (a no-op when single)."""
    if not info.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return {k: float(v) / info.world_size for k, v in zip(keys, t.tolist())}


def barrier(info: DistInfo) -> None:
    """Wait for every process (a no-op when single)."""
    if info.distributed:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group if :func:`init_distributed` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()
