"""The IPD-FER trainer: run folder, exact resume, bad checkpoints, NaN stops."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from facefactors.config import read_yaml
from facefactors.errors import CheckpointError, ConfigError, NonFiniteLossError
from facefactors.export.classifier import load_expression_model
from facefactors.ipd.train import read_checkpoint as read_training_state
from facefactors.ipd.train import train
from facefactors.training.run import LABEL_BAND
from ipd_helpers import one_thread, random_bundle, tiny_config  # noqa: F401 - autouse fixture


def metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def step_losses(run) -> dict[int, dict]:
    return {m["step"]: m for m in metrics(run) if "loss/g/total" in m}


def test_resume_gives_the_same_next_step_loss(tmp_path) -> None:
    """Bit-exact resume, here across a learning-rate decay (StepLR ×0.1 after each epoch)."""
    data = random_bundle(12)  # 3 steps per epoch at batch 4

    def cfg(**kw):
        return tiny_config(epochs=3, lr_step_epochs=1, **kw)

    full = train(cfg(), tmp_path / "full", data=data)
    assert full.step == 9 and full.epoch == 3
    # Stop mid-epoch 2 (step 4), after the first decay, then continue through the second.
    part = train(cfg(max_steps=4), tmp_path / "part", data=data)
    assert part.step == 4
    state = read_training_state(tmp_path / "part" / "checkpoints" / "last.pt")
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (4, 1, 1)
    resumed = train(cfg(), tmp_path / "part", resume=True, data=data)
    assert resumed.step == 9
    a, b = step_losses(tmp_path / "full"), step_losses(tmp_path / "part")
    assert sorted(b) == list(range(1, 10))  # no duplicated lines after the resume
    for step in range(5, 10):
        for key in ("loss/c/total", "loss/d/rexp", "loss/g/total", "loss/g/recon"):
            assert a[step][key] == b[step][key], (step, key)
    # The logged learning rate: 1e-3, then ×0.1 per epoch, the same with and without a stop.
    lr = {step: m["lr"] for step, m in a.items()}
    assert {step: m["lr"] for step, m in b.items()} == lr
    assert [lr[s] for s in range(1, 10)] == pytest.approx([1e-3] * 3 + [1e-4] * 3 + [1e-5] * 3)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    # Every phase's scheduler and optimiser settings end where the uninterrupted run's do.
    end_a = read_training_state(tmp_path / "full" / "checkpoints" / "last.pt")
    end_b = read_training_state(tmp_path / "part" / "checkpoints" / "last.pt")
    assert end_a["schedulers"] == end_b["schedulers"]
    for name, opt in end_a["optimizers"].items():
        assert opt["param_groups"] == end_b["optimizers"][name]["param_groups"], name


def test_run_folder_contents(tmp_path) -> None:
    cfg = tiny_config(epochs=1, sample_every=2, sample_count=2)
    result = train(cfg, tmp_path / "run", data=random_bundle(12))
    run = tmp_path / "run"
    saved = read_yaml(run / "config.yaml")
    assert saved["model"]["variant"] == "ipd" and saved["model"]["classes"][0] == "neutral"
    lines = metrics(run)
    first = lines[0]
    assert {"step", "epoch", "lr", "loss/c/exp", "loss/c/pose", "loss/c/cos", "loss/d/rexp"} <= set(
        first
    )
    assert {"loss/g/fneu", "loss/g/fexp", "loss/g/id", "loss/g/recon", "loss/g/conf"} <= set(first)
    assert any("val/acc" in m for m in lines)
    assert (run / "samples" / "step_000002.png").is_file()
    from PIL import Image

    grid = Image.open(run / "samples" / "step_000002.png")
    # 4 columns × 2 rows of 32 px + 2 px padding, under a band naming the columns
    assert grid.size == (4 * 34 + 2, LABEL_BAND + 2 * 34 + 2)
    band = np.asarray(grid.convert("L"))[:LABEL_BAND]  # real | id | id+pose | id+pose+exp
    assert all((band[:, 2 + j * 34 : 34 + j * 34] < 128).any() for j in range(4))
    assert read_training_state(run / "checkpoints" / "last.pt")["step"] == result.step == 3
    net = load_expression_model(run / "model.pt")
    x = torch.rand(2, 3, 32, 32)
    result.model.eval()
    torch.testing.assert_close(net(x), result.model.classify(x))
    torch.testing.assert_close(load_expression_model(run / "checkpoints" / "last.pt")(x), net(x))


def test_existing_run_needs_resume_and_truncated_checkpoint_is_clear(tmp_path) -> None:
    run = tmp_path / "run"
    train(tiny_config("baseline", epochs=1), run, data=random_bundle(8))
    with pytest.raises(ConfigError, match="--resume"):
        train(tiny_config("baseline", epochs=1), run, data=random_bundle(8))
    ckpt = run / "checkpoints" / "last.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"last\.pt.*truncated"):
        train(tiny_config("baseline", epochs=2), run, resume=True, data=random_bundle(8))
    with pytest.raises(CheckpointError, match="does not exist"):
        train(tiny_config("baseline"), tmp_path / "none", resume=True, data=random_bundle(8))


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path) -> None:
    run = tmp_path / "run"
    train(tiny_config("id", epochs=1), run, data=random_bundle(8))
    good = read_training_state(run / "checkpoints" / "last.pt")
    poisoned = random_bundle(8)
    for item in poisoned.train.base:
        item["image"][:, 0, 0] = float("nan")
    # Steps count from 1 as in metrics.jsonl: the first step after the checkpoint is 3.
    with pytest.raises(NonFiniteLossError, match=r"at step 3 "):
        train(tiny_config("id", epochs=2), run, resume=True, data=poisoned)
    kept = read_training_state(run / "checkpoints" / "last.pt")
    assert kept["step"] == good["step"] == 2
    for k, v in good["model"].items():
        assert torch.equal(v, kept["model"][k]), k


def test_short_synthetic_run_lowers_training_losses(tmp_path) -> None:
    cfg = tiny_config("ipd", epochs=8, lr=2e-3, log_every=5)
    cfg.model.width = 8
    cfg.train.batch_size = 8
    cfg.data.synth_identities = 6
    cfg.data.synth_per_identity = 8
    cfg.data.synth_val_identities = 1
    cfg.data.synth_cache = str(tmp_path / "cache")
    result = train(cfg, tmp_path / "run")
    assert result.step == 8 * 5  # 5 training identities × 8 faces / batch 8 = 5 steps per epoch
    logged = [m for m in metrics(tmp_path / "run") if "loss/c/exp" in m]
    first, last = logged[0], logged[-1]  # means over steps 1-5 and 36-40
    assert last["loss/c/exp"] < first["loss/c/exp"] - 0.1
    assert last["loss/d/rexp"] < first["loss/d/rexp"] - 0.1
    assert last["loss/c/pose"] < 0.85 * first["loss/c/pose"]
    assert last["loss/g/recon"] < 0.8 * first["loss/g/recon"]
    assert any(p.name.startswith("synth-") for p in (tmp_path / "cache").iterdir())
    # Grids show the true neutral and frontal-neutral faces: 4 + 2 columns of 32 px.
    from PIL import Image

    grid = Image.open(tmp_path / "run" / "samples" / "step_000040.png")
    assert grid.size[0] == 6 * 34 + 2
    band = np.asarray(grid.convert("L"))[:LABEL_BAND]  # ... | neutral | frontal_neutral
    assert (band[:, 2 + 5 * 34 :] < 128).any()


def test_no_pose_mode_with_extra_neutral(tmp_path) -> None:
    """The CK+ setting: ID-FER, a class set without neutral, neutral faces as references."""
    cfg = tiny_config("id", epochs=1)
    cfg.model.classes = ["happy", "sad", "surprise"]
    cfg.data.synth_identities = 3
    cfg.data.synth_per_identity = 8
    cfg.data.synth_val_identities = 1
    from facefactors.ipd.data import build_datasets

    data = build_datasets(cfg.data, cfg.model.classes)
    labels = sorted({data.train[i]["expression"] for i in range(len(data.train))})
    assert labels == [0, 1, 2, 3]  # 3 = neutral, D's extra output
    result = train(cfg, tmp_path / "run", data=data)
    assert result.model.e_pose is None and result.model.neutral_index == 3
    assert result.model.d.head.out_features == 4 and result.model.c_exp.out_features == 3
    assert all(math.isfinite(v) for v in result.metrics.values())


@pytest.mark.parametrize(
    ("schedule", "phases"), [("alternating", {"cls", "gen"}), ("joint", {"joint"})]
)
def test_no_discriminator_ablation_has_no_phase_2(tmp_path, schedule, phases) -> None:
    """``loss.use_discriminator: false`` (Table 9): no D, no disc phase, no L_fneu/L_fexp."""
    cfg = tiny_config("ipd", epochs=1, schedule=schedule)
    cfg.loss.use_discriminator = False
    result = train(cfg, tmp_path / "run", data=random_bundle(8))
    assert result.step == 2 and result.model.d is None
    state = read_training_state(tmp_path / "run" / "checkpoints" / "last.pt")
    assert set(state["optimizers"]) == set(state["schedulers"]) == phases
    assert not any(k.startswith("d.") for k in state["model"])
    lines = [m for m in metrics(tmp_path / "run") if "loss/g/total" in m]
    assert len(lines) == 2
    keys = set().union(*lines)
    assert not [k for k in keys if k.startswith(("loss/d/", "acc/d/", "loss/g/f"))]
    assert {"loss/c/exp", "loss/c/pose", "loss/g/recon", "loss/g/id", "loss/g/conf"} <= keys
    assert all(math.isfinite(v) for m in lines for v in m.values())


def test_bf16_autocast_runs_the_ipd_step(tmp_path, monkeypatch) -> None:
    """``train.bf16``: the forward passes of every network run in bfloat16, losses stay finite."""
    import facefactors.ipd.train as ipd_train

    dtypes: dict[str, set] = {}
    build = ipd_train.build_model

    def build_with_hooks(cfg):
        model = build(cfg)
        for name in ("e_exp.conv1", "e_pose.conv1", "c_exp", "dec.to_rgb", "d.head"):
            model.get_submodule(name).register_forward_hook(
                lambda _m, _i, out, name=name: dtypes.setdefault(name, set()).add(out.dtype)
            )
        return model

    monkeypatch.setattr(ipd_train, "build_model", build_with_hooks)
    cfg = tiny_config("ipd", epochs=1, bf16=True, sample_count=0)  # no (fp32) sample grids
    result = train(cfg, tmp_path / "run", data=random_bundle(8))
    assert result.step == 2
    assert dtypes == dict.fromkeys(
        ["e_exp.conv1", "e_pose.conv1", "c_exp", "dec.to_rgb", "d.head"], {torch.bfloat16}
    )
    lines = [m for m in metrics(tmp_path / "run") if "loss/g/total" in m]
    assert len(lines) == 2 and {"loss/c/total", "loss/d/total"} <= set(lines[0])
    assert all(math.isfinite(v) for m in lines for v in m.values())
    assert all(p.dtype == torch.float32 for p in result.model.parameters())  # fp32 master weights
