"""Training checkpoints: everything needed to continue a run bit-for-bit.

A checkpoint is a plain dict (loadable with ``weights_only=True``) holding a
format tag, the config, the model and every optimiser and scheduler state (keyed
by phase name), the RNG states of torch (CPU and CUDA), numpy and Python, and
the position in the run (global step, epoch, batches already done in that
epoch). Data order is a pure function of (seed, epoch)
(:func:`facefactors.training.loop.epoch_loader`), so together they make
``--resume`` give the same loss at the next step as a run that never stopped.
Every trainer (IPD-FER, identity pretraining, the tensorial model) writes this
one layout under its own format tag.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facefactors.checkpoint import (
    clean_orphans,
    entry,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)
from facefactors.errors import CheckpointError

# What every training checkpoint holds (besides a trainer's extras), with its type.
LAYOUT: dict[str, type | tuple[type, ...]] = {
    "config": dict,
    "model": dict,
    "optimizers": dict,
    "schedulers": dict,
    "rng": dict,
    "step": int,
    "epoch": int,
    "batch_in_epoch": int,
    "metrics": dict,
}


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
    *,
    format: str,
    config: dict[str, Any],
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: dict[str, Any] | None = None,
    step: int,
    epoch: int,
    batch_in_epoch: int,
    metrics: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a resumable checkpoint atomically (fsync, then rename).

    Args:
        path: destination (``checkpoints/last.pt``).
        format: the trainer's format tag (``facefactors.ipd.train/1`` ...).
        config: the run config as a plain dict.
        model: the networks (one module; its state dict is stored).
        optimizers: by phase name.
        schedulers: by phase name (objects with ``state_dict``), if any.
        step: optimisation steps done.
        epoch: current epoch (the next one to run when ``batch_in_epoch`` is 0).
        batch_in_epoch: batches of ``epoch`` already done.
        metrics: latest scalar metrics, for reference.
        extra: more plain entries for the trainer (class names, BEGAN's k_t ...).
    """
    state = {
        "format": format,
        "config": config,
        "model": model.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "schedulers": {k: s.state_dict() for k, s in (schedulers or {}).items()},
        "rng": rng_state(),
        "step": int(step),
        "epoch": int(epoch),
        "batch_in_epoch": int(batch_in_epoch),
        "metrics": dict(metrics or {}),
        **(extra or {}),
    }
    return save_checkpoint(path, state)


def read_training_state(path: str | Path, format: str, what: str) -> dict[str, Any]:
    """Load a training checkpoint, checking that it is one of ``format``.

    Args:
        path: the checkpoint.
        format: the expected format tag.
        what: the trainer in words, for the error (``an IPD-FER training checkpoint``).

    A resume reads the checkpoint through here, so the temporary file of a save
    that was killed is removed first (:func:`~facefactors.checkpoint.clean_orphans`).

    Raises:
        CheckpointError: missing, truncated, written by another trainer, or lacking
            an entry of the training layout (named).
    """
    clean_orphans(path)
    state = load_checkpoint(path)
    if state.get("format") != format:
        raise CheckpointError(f"Checkpoint {path} is not {what}.")
    for key, kind in LAYOUT.items():
        entry(state, key, path, kind)
    return state


def restore_training_state(
    state: dict[str, Any],
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: dict[str, Any] | None,
    path: str | Path,
) -> tuple[int, int, int]:
    """Load weights, optimisers, schedulers and RNGs; return (step, epoch, batch_in_epoch).

    Raises:
        CheckpointError: the weights, optimisers, schedulers or RNG states do not fit
            this model (each named).
    """
    load_weights(model, entry(state, "model", path, dict), path, "this model")
    parts = [(f"optimizers.{n}", o) for n, o in optimizers.items()]
    parts += [(f"schedulers.{n}", s) for n, s in (schedulers or {}).items()]
    for key, obj in parts:
        saved = entry(state, key, path, dict)
        try:
            obj.load_state_dict(saved)
        except Exception as exc:  # torch raises KeyError/ValueError/TypeError... for a bad dict
            raise CheckpointError(
                f"Checkpoint {path} entry '{key}' does not fit this run ({_first_line(exc)})."
            ) from None
    try:
        set_rng_state(entry(state, "rng", path, dict))
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(
            f"Checkpoint {path} entry 'rng' is not a saved RNG state ({_first_line(exc)})."
        ) from None
    return (
        entry(state, "step", path, int),
        entry(state, "epoch", path, int),
        entry(state, "batch_in_epoch", path, int),
    )


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name."""
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__
