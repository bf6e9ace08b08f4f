"""How long a run trains, in optimiser steps: epochs, ``min_steps`` and ``max_steps``.

An epoch count alone does not scale with the data: five epochs are 270 steps on
the synthetic quick set but 25 on 171 real training images. So a trainer's
budget is

- ``epochs`` passes over the training split, raised to
  ``ceil(min_steps / steps_per_epoch)`` when that is more (the learning-rate
  decay points, in epochs, are stretched by the same factor so the schedule keeps
  its shape), and
- cut at ``max_steps`` when that comes first.

``min_steps = max_steps = N`` trains exactly N steps. A run of fewer than
:data:`FEW_STEPS` steps gets a warning, and its report lists the steps trained
and whether ``max_steps`` stopped it early (:func:`training_caveat`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# Below this many optimiser steps a run is warned about (a few hundred: the quick
# presets' min_steps, and about what their synthetic set trains in 5 epochs).
FEW_STEPS = 250


def stretch_epochs(
    epochs: int, lr_step_epochs: int, steps_per_epoch: int, min_steps: int | None
) -> tuple[int, int]:
    """``(epochs, lr_step_epochs)`` raised so the run makes at least ``min_steps`` steps.

    Unchanged when ``min_steps`` is None or already met; otherwise both are scaled
    by the same factor (the decay step rounded, at least 1).
    """
    if min_steps is None or epochs * steps_per_epoch >= min_steps:
        return epochs, lr_step_epochs
    needed = math.ceil(min_steps / steps_per_epoch)
    return needed, max(1, round(lr_step_epochs * needed / epochs))


def budget_warning(total: int, epochs: int, steps_per_epoch: int, where: str) -> str | None:
    """A warning sentence when a run makes fewer than :data:`FEW_STEPS` steps, else None."""
    if total >= FEW_STEPS:
        return None
    return (
        f"{where} trains {total} optimiser steps ({epochs} epoch(s) of {steps_per_epoch} "
        f"steps, train.max_steps included), fewer than {FEW_STEPS}: the model is likely "
        "undertrained; set train.min_steps (or more train.epochs) for a longer run."
    )


def training_facts(step: int, epoch: int, train_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What a finished run trained: steps, completed epochs, and an early stop by max_steps.

    Args:
        step, epoch: the run's last step and completed epochs (checkpoint or result).
        train_cfg: the run's saved ``train`` section (epochs after any stretching).
    """
    planned = int(train_cfg["epochs"])
    max_steps = train_cfg.get("max_steps")
    return {
        "steps": int(step),
        "epochs": int(epoch),
        "planned_epochs": planned,
        "max_steps": max_steps,
        "stopped_by_max_steps": bool(max_steps is not None and epoch < planned),
    }


def training_caveat(method: str, facts: Sequence[Mapping[str, Any]]) -> str:
    """One report sentence on the training length of a method's runs (never empty)."""
    steps = sorted({int(f["steps"]) for f in facts})
    span = str(steps[0]) if len(steps) == 1 else f"{steps[0]}–{steps[-1]}"
    epochs = sorted({int(f["epochs"]) for f in facts})
    epoch_span = str(epochs[0]) if len(epochs) == 1 else f"{epochs[0]}–{epochs[-1]}"
    text = f"{method}: each of {len(facts)} run(s) trained {span} optimiser steps ({epoch_span} "
    text += "completed epoch(s))"
    stopped = [f for f in facts if f["stopped_by_max_steps"]]
    if stopped:
        f = stopped[0]
        text += (
            f"; {len(stopped)} stopped early by train.max_steps={f['max_steps']}, before the "
            f"{f['planned_epochs']} planned epoch(s)"
        )
    if steps[0] < FEW_STEPS:
        text += f"; fewer than {FEW_STEPS} steps: likely undertrained"
    return text + "."
