"""Algorithm 1: each phase updates exactly its own parameters; E_id never changes."""

from __future__ import annotations

import contextlib
import copy
import inspect
import math

import pytest
import torch
import torch.nn.functional as F

import facefactors.ipd.phases as phases_module
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


def tiny(variant: str, schedule: str = "alternating") -> IPDConfig:
    cfg = IPDConfig()
    cfg.model.variant = variant
    cfg.train.schedule = schedule
    cfg.model.width = 4
    cfg.model.decoder_channels = 4
    cfg.data.size = 32
    cfg.train.lr = 1e-2
    return cfg


def setup(variant: str, schedule: str = "alternating"):
    torch.manual_seed(0)
    cfg = tiny(variant, schedule)
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


@pytest.mark.parametrize(
    ("variant", "schedule"),
    [
        ("ipd", "alternating"),
        ("id", "alternating"),
        ("baseline", "alternating"),
        ("ipd", "joint"),
        ("id", "joint"),
        ("baseline", "joint"),
    ],
)
def test_each_phase_updates_only_its_parameters(variant: str, schedule: str) -> None:
    model, phases, trainable, batch = setup(variant, schedule)
    expected_names = {
        ("ipd", "alternating"): ["cls", "disc", "gen"],
        ("id", "alternating"): ["cls", "disc", "gen"],
        ("baseline", "alternating"): ["cls"],
        ("ipd", "joint"): ["disc", "joint"],  # D first, then one step on the sum (Eq. 12)
        ("id", "joint"): ["disc", "joint"],
        ("baseline", "joint"): ["cls"],  # nothing to share: phase 1 alone
    }
    assert [p.name for p in phases] == expected_names[variant, schedule]
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


def _grads(loss: torch.Tensor, module: torch.nn.Module) -> list[torch.Tensor]:
    """d loss / d module's parameters, zeros where the loss does not reach a parameter."""
    params = list(module.parameters())
    got = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, got)]


@pytest.mark.parametrize("variant", ["ipd", "id"])
def test_joint_step_sends_each_objective_to_its_own_networks(variant: str) -> None:
    """Eq. 12: encoders along L_c + L'_G, classifiers along L_c only, G_dec along L'_G only."""
    model, phases, trainable, batch = setup(variant, "joint")
    run_phase(phases[0], batch, trainable, 1, contextlib.nullcontext)  # disc
    reference = copy.deepcopy(model)  # the networks as the joint step finds them
    d_grads = [p.grad.clone() for p in model.d.parameters()]  # left by the disc step
    run_phase(phases[1], batch, trainable, 1, contextlib.nullcontext)  # joint
    # D is fixed in the joint step: it adds nothing to D's gradient (nor to E_id's).
    for g, p in zip(d_grads, model.d.parameters()):
        assert torch.equal(g, p.grad)
    assert all(p.grad is None for p in model.e_id.parameters())
    # The two objectives of Algorithm 1, phases 1 and 3, on the same networks and batch.
    reference.requires_grad_(True)
    reference.e_id.requires_grad_(False)
    objectives = {p.name: p.loss_fn for p in build_phases(reference, tiny(variant))}
    l_c = objectives["cls"](batch)[0]  # L_c + β1 L_cos
    l_g = objectives["gen"](batch)[0]  # L'_G + β2 L_conf
    expected = {
        "c_exp": _grads(l_c, reference.c_exp),
        "dec": _grads(l_g, reference.dec),
        "e_exp": [
            a + b for a, b in zip(_grads(l_c, reference.e_exp), _grads(l_g, reference.e_exp))
        ],
    }
    if variant == "ipd":
        expected["c_p"] = _grads(l_c, reference.c_p)  # L_conf treats C_p as fixed
        pairs = zip(_grads(l_c, reference.e_pose), _grads(l_g, reference.e_pose))
        expected["e_pose"] = [a + b for a, b in pairs]
    # The decoder gets no L_c gradient (the two objectives do reach it differently).
    assert any(g.abs().sum() > 0 for g in expected["dec"])
    for name, grads in expected.items():
        for (k, p), g in zip(getattr(model, name).named_parameters(), grads):
            got = torch.zeros_like(p) if p.grad is None else p.grad
            torch.testing.assert_close(got, g, rtol=1e-4, atol=1e-6, msg=f"{name}.{k}")


def _spy_generator_losses(monkeypatch) -> list[inspect.BoundArguments]:
    """Record every call of phases.generator_losses, by parameter name."""
    calls: list[inspect.BoundArguments] = []
    real = phases_module.generator_losses
    signature = inspect.signature(real)

    def spy(*args, **kwargs):
        calls.append(signature.bind(*args, **kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(phases_module, "generator_losses", spy)
    return calls


@pytest.mark.parametrize("schedule", ["alternating", "joint"])
def test_phase3_feeds_each_fake_to_its_own_loss(monkeypatch, schedule: str) -> None:
    """D(x̂_{i-p}) meets L_fneu, D(x̂_{i-p-e}) L_fexp, N of each fake L_id, C_p(f_exp) L_conf."""
    model, phases, _, b = setup("ipd", schedule)
    calls = _spy_generator_losses(monkeypatch)
    with torch.no_grad():
        phases[-1].loss_fn(b)  # gen, or joint
        (call,) = calls
        got = call.arguments
        f_exp, f_pose = model.e_exp(b.x), model.e_pose(b.x)
        x_ip = model.dec(b.f_id + f_pose)  # the decoder normalises per image
        x_ipe = model.dec(b.f_id + f_pose + f_exp)
        model.d.eval()  # D judges fakes in eval mode
        expected = {
            "x": b.x,
            "y": b.y,
            "x_ip": x_ip,
            "x_ipe": x_ipe,
            "n_x": b.f_id,
            "n_ip": model.identity(x_ip),
            "n_ipe": model.identity(x_ipe),
            "d_ip": model.d(x_ip),
            "d_ipe": model.d(x_ipe),
            "conf_logits": model.c_p(f_exp),
        }
        # The halves are distinguishable, so a swap could not pass unnoticed.
        assert not torch.allclose(expected["d_ip"], expected["d_ipe"], atol=1e-4)
        assert not torch.allclose(expected["n_ip"], expected["n_ipe"], atol=1e-4)
        assert not torch.allclose(model.c_p(f_pose), expected["conf_logits"], atol=1e-4)
    assert got["neutral"] == model.neutral_index
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")  # no optimiser step here
@pytest.mark.parametrize("schedule", ["alternating", "joint"])
def test_decoder_lr_is_a_parameter_group_of_its_own(schedule: str) -> None:
    """train.decoder_lr moves G_dec only; every other parameter keeps train.lr.

    Catches the group being built from the wrong modules (the encoders at the
    decoder's rate) or decoder_lr being ignored, and a StepLR that skips the group.
    """
    cfg = tiny("ipd", schedule)
    cfg.train.decoder_lr = 5e-2
    model = IPDModel(cfg.model, 32)
    dec_ids = {id(p) for p in model.dec.parameters()}
    seen = set()
    for phase in build_phases(model, cfg):
        for group in phase.optimizer.param_groups:
            ids = {id(p) for p in group["params"]}
            want = 5e-2 if ids <= dec_ids else 1e-2
            assert ids <= dec_ids or not ids & dec_ids  # never a mixed group
            assert group["lr"] == pytest.approx(want)
            seen |= ids & dec_ids
        for _ in range(cfg.train.lr_step_epochs):  # the ×0.1 decay reaches the decoder too
            phase.scheduler.step()
        lrs = [g["lr"] for g in phase.optimizer.param_groups]
        assert lrs == pytest.approx([1e-3, 5e-3][: len(lrs)])
    assert seen == dec_ids  # G_dec is trained, in exactly one phase
    cfg.train.decoder_lr = None  # the paper: one rate for everything
    for phase in build_phases(model, cfg):
        assert {g["lr"] for g in phase.optimizer.param_groups} == {1e-2}
