"""Training checkpoints: everything needed to continue a run bit-for-bit.

A checkpoint is a plain dict (loadable with ``weights_only=True``) holding the
config, the model and every phase's optimiser and scheduler state, the RNG
states of torch (CPU and CUDA), numpy and Python, and the position in the run
(global step, epoch, batches already done in that epoch). Data order is a pure
function of (seed, epoch), so together they make ``--resume`` give the same
loss at the next step as a run that never stopped.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facefactors.checkpoint import load_checkpoint, save_checkpoint
from facefactors.config import to_dict
from facefactors.errors import CheckpointError
from facefactors.ipd.config import IPDConfig
from facefactors.ipd.model import IPDModel
from facefactors.ipd.phases import Phase

FORMAT = "facefactors.ipd.train/1"


def rng_state() -> dict[str, Any]:
    """Snapshot of every RNG the trainer may draw from, as tensors and numbers."""
    # The legacy global numpy RNG: third-party code may draw from it.
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNGs saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["gauss"]))  # noqa: NPY002
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(
    path: str | Path,
    cfg: IPDConfig,
    model: IPDModel,
    phases: list[Phase],
    *,
    step: int,
    epoch: int,
    batch_in_epoch: int,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Write a resumable checkpoint atomically.

    Args:
        path: destination (``checkpoints/last.pt``).
        cfg: the run config (stored as a dict).
        model: the networks.
        phases: their optimisers and schedulers.
        step: optimisation steps done.
        epoch: current epoch (the next one to run when ``batch_in_epoch`` is 0).
        batch_in_epoch: batches of ``epoch`` already done.
        metrics: latest scalar metrics, for reference.
    """
    state = {
        "format": FORMAT,
        "config": to_dict(cfg),
        "classes": list(model.classes),
        "model": model.state_dict(),
        "optimizers": {p.name: p.optimizer.state_dict() for p in phases},
        "schedulers": {p.name: p.scheduler.state_dict() for p in phases},
        "rng": rng_state(),
        "step": int(step),
        "epoch": int(epoch),
        "batch_in_epoch": int(batch_in_epoch),
        "metrics": dict(metrics or {}),
    }
    return save_checkpoint(path, state)


def read_training_state(path: str | Path) -> dict[str, Any]:
    """Load a training checkpoint, checking that it is one.

    Raises:
        CheckpointError: missing, truncated, or not written by the IPD trainer.
    """
    state = load_checkpoint(path)
    if state.get("format") != FORMAT:
        raise CheckpointError(f"Checkpoint {path} is not an IPD-FER training checkpoint.")
    return state


def restore_training_state(
    state: dict[str, Any], model: IPDModel, phases: list[Phase], path: str | Path
) -> tuple[int, int, int]:
    """Load weights, optimisers, schedulers and RNGs; return (step, epoch, batch_in_epoch).

    Raises:
        CheckpointError: the weights or optimisers do not fit this model.
    """
    try:
        model.load_state_dict(state["model"])
        for p in phases:
            p.optimizer.load_state_dict(state["optimizers"][p.name])
            p.scheduler.load_state_dict(state["schedulers"][p.name])
    except (KeyError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"Checkpoint {path} does not match this model: {first}.") from None
    set_rng_state(state["rng"])
    return state["step"], state["epoch"], state["batch_in_epoch"]
