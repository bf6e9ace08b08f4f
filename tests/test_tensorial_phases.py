"""The D and G phases touch only their own parameters; V stays frozen; synthetic batches train."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from facefactors.errors import NonFiniteLossError
from facefactors.synth.dataset import SynthFaces
from facefactors.tensorial import config as C
from facefactors.tensorial.batch import Batch
from facefactors.tensorial.losses import began_update
from facefactors.tensorial.model import build_model
from facefactors.tensorial.phases import build_phases, run_phase, train_step
from test_tensorial_model import tiny


def _setup(loss: C.TensorialLossConfig | None = None, variant: str = "tensorial"):
    torch.manual_seed(0)
    cfg = C.TensorialConfig(
        model=tiny(variant=variant),
        loss=loss or C.TensorialLossConfig(),
    )
    nets = build_model(cfg.model)
    verifier = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(2), nn.Flatten())
    return nets, verifier, build_phases(nets, cfg, verifier)


def _batch(n=2):
    g = torch.Generator().manual_seed(1)
    return Batch(
        image=torch.rand(n, 3, 32, 32, generator=g) * 2 - 1,
        rotation=torch.eye(3).expand(n, 3, 3),
        exp_coeffs=torch.rand(n, 36, generator=g),
        id_coeffs=torch.randn(n, 47, generator=g),
        vertices=torch.randn(n, 522, 3, generator=g) * 50,
        normals=nn.functional.normalize(torch.randn(n, 3, 32, 32, generator=g), dim=1),
        sh=torch.randn(n, 3, 9, generator=g),
        mask=torch.ones(n, 1, 32, 32),
        yaw=torch.tensor([2.0, 50.0])[:n],
    )


def _snap(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: nn.Module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


def test_disc_step_changes_only_the_discriminator_and_updates_k():
    (gen, disc), ver, phases = _setup()
    g0, d0, v0 = _snap(gen), _snap(disc), _snap(ver)
    assert phases.state.k == 0.0
    logs = run_phase(phases.disc, _batch(), phases.trainable, step=1)
    assert _changed(g0, gen) == set()
    assert _changed(v0, ver) == set()
    assert len(_changed(d0, disc)) == len(d0)  # every D tensor moved
    want = began_update(0.0, float(logs["loss/d/real"]), float(logs["loss/d/fake"]), 0.5, 1e-3)
    assert phases.state.k == pytest.approx(want)
    assert float(logs["loss/d/total"]) == pytest.approx(float(logs["loss/d/real"]))  # k_0 = 0


def test_gen_step_changes_no_discriminator_or_verifier_parameter():
    (gen, disc), ver, phases = _setup()
    g0, d0, v0 = _snap(gen), _snap(disc), _snap(ver)
    logs = run_phase(phases.gen, _batch(), phases.trainable, step=1)
    assert _changed(d0, disc) == set()
    assert _changed(v0, ver) == set()
    assert not ver.training and not any(p.requires_grad for p in ver.parameters())
    assert all(p.grad is None for p in disc.parameters())
    assert len(_changed(g0, gen)) > 0.9 * len(g0)
    assert "loss/g/adv" in logs and "loss/g/veri" in logs


@pytest.mark.parametrize("term", ["adv", "veri"])
def test_gradients_flow_through_the_fixed_networks(term):
    """With only E_adv (or E_veri) on, G still learns: D and V pass gradients to x̂."""
    names = [
        f.name[4:] for f in dataclasses.fields(C.TensorialLossConfig) if f.name.startswith("use_")
    ]
    only = C.TensorialLossConfig(**{f"use_{n}": n == term for n in names})
    (gen, disc), ver, phases = _setup(only)
    g0 = _snap(gen)
    logs = run_phase(phases.gen, _batch(), phases.trainable)
    assert set(logs) == {f"loss/g/{term}", "loss/g/total", "stat/g/frontal"}
    assert _changed(g0, gen)


def test_phase_refuses_non_finite_losses():
    (gen, _), _, phases = _setup()
    g0 = _snap(gen)
    bad = _batch()
    bad.exp_coeffs = torch.full_like(bad.exp_coeffs, float("nan"))
    with pytest.raises(NonFiniteLossError, match="loss/g/exp"):
        run_phase(phases.gen, bad, phases.trainable, step=7)
    assert _changed(g0, gen) == set()


def test_z0_baseline_trains_with_the_same_phases():
    (gen, disc), _, phases = _setup(variant="z0")
    logs = train_step(phases, _batch())
    assert {"loss/d/total", "loss/g/recon", "loss/g/adv", "loss/g/veri"} <= set(logs)
    assert "loss/g/pose" not in logs


def test_train_step_on_synthetic_faces():
    ds = SynthFaces(split="train", identities=2, per_identity=2, size=32, seed=0)
    batch = Batch.from_synth(ds.batch([0, 1, 2, 3]))
    assert batch.vertices.shape == (4, 522, 3) and batch.sh.shape == (4, 3, 9)
    assert batch.id_coeffs.shape[1] == C.SYNTH_ID_COEFFS
    assert batch.exp_coeffs.shape[1] == C.SYNTH_EXP_COEFFS
    _, _, phases = _setup()
    for step in (1, 2):
        logs = train_step(phases, batch, step)
    assert all(torch.isfinite(v).all() for v in logs.values())
    assert 0.0 <= phases.state.k <= 1.0
    assert {"loss/g/shape3d", "loss/g/light", "loss/g/frontal", "began/M"} <= set(logs)
