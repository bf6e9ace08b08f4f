"""The pieces of a flat training loop that every trainer shares.

Data order is a pure function of (seed, epoch): :func:`epoch_loader` draws its
permutation from ``DistributedSampler(seed, epoch)`` and its worker seeds from a
generator seeded by (seed, epoch), never from the global RNG. Random flips draw
from the global torch RNG, which :mod:`facefactors.training.state` saves. Together
they make a resumed run see the same batches and the same flips as one that never
stopped.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from facefactors.errors import DataError
from facefactors.training.distributed import DistInfo

Autocast = Callable[[], contextlib.AbstractContextManager]


def autocast_factory(device: torch.device, bf16: bool) -> Autocast:
    """A function returning a bf16 autocast context (or a no-op one when off)."""
    if not bf16:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def random_hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror a random half of a (B, C, H, W) batch (draws B numbers from the global RNG)."""
    flip = (torch.rand(x.shape[0]) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def _sampler(ds: Dataset, seed: int, info: DistInfo) -> DistributedSampler:
    return DistributedSampler(
        ds, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed, drop_last=True
    )


def steps_per_epoch(
    ds: Dataset, batch_size: int, seed: int, info: DistInfo, key: str = "train.batch_size"
) -> int:
    """Full batches per process per epoch (``key`` names the batch size in errors).

    Raises:
        DataError: the split holds less than one batch per process.
    """
    steps = len(_sampler(ds, seed, info)) // batch_size
    if steps == 0:
        raise DataError(
            f"The training split has {len(ds)} images, fewer than one batch per process "
            f"({key}={batch_size} × {info.world_size} processes)."
        )
    return steps


def epoch_loader(
    ds: Dataset,
    *,
    batch_size: int,
    seed: int,
    info: DistInfo,
    epoch: int,
    skip: int,
    collate_fn: Callable[[list], Any] | None = None,
    num_workers: int = 0,
) -> DataLoader:
    """This process's batches of ``epoch``, without the first ``skip`` ones.

    Args:
        ds: the training dataset.
        batch_size: images per process and step.
        seed: the run seed (data order is a function of (seed, epoch) only).
        info: this process's rank and world size (each rank gets its own shard).
        epoch: 0-based epoch.
        skip: batches of this epoch already done (a resumed run).
        collate_fn: batch collation.
        num_workers: loader worker processes.
    """
    sampler = _sampler(ds, seed, info)
    sampler.set_epoch(epoch)
    steps = steps_per_epoch(ds, batch_size, seed, info)
    return DataLoader(
        ds,
        batch_size=batch_size,
        sampler=list(sampler)[skip * batch_size : steps * batch_size],
        num_workers=num_workers,
        collate_fn=collate_fn,
        drop_last=True,
        generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch),
        pin_memory=info.device.type == "cuda",
    )


def progress(total: int, initial: int, desc: str, info: DistInfo):  # noqa: ANN201 (tqdm)
    """A tqdm bar on the main process when stderr is a terminal, otherwise a silent one."""
    from tqdm.auto import tqdm

    tty = info.is_main and sys.stderr.isatty()
    return tqdm(total=total, initial=initial, disable=not tty, desc=desc)


def total_steps(epochs: int, steps: int, max_steps: int | None) -> int:
    """Steps the run makes: all epochs, or ``max_steps`` if that comes first."""
    return epochs * steps if max_steps is None else min(max_steps, epochs * steps)
