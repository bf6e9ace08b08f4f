"""The two BEGAN phases of one tensorial training step, as data.

    1. disc: D ← ∂(L_real − k_t L_fake), fakes from the generator without grad;
       then k_{t+1} = clip(k_t + λ_k (γ L_real − L_fake), 0, 1).
    2. gen:  E, decoders, Q, B, fc heads ← ∂(E_x + constraints)    (D and V fixed)

Each :class:`~facefactors.training.phases.Phase` names the modules it updates
and has its own Adam (BEGAN's reference: lr 1e-4, β = (0.5, 0.999)); the shared
:func:`~facefactors.training.phases.run_phase` turns ``requires_grad`` on for
exactly that phase's parameters, so a backward pass never computes gradients for
the fixed networks, which still pass gradients through to their inputs (D and V
judge x̂ in the G step). The verifier V is
frozen once, in :func:`build_phases`, and belongs to no phase. D is updated
before G as in Algorithm 1 of BEGAN; both read the generator as the previous
G step left it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from facefactors.tensorial.batch import Batch
from facefactors.tensorial.config import TensorialConfig
from facefactors.tensorial.losses import Logs, discriminator_losses, generator_losses
from facefactors.tensorial.model import TensorialNets
from facefactors.training.phases import Phase, check_finite, run_phase

__all__ = ["BeganState", "Phase", "TensorialPhases", "build_phases", "check_finite", "run_phase"]


@dataclass
class BeganState:
    """BEGAN's equilibrium variable k_t, updated after every D step."""

    k: float = 0.0


@dataclass
class TensorialPhases:
    """The D and G phases, the BEGAN state they share and the modules they toggle."""

    disc: Phase
    gen: Phase
    state: BeganState
    trainable: list[nn.Module] = field(default_factory=list)

    def __iter__(self) -> Iterator[Phase]:
        yield self.disc
        yield self.gen


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and no parameter gradients, for good (the verifier V)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def build_phases(
    nets: TensorialNets,
    cfg: TensorialConfig,
    verifier: nn.Module | None = None,
    wrapped: TensorialNets | None = None,
) -> TensorialPhases:
    """The two phases with their optimisers.

    Args:
        nets: generator (tensorial model or Z_0) and BEGAN discriminator.
        cfg: losses (weights, γ, λ_k, k_0) and Adam settings.
        verifier: the face-verification network V of E_veri (frozen here), or None.
        wrapped: the same networks as each phase should call the one it trains
            (DDP wrappers under torchrun); the fixed network of a phase is always
            called raw, outside DDP. Default: ``nets``.
    """
    gen, disc = nets
    gen_train, disc_train = wrapped or nets
    lc, oc = cfg.loss, cfg.optim
    state = BeganState(k=lc.k0)
    if verifier is not None:
        freeze(verifier)

    def disc_loss(b: Batch) -> tuple[torch.Tensor, Logs]:
        with torch.no_grad():
            fake = gen(b.image).recon  # (B, 3, S, S), no graph into G
        return discriminator_losses(b.image, fake, disc_train, state.k, lc)

    def gen_loss(b: Batch) -> tuple[torch.Tensor, Logs]:
        out = gen_train(b.image)
        return generator_losses(out, b, lc, disc=disc, verifier=verifier)

    def store_k(logs: Logs) -> None:
        state.k = float(logs["began/k"])

    def adam(module: nn.Module) -> torch.optim.Optimizer:
        betas = (float(oc.betas[0]), float(oc.betas[1]))
        return torch.optim.Adam(
            module.parameters(), lr=oc.lr, betas=betas, weight_decay=oc.weight_decay
        )

    return TensorialPhases(
        disc=Phase("disc", [disc], disc_loss, adam(disc), after_step=store_k),
        gen=Phase("gen", [gen], gen_loss, adam(gen)),
        state=state,
        trainable=[gen, disc],
    )


def train_step(
    phases: TensorialPhases,
    batch: Batch,
    step: int = 0,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> Logs:
    """One D step then one G step on ``batch``; the merged logs."""
    logs: Logs = {}
    for phase in phases:
        logs |= run_phase(phase, batch, phases.trainable, step, autocast)
    return logs
