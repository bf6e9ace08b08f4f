"""The tensorial trainer: run folder, exact resume (BEGAN's k_t too), NaN stop, bad files."""

from __future__ import annotations

import json

import pytest
import torch

from facefactors.checkpoint import load_checkpoint
from facefactors.errors import CheckpointError, ConfigError, NonFiniteLossError
from facefactors.tensorial.checkpoints import load_generator, read_checkpoint
from facefactors.tensorial.config import preset
from facefactors.tensorial.data import TensorialData, build_data
from facefactors.tensorial.model import TensorialModel, Z0AutoEncoder
from facefactors.tensorial.train import GRID_COLUMNS, train

TINY = [
    "model.enc_channels=[8, 8, 8]", "model.code_dim=16", "model.z_b=8", "model.z_m=8",
    "model.k_id=6", "model.k_exp=3", "model.disc_channels=[8, 8, 8]", "model.disc_code=8",
    "data.synth_identities=5", "data.synth_per_identity=4", "data.synth_val_identities=1",
    "train.batch_size=4", "train.epochs=2", "train.log_every=2", "train.threads=1",
    "train.device=cpu",
]  # fmt: skip


@pytest.fixture(scope="module")
def data() -> TensorialData:
    return build_data(preset("tensorial_synth_quick", TINY))


def _cfg(*extra: str):
    return preset("tensorial_synth_quick", TINY + list(extra))


def _lines(path) -> list[dict]:
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time/step_s"} for r in rows]


def test_run_folder_holds_everything(tmp_path, data) -> None:
    res = train(_cfg(), tmp_path, data=data)
    assert res.step == 8 and res.epoch == 2  # 16 training faces / 4 per step, 2 epochs
    names = {k for r in _lines(tmp_path / "metrics.jsonl") for k in r}
    for key in ("loss/g/recon", "loss/g/adv", "loss/g/pose", "loss/g/frontal", "loss/g/total",
                "loss/d/real", "loss/d/fake", "began/k", "began/M", "val/psnr"):  # fmt: skip
        assert key in names, key
    assert (tmp_path / "config.yaml").read_text().startswith("method: tensorial")
    grid = sorted((tmp_path / "samples").glob("step_*.png"))
    from PIL import Image

    w = Image.open(grid[-1]).size[0]
    assert w == len(GRID_COLUMNS) * (32 + 2) + 2  # one column per map
    gen, cfg = load_generator(tmp_path / "model.pt")
    assert isinstance(gen, TensorialModel) and cfg.model.k_id == 6
    x = data.val.columns["image"][:2]
    torch.testing.assert_close(gen(x).recon, res.generator.eval()(x).recon)
    with pytest.raises(ConfigError, match="--resume"):
        train(_cfg(), tmp_path, data=data)


def test_resume_is_bit_for_bit_with_began_k(tmp_path, data) -> None:
    k0 = "loss.k0=0.5"  # from 0, k_t may sit clipped at 0 for the few steps of a test
    whole = train(_cfg(k0), tmp_path / "whole", data=data)
    train(_cfg(k0, "train.max_steps=6"), tmp_path / "cut", data=data)  # inside epoch 2
    cut = read_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert cut["step"] == 6 and 0.0 <= cut["began_k"] <= 1.0
    torch.manual_seed(99)  # a new process starts with other RNG states
    resumed = train(_cfg(k0), tmp_path / "cut", resume=True, data=data)
    a = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert a["began_k"] == b["began_k"] != 0.5  # k_t moved, and was carried across the cut
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    keep = [r for r in _lines(tmp_path / "whole" / "metrics.jsonl") if r["step"] > 6]
    again = [r for r in _lines(tmp_path / "cut" / "metrics.jsonl") if r["step"] > 6]
    assert keep == again and resumed.step == whole.step


def test_z0_trains_through_the_same_loop(tmp_path, data) -> None:
    res = train(_cfg("model.variant=z0", "train.epochs=1"), tmp_path, data=data)
    assert isinstance(res.generator, Z0AutoEncoder)
    assert isinstance(load_generator(tmp_path / "model.pt")[0], Z0AutoEncoder)


def test_nan_stops_before_an_update_and_keeps_the_last_checkpoint(tmp_path, data) -> None:
    run = tmp_path / "run"
    train(_cfg("train.epochs=1"), run, data=data)
    before = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    bad = TensorialData(data.train.rows(range(len(data.train))), data.val)
    bad.train.columns["image"] = torch.full_like(bad.train.columns["image"], float("nan"))
    with pytest.raises(NonFiniteLossError, match="step 5"):
        train(_cfg(), run, resume=True, data=bad)
    after = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(v, after[k]) for k, v in before.items())


def test_wrong_files_are_named(tmp_path, data) -> None:
    from facefactors.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "other.pt", {"format": "facefactors.ipd.train/1", "config": {}})
    with pytest.raises(CheckpointError, match="not a tensorial"):
        load_generator(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a tensorial training checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="verifier"):
        train(_cfg("verifier_checkpoint=/nonexistent/backbone.pt"), tmp_path / "v", data=data)


def test_cli_train_picks_the_tensorial_trainer_and_resumes(tmp_path, capsys) -> None:
    from facefactors.cli import main

    run = tmp_path / "run"
    sets = [
        a for o in TINY + ["data.synth_identities=3", "train.max_steps=2"] for a in ("--set", o)
    ]
    assert main(["train", "--config", "tensorial_synth_quick", "--out", str(run), *sets]) == 0
    assert "trained tensorial to step 2" in capsys.readouterr().out
    assert read_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2
    assert main(["train", "--out", str(run), "--resume", "--set", "train.max_steps=3"]) == 0
    assert "to step 3" in capsys.readouterr().out  # the saved config, one more step


def test_bench_train_tensorial_reports_each_preset(monkeypatch) -> None:
    from facefactors.bench import tensorial as bench

    tiny = _cfg()
    monkeypatch.setattr("facefactors.tensorial.config.preset", lambda name, ov=None: tiny)
    out = bench.bench_tensorial(batch=2, seconds=0.01, threads=1, presets=("tiny",))
    (row,) = out["presets"]
    assert row["preset"] == "tiny" and row["image_size"] == 32
    assert row["step_s"] > 0 and row["images_per_s"] == pytest.approx(2 / row["step_s"])
    assert 0 < row["q_share"] < 1 and row["generator_params"] > 0
