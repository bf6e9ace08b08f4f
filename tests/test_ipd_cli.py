"""``facefactors train`` command: presets, overrides and user errors."""

from __future__ import annotations

import argparse

import pytest

from facefactors.commands import train as train_cmd
from facefactors.config import load_config
from facefactors.errors import CheckpointError, ConfigError, DataError
from facefactors.ipd.config import IPDConfig, validate_config
from facefactors.ipd.train import read_checkpoint as read_training_state
from ipd_helpers import one_thread  # noqa: F401 - autouse fixture


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="facefactors")
    train_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", *argv])
    return args.func(args)


@pytest.mark.parametrize(
    "preset", ["ipd_synth_quick", "id_synth_quick", "baseline_synth_quick", "ipd_rafdb_paper"]
)
def test_presets_load_and_validate(preset: str) -> None:
    cfg = validate_config(load_config(IPDConfig, preset))
    assert cfg.model.variant == preset.split("_")[0]


def test_overrides_are_typed() -> None:
    cfg = load_config(IPDConfig, "ipd_synth_quick", ["train.epochs=3", "loss.use_cos=false"])
    assert cfg.train.epochs == 3 and cfg.loss.use_cos is False
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(IPDConfig, "ipd_synth_quick", ["train.epochs=many"])


def test_decoder_lr_must_be_positive() -> None:
    cfg = load_config(IPDConfig, "ipd_synth_quick", ["train.decoder_lr=0"])
    with pytest.raises(ConfigError, match=r"'train\.decoder_lr' must be positive, got 0"):
        validate_config(cfg)


def test_decoder_norm_is_checked_by_name() -> None:
    cfg = load_config(IPDConfig, "ipd_synth_full", ["model.decoder_norm=layer"])
    with pytest.raises(ConfigError, match=r"'model\.decoder_norm'.*instance, batch, none.*'layer'"):
        validate_config(cfg)
    full = validate_config(load_config(IPDConfig, "ipd_synth_full"))
    assert full.model.decoder_norm == "batch"


def test_unknown_preset(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"Unknown preset 'nope'.*ipd_synth_quick"):
        run(["--config", "nope", "--out", str(tmp_path / "r")])


def test_bad_set_key(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"'model\.bogus'"):
        run(["--config", "ipd_synth_quick", "--out", str(tmp_path / "r"), "--set", "model.bogus=1"])


def test_missing_data_directory(tmp_path) -> None:
    missing = tmp_path / "no_such_rafdb"
    argv = [
        "--config",
        "ipd_rafdb_paper",
        "--out",
        str(tmp_path / "r"),
        "--set",
        f"data.root={missing}",
    ]
    with pytest.raises(DataError, match=r"no_such_rafdb.*data\.root"):
        run(argv)


def test_unknown_source_and_bad_values(tmp_path) -> None:
    out = str(tmp_path / "r")
    with pytest.raises(ConfigError, match=r"data\.source"):
        run(["--config", "ipd_synth_quick", "--out", out, "--set", "data.source=imagenet"])
    with pytest.raises(ConfigError, match=r"data\.size"):
        run(["--config", "ipd_synth_quick", "--out", out, "--set", "data.size=50"])
    with pytest.raises(ConfigError, match=r"model\.classes.*'joy'"):
        run(["--config", "ipd_synth_quick", "--out", out, "--set", "model.classes=[neutral,joy]"])
    with pytest.raises(ConfigError, match=r"loss\.lambda_id"):
        run(["--config", "ipd_synth_quick", "--out", out, "--set", "loss.lambda_id=-1"])
    with pytest.raises(ConfigError, match="model.variant"):
        run(["--config", "ipd_synth_quick", "--out", out, "--set", "model.variant=gan"])


def test_resume_errors(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        run(["--out", str(tmp_path / "r"), "--resume"])
    with pytest.raises(ConfigError, match="drop --config"):
        run(["--config", "ipd_synth_quick", "--out", str(tmp_path / "r"), "--resume"])
    with pytest.raises(ConfigError, match="--config"):
        run(["--out", str(tmp_path / "r")])


def test_cli_exit_code_and_one_sentence(tmp_path, capsys) -> None:
    from facefactors.cli import main

    assert main(["train", "--config", "nope", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facefactors train: error: Unknown preset 'nope'")
    assert "Traceback" not in err


def test_cli_trains_then_resumes_with_saved_config(tmp_path) -> None:
    preset = tmp_path / "tiny.yaml"
    preset.write_text(
        "model: {variant: baseline, width: 4}\n"
        "train: {epochs: 1, batch_size: 8, threads: 1, log_every: 1, device: cpu}\n"
        "data: {size: 32, synth_identities: 3, synth_per_identity: 8, synth_val_identities: 1}\n"
    )
    out = tmp_path / "run"
    assert run(["--config", str(preset), "--out", str(out)]) == 0
    assert read_training_state(out / "checkpoints" / "last.pt")["step"] == 2
    with pytest.raises(ConfigError, match="--resume"):
        run(["--config", str(preset), "--out", str(out)])
    assert run(["--out", str(out), "--resume", "--set", "train.epochs=2"]) == 0
    state = read_training_state(out / "checkpoints" / "last.pt")
    assert (state["step"], state["epoch"], state["config"]["train"]["epochs"]) == (4, 2, 2)
    assert state["config"]["model"]["width"] == 4  # the saved config, not the defaults
