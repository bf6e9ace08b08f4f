"""Algorithm 1 as data: the three phases of one IPD-FER training step.

Each :class:`Phase` names the parameters it updates, the objective it minimises
and its own Adam optimiser. :func:`run_phase` turns ``requires_grad`` on for
exactly that phase's parameters (stylegan2-ada style), so a backward pass never
even computes gradients for the fixed networks; fixed networks still pass
gradients through to their inputs (D and N judge the fakes in phase 3).

    1. cls:  E_pose, C_p, E_exp, C_exp ← ∂(L_c + β1 L_cos)        (D, G_dec fixed)
    2. disc: D ← ∂L_rexp                                          (G, C fixed)
    3. gen:  E_pose, E_exp, G_dec ← ∂(L'_G + β2 L_conf)            (D, C_exp, C_p fixed)

E_pose and E_exp appear in phases 1 and 3 with *separate* Adam optimisers, as
Algorithm 1 reads (two gradient-descent steps on two objectives): the
objectives have different scales and gradient statistics (λ4 = 10 on a pixel
L1 plus L_id versus cross-entropies), and one shared second-moment estimate
would let the larger one shrink the other's steps. Phase 3 re-encodes x with the encoders
as phase 1 left them, exactly as Algorithm 1 reads. D is put in eval mode while
it judges fakes in phase 3: "fixed" then also means its BatchNorm statistics
do not drift towards fake images.

The ``baseline`` variant has phase 1 only (L_exp); ``id`` has no pose terms.

``train.schedule: joint`` is a cheaper reading of the same objectives (Eq. 12):
D is updated first, then a single encoder pass feeds both L_c + β1 L_cos and
L'_G + β2 L_conf, and one Adam step moves E_pose and E_exp along the sum, C_p
and C_exp along L_c + β1 L_cos only, G_dec along L'_G only. It saves the second
encoder pass of phase 3 but evaluates phase 3's encoder gradient before, not
after, phase 1's update.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from facefactors.ipd.config import IPDConfig
from facefactors.ipd.losses import (
    Logs,
    classifier_losses,
    discriminator_losses,
    generator_losses,
)
from facefactors.ipd.model import IPDModel
from facefactors.training.distributed import DistInfo, broadcast_module, ddp_wrap
from facefactors.training.phases import Phase, eval_mode


class Batch(NamedTuple):
    """One training batch on the device.

    Attributes:
        x: (B, 3, H, W) images in [-1, 1].
        y: (B,) expression labels in model class order (K = extra neutral).
        y_pose: (B,) pose bins.
        f_id: (B, D) E_id(x), computed once without grad; it is also N(x) of L_id.
        x_neutral: (B, 3, H, W) true neutral faces (``loss.true_neutral``), else None.
    """

    x: torch.Tensor
    y: torch.Tensor
    y_pose: torch.Tensor
    f_id: torch.Tensor | None
    x_neutral: torch.Tensor | None = None


class Nets(NamedTuple):
    """The trainable modules as called in forward passes (DDP-wrapped when distributed)."""

    e_exp: nn.Module
    c_exp: nn.Module
    e_pose: nn.Module | None
    c_p: nn.Module | None
    dec: nn.Module | None
    d: nn.Module | None


def own_nets(model: IPDModel) -> Nets:
    """The model's own modules, for single-process training."""
    return Nets(model.e_exp, model.c_exp, model.e_pose, model.c_p, model.dec, model.d)


def wrap_nets(model: IPDModel, info: DistInfo) -> Nets:
    """The trainable networks, each in its own DDP wrapper when distributed.

    DDP broadcasts the wrapped networks' weights from rank 0; E_id, never wrapped,
    is broadcast here so that every process has the same frozen identity network.
    """
    broadcast_module(model.e_id, info)
    return Nets(*(ddp_wrap(m, info) for m in own_nets(model)))


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    valid = (y >= 0) & (y < logits.shape[1])
    hits = (logits.argmax(1) == y) & valid
    return (hits.sum() / valid.sum().clamp(min=1)).detach().float()


def build_phases(model: IPDModel, cfg: IPDConfig, nets: Nets | None = None) -> list[Phase]:
    """The phases for ``model``'s variant and ``cfg.train.schedule``, each with its optimiser.

    Args:
        model: the networks (frozen calls use these directly).
        cfg: full config (loss weights, schedule, Adam and StepLR settings).
        nets: trainable modules to call; defaults to ``model``'s own (no DDP).
    """
    nets = nets or own_nets(model)
    lc, t = cfg.loss, cfg.train
    c = model.neutral_index

    def encode(b: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        f_pose = nets.e_pose(b.x) if nets.e_pose is not None else None
        return nets.e_exp(b.x), f_pose  # (B, D) each

    def cls_terms(b: Batch, f_exp: torch.Tensor, f_pose: torch.Tensor | None):
        exp_logits = nets.c_exp(f_exp)  # (B, K)
        pose_logits = nets.c_p(f_pose) if f_pose is not None else None  # (B, K_P)
        total, logs = classifier_losses(
            exp_logits, b.y, lc, pose_logits, b.y_pose, f_id=b.f_id, f_exp=f_exp
        )
        logs["acc/c/exp"] = _accuracy(exp_logits, b.y)
        if pose_logits is not None:
            logs["acc/c/pose"] = _accuracy(pose_logits, b.y_pose)
        return total, logs

    def gen_terms(b: Batch, f_exp: torch.Tensor, f_pose: torch.Tensor | None):
        n = b.x.shape[0]
        f_ip = b.f_id if f_pose is None else b.f_id + f_pose  # f_{i-p}
        f_ipe = f_ip + f_exp  # f_{i-p-e}
        fakes = nets.dec(torch.cat([f_ip, f_ipe]))  # (2B, 3, H, W): one decoder call
        n_fake = d_fake = conf = None
        if lc.active("id"):
            n_fake = model.identity(fakes)  # frozen N: gradient flows to the fakes only
        if model.d is not None and (lc.active("fneu") or lc.active("fexp")):
            with eval_mode(model.d):
                d_fake = model.d(fakes)
        if model.c_p is not None and lc.active("conf"):
            # C_p is fixed for L_conf: detached weights keep it out of this gradient.
            conf = F.linear(f_exp, model.c_p.weight.detach(), model.c_p.bias.detach())
        return generator_losses(
            b.x,
            b.y,
            c,
            lc,
            fakes[:n],
            fakes[n:],
            n_x=b.f_id,
            n_ip=None if n_fake is None else n_fake[:n],
            n_ipe=None if n_fake is None else n_fake[n:],
            d_ip=None if d_fake is None else d_fake[:n],
            d_ipe=None if d_fake is None else d_fake[n:],
            conf_logits=conf,
            x_neutral=b.x_neutral,
        )

    def cls_loss(b: Batch) -> tuple[torch.Tensor, Logs]:
        return cls_terms(b, *encode(b))

    def disc_loss(b: Batch) -> tuple[torch.Tensor, Logs]:
        logits = nets.d(b.x)  # (B, K or K+1)
        total, logs = discriminator_losses(logits, b.y)
        logs["acc/d/real"] = _accuracy(logits, b.y)
        return total, logs

    def gen_loss(b: Batch) -> tuple[torch.Tensor, Logs]:
        return gen_terms(b, *encode(b))  # re-encoded with the encoders phase 1 left

    def joint_loss(b: Batch) -> tuple[torch.Tensor, Logs]:
        f_exp, f_pose = encode(b)  # one encoder pass serves both objectives
        total_c, logs = cls_terms(b, f_exp, f_pose)
        total_g, logs_g = gen_terms(b, f_exp, f_pose)
        return total_c + total_g, logs | logs_g

    classifiers = [model.e_pose, model.c_p, model.e_exp, model.c_exp]
    disc = [("disc", [model.d], disc_loss)] if model.d is not None else []
    if model.variant == "baseline":
        specs = [("cls", classifiers, cls_loss)]
    elif t.schedule == "joint":
        specs = [*disc, ("joint", [*classifiers, model.dec], joint_loss)]
    else:
        specs = [("cls", classifiers, cls_loss), *disc]
        specs.append(("gen", [model.e_pose, model.e_exp, model.dec], gen_loss))
    phases = []
    for name, modules, fn in specs:
        mods = [m for m in modules if m is not None]
        # G_dec in a group of its own only when it has its own rate, so that checkpoints
        # of one-rate runs (the paper's setting) keep their one-group optimiser state.
        own = t.decoder_lr is not None and model.dec is not None and model.dec in mods
        groups = [{"params": [p for m in mods if not (own and m is model.dec)
                              for p in m.parameters()]}]  # fmt: skip
        if own:
            groups.append({"params": list(model.dec.parameters()), "lr": t.decoder_lr})
        opt = torch.optim.Adam(groups, lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=t.lr_step_epochs, gamma=t.lr_gamma)
        phases.append(Phase(name, mods, fn, opt, sched))
    return phases
