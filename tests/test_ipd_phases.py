"""Algorithm 1: each phase updates exactly its own parameters; E_id never changes."""

from __future__ import annotations

import contextlib
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from facefactors.errors import NonFiniteLossError
from facefactors.ipd.config import IPDConfig
from facefactors.ipd.model import IPDModel
from facefactors.ipd.phases import Batch, build_phases
from facefactors.training.phases import check_finite, run_phase
from ipd_helpers import one_thread  # noqa: F401 - autouse fixture

COMPONENTS = ("e_id", "e_pose", "e_exp", "dec", "d", "c_exp", "c_p")
# What each phase may update (Algorithm 1, lines 2-4).
UPDATES = {
    "cls": {"e_pose", "c_p", "e_exp", "c_exp"},
    "disc": {"d"},
    "gen": {"e_pose", "e_exp", "dec"},
    "joint": {"e_pose", "c_p", "e_exp", "c_exp", "dec"},  # train.schedule=joint (Eq. 12)
}


def setup(variant: str, schedule: str = "alternating"):
    torch.manual_seed(0)
    cfg = IPDConfig()
    cfg.model.variant = variant
    cfg.train.schedule = schedule
    cfg.model.width = 4
    cfg.model.decoder_channels = 4
    cfg.data.size = 32
    cfg.train.lr = 1e-2
    model = IPDModel(cfg.model, 32).train()
    phases = build_phases(model, cfg)
    trainable = list({id(m): m for p in phases for m in p.modules}.values())
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    y = torch.tensor([0, 1, 2, 3, 0, 6])
    f_id = model.identity(x).detach() if model.e_id is not None else None
    return model, phases, trainable, Batch(x, y, torch.tensor([0, 1, 2, 3, 4, 0]), f_id)


def snapshot(model: IPDModel) -> dict[str, dict[str, dict[str, torch.Tensor]]]:
    out = {}
    for name in COMPONENTS:
        m = getattr(model, name)
        if m is not None:
            out[name] = {
                "params": {k: v.detach().clone() for k, v in m.named_parameters()},
                "buffers": {k: v.detach().clone() for k, v in m.named_buffers()},
            }
    return out


def changed(before: dict, after: dict, kind: str) -> dict[str, bool]:
    return {
        name: any(not torch.equal(v, after[name][kind][k]) for k, v in before[name][kind].items())
        for name in before
    }


@pytest.mark.parametrize("variant", ["ipd", "id", "baseline"])
def test_each_phase_updates_only_its_parameters(variant: str) -> None:
    model, phases, trainable, batch = setup(variant)
    expected_names = {
        "ipd": ["cls", "disc", "gen"],
        "id": ["cls", "disc", "gen"],
        "baseline": ["cls"],
    }
    assert [p.name for p in phases] == expected_names[variant]
    start = snapshot(model)
    for phase in phases:
        before = snapshot(model)
        logs = run_phase(phase, batch, trainable, 0, contextlib.nullcontext)
        assert all(math.isfinite(float(v)) for v in logs.values())
        after = snapshot(model)
        moved = changed(before, after, "params")
        allowed = UPDATES[phase.name] & set(before)
        for name, did in moved.items():
            assert did == (name in allowed), f"phase {phase.name}: {name} changed={did}"
        # Every parameter of an updated component that got a gradient moved (some get an
        # exactly zero one at init: convs ahead of a zero-initialised residual BN).
        for name in allowed:
            for k, p in getattr(model, name).named_parameters():
                if p.grad is not None and p.grad.abs().sum() > 0:
                    assert not torch.equal(before[name]["params"][k], p.detach()), f"{name}.{k}"
        if phase.name in ("gen", "joint") and "d" in before:
            # D only judges the fakes: in eval mode, its BatchNorm statistics stay put.
            assert not changed(before, after, "buffers")["d"]
        assert all(p.grad is None for p in model.e_id.parameters()) if model.e_id else True
    end = snapshot(model)
    if "e_id" in start:
        assert not changed(start, end, "params")["e_id"]
        assert not changed(start, end, "buffers")["e_id"]
        assert not any(p.requires_grad for p in model.e_id.parameters())


def test_phase_optimizers_are_separate() -> None:
    _, phases, _, _ = setup("ipd")
    by_name = {
        p.name: {id(q) for g in p.optimizer.param_groups for q in g["params"]} for p in phases
    }
    shared = by_name["cls"] & by_name["gen"]  # E_pose and E_exp, with separate Adam states
    assert shared and not by_name["disc"] & (by_name["cls"] | by_name["gen"])
    assert all(p.optimizer is not q.optimizer for p in phases for q in phases if p is not q)


def test_nonfinite_loss_names_step_and_loss() -> None:
    logs = {"loss/g/recon": torch.tensor(1.0), "loss/g/id": torch.tensor(float("nan"))}
    with pytest.raises(NonFiniteLossError, match=r"loss/g/id.*step 17"):
        check_finite(logs, 17, "gen")
    check_finite({"loss/g/recon": torch.tensor(1.0)}, 1, "gen")


def test_nan_input_stops_before_any_update() -> None:
    model, phases, trainable, batch = setup("ipd")
    before = snapshot(model)
    bad = batch._replace(x=torch.full_like(batch.x, float("nan")))
    with pytest.raises(NonFiniteLossError, match="step 3"):
        run_phase(phases[0], bad, trainable, 3, contextlib.nullcontext)
    assert not any(changed(before, snapshot(model), "params").values())


def test_joint_schedule_keeps_c_p_out_of_the_confusion_gradient() -> None:
    model, phases, trainable, batch = setup("ipd", "joint")
    run_phase(phases[0], batch, trainable, 1, contextlib.nullcontext)  # disc
    reference = copy.deepcopy(model)
    reference.c_p.requires_grad_(True)
    run_phase(phases[1], batch, trainable, 1, contextlib.nullcontext)  # joint
    # C_p's gradient is that of L_pose alone: L_conf treats C_p as fixed.
    logits = reference.c_p(reference.e_pose(batch.x))
    expected = torch.autograd.grad(F.cross_entropy(logits, batch.y_pose), reference.c_p.weight)[0]
    torch.testing.assert_close(model.c_p.weight.grad, expected)
