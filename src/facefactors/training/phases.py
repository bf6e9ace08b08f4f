"""Training phases as data (stylegan2-ada style), shared by every adversarial trainer.

A :class:`Phase` names the modules it updates, the objective it minimises and
its own optimiser and scheduler. :func:`run_phase` turns ``requires_grad`` on for
exactly that phase's parameters, so a backward pass never computes gradients for
the fixed networks; fixed networks still pass gradients through to their inputs
(a discriminator judging fakes). A NaN or inf loss stops the run *before* any
update from it (:func:`check_finite`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from facefactors.errors import NonFiniteLossError

Logs = dict[str, torch.Tensor]


@dataclass
class Phase:
    """One optimisation step of a multi-phase algorithm.

    Attributes:
        name: short name (``cls``, ``disc``, ``gen`` ...), also the key of its
            optimiser and scheduler in checkpoints.
        modules: the modules whose parameters this phase updates.
        loss_fn: batch → (objective, logs of detached scalars).
        optimizer: over exactly those parameters.
        scheduler: its learning-rate schedule (stepped once per epoch), if any.
        after_step: called with the logs after the update (BEGAN's D phase stores
            k_{t+1} there), if any.
    """

    name: str
    modules: list[nn.Module]
    loss_fn: Callable[[Any], tuple[torch.Tensor, Logs]]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    after_step: Callable[[Logs], None] | None = None

    def parameters(self) -> Iterator[nn.Parameter]:
        for m in self.modules:
            yield from m.parameters()


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Temporarily put ``module`` in eval mode (restoring its previous mode)."""
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


def check_finite(logs: Logs, step: int, phase: str) -> None:
    """Raise NonFiniteLossError naming the first NaN/inf loss of ``logs``."""
    if not logs:
        return
    values = torch.stack([v.detach().float().reshape(()) for v in logs.values()])
    if bool(torch.isfinite(values).all()):
        return
    name = next(k for k, v in logs.items() if not torch.isfinite(v).all())
    raise NonFiniteLossError(
        f"Loss {name} became {float(logs[name].detach())} at step {step} (phase {phase}); "
        "training stopped and the last good checkpoint is kept."
    )


def trainable_modules(phases: list[Phase]) -> list[nn.Module]:
    """Every module some phase updates, once each, in first-seen order."""
    return list({id(m): m for p in phases for m in p.modules}.values())


def run_phase(
    phase: Phase,
    batch: Any,
    trainable: list[nn.Module],
    step: int = 0,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> Logs:
    """Run one phase: forward its objective, backward, optimiser step.

    Args:
        phase: the phase.
        batch: the prepared batch (whatever ``phase.loss_fn`` takes).
        trainable: every module updated by any phase (their grad flags are toggled).
        step: the 1-based number of this step (as in metrics.jsonl), for error messages.
        autocast: returns the autocast context (bf16 or a no-op).

    Returns:
        The phase's logs (detached scalars).

    Raises:
        NonFiniteLossError: a loss is NaN or inf (checked before any update).
    """
    own = {id(p) for p in phase.parameters()}
    for m in trainable:
        for p in m.parameters():
            p.requires_grad_(id(p) in own)
    phase.optimizer.zero_grad(set_to_none=True)
    with autocast():
        total, logs = phase.loss_fn(batch)
    check_finite(logs, step, phase.name)
    if total.requires_grad:  # every term switched off leaves nothing to learn
        total.backward()
        phase.optimizer.step()
    if phase.after_step is not None:
        phase.after_step(logs)
    return logs
