"""The one timer every benchmark uses, and the thread/device set-up."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def timeit(fn: Callable[[], None], seconds: float, min_runs: int = 3, warmup: int = 1) -> float:
    """Mean seconds per call of ``fn`` over at least ``seconds`` and ``min_runs`` calls."""
    for _ in range(warmup):
        fn()
    runs, start = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < seconds:
        fn()
        runs += 1
    return (time.perf_counter() - start) / runs


def setup(threads: int | None, device: str) -> torch.device:
    if threads:
        torch.set_num_threads(threads)
    return torch.device(device)


def once(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
