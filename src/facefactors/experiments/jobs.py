"""Independent training jobs, one after another or in parallel worker processes.

Small CPU models do not use two cores well from one process: two single-threaded
trainings side by side do about 1.3× the work per second of one training on two
threads (``facefactors bench train --threads 1`` against ``--threads 2``,
measured in the README). ``run_jobs`` runs a list of :class:`Job` on ``workers``
spawned processes, each with its share of the cores; ``workers <= 1`` runs them in
this process in order, which is easier to debug and what tests of a single job use.

A job writes its results to disk (a run folder) and returns nothing big: only its
wall time travels back. The first failure, or a Ctrl-C, starts no further job,
waits for the running ones (an interrupted trainer saves its checkpoint; a rerun
resumes it) and is re-raised here, with a note naming the failed job.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Job:
    """One unit of work: ``fn(**kwargs)``, where ``fn`` is a module-level function.

    Attributes:
        label: how the log and the timings name it, e.g. ``"ipd seed 1"``.
        fn: importable by name (a spawned worker unpickles it), arguments picklable.
        kwargs: its keyword arguments.
        cost: a relative size, to start the longest jobs first.
    """

    label: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    cost: float = 1.0


def run_finished(run: Path) -> bool:
    """A training run folder is finished when it holds ``model.pt`` and its last checkpoint
    (with only the checkpoint it was interrupted, and its trainer resumes it)."""
    return (run / "model.pt").is_file() and (run / "checkpoints" / "last.pt").is_file()


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _timed(fn: Callable[..., Any], kwargs: dict[str, Any]) -> float:
    tick = time.perf_counter()
    fn(**kwargs)
    return time.perf_counter() - tick


def run_jobs(
    jobs: Sequence[Job], workers: int, log: Callable[[str], None] = print
) -> dict[str, float]:
    """Run every job, longest first; returns label → seconds it took.

    Args:
        jobs: distinct labels.
        workers: parallel processes (``<= 1``: in this process, in the given order).
        log: receives ``"<label>: trained in N s"`` as each job ends.
    """
    labels = [j.label for j in jobs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"Job labels must be distinct, got {labels}.")
    seconds: dict[str, float] = {}
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            try:
                seconds[job.label] = _timed(job.fn, job.kwargs)
            except BaseException as e:
                e.add_note(f"in job '{job.label}'")
                raise
            log(f"{job.label}: trained in {seconds[job.label]:.0f} s")
        return seconds
    workers = min(workers, len(jobs))
    threads = max(1, cpu_count() // workers)
    order = sorted(jobs, key=lambda j: -j.cost)  # stable: equal costs keep their order
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),  # no forked torch thread pools
        initializer=_init_worker,
        initargs=(threads,),
    ) as pool:
        # At most one job per worker is handed over at a time: a job queued in the pool
        # could no longer be cancelled, and would start after a Ctrl-C or a failure.
        queue, pending = list(order), dict[Future, Job]()
        while queue or pending:
            while queue and len(pending) < workers:
                job = queue.pop(0)
                pending[pool.submit(_timed, job.fn, job.kwargs)] = job
            done, _ = wait(pending, return_when=FIRST_COMPLETED)  # log each as it ends
            for fut in done:
                job = pending.pop(fut)
                if (e := fut.exception()) is not None:
                    e.add_note(f"in job '{job.label}'")
                    raise e  # the running jobs finish (and keep their output) first
                seconds[job.label] = fut.result()
                log(f"{job.label}: trained in {seconds[job.label]:.0f} s")
    return seconds
