"""Config values a careless user types: scientific notation, NaN, devices, counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from facefactors.config import from_dict, load_config
from facefactors.devices import check_device
from facefactors.errors import ConfigError
from facefactors.ipd.config import IPDConfig, validate_config
from facefactors.recognition.config import PretrainConfig
from facefactors.recognition.config import validate_config as validate_pretrain
from facefactors.tensorial.config import TensorialConfig
from facefactors.tensorial.config import validate as validate_tensorial
from inference_helpers import run_cli, save_tiny_checkpoint


@pytest.mark.parametrize(("text", "value"), [("1e-3", 1e-3), ("5E-4", 5e-4), ("+2e1", 20.0)])
def test_scientific_notation_is_a_number(text, value) -> None:
    cfg = load_config(IPDConfig, None, [f"train.lr={text}"])
    assert cfg.train.lr == value and isinstance(cfg.train.lr, float)


def test_scientific_notation_in_a_yaml_file_and_for_integers(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 2e-4\n  epochs: 1e1\n")
    cfg = load_config(IPDConfig, path)
    assert cfg.train.lr == 2e-4 and cfg.train.epochs == 10 and isinstance(cfg.train.epochs, int)
    with pytest.raises(ConfigError, match=r"'train\.epochs' must be an integer, got 2\.5"):
        load_config(IPDConfig, None, ["train.epochs=2.5e0"])


@pytest.mark.parametrize("text", [".nan", ".inf", "-.inf", "1e999"])
def test_nan_and_inf_are_refused_naming_the_key(text) -> None:
    with pytest.raises(ConfigError, match=r"^Config key 'train\.lr' must be a finite number"):
        load_config(IPDConfig, None, [f"train.lr={text}"])


def test_text_is_still_not_a_number() -> None:
    with pytest.raises(ConfigError, match=r"'train\.lr' must be a number, got 'fast'"):
        load_config(IPDConfig, None, ["train.lr=fast"])


def test_device_names_are_checked(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check_device("cpu", "Option --device") == "cpu"
    with pytest.raises(ConfigError, match=r"^Option --device asks for cuda, but CUDA is not"):
        check_device("cuda", "Option --device")
    with pytest.raises(ConfigError, match=r"must be auto, cpu, cuda or cuda:N, got 'tpu'"):
        check_device("tpu", "X")
    with pytest.raises(ConfigError, match=r"got 'cpu:1'"):
        check_device("cpu:1", "X")


def test_every_trainer_checks_its_device_up_front(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"'train\.device' must be auto, cpu, cuda"):
        validate_config(load_config(IPDConfig, None, ["train.device=tpu"]))
    with pytest.raises(ConfigError, match="CUDA is not available on this machine"):
        validate_config(load_config(IPDConfig, None, ["train.device=cuda"]))
    with pytest.raises(ConfigError, match="CUDA is not available on this machine"):
        validate_pretrain(from_dict(PretrainConfig, {"device": "cuda"}))
    with pytest.raises(ConfigError, match=r"'train\.device' must be"):
        validate_tensorial(from_dict(TensorialConfig, {"train": {"device": "tpu"}}))


def test_train_cli_refuses_a_bad_device_in_one_sentence(tmp_path, capsys) -> None:
    argv = ["train", "--config", "ipd_synth_quick", "--out", str(tmp_path / "run")]
    argv += ["--set", "train.device=tpu"]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'train.device' must be auto, cpu, cuda or cuda:N" in err
    assert not (tmp_path / "run").exists()


@pytest.fixture
def photo_and_ckpt(tmp_path):
    photo = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photo)
    return photo, save_tiny_checkpoint(tmp_path / "model.pt")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-faces", "0"], "--max-faces: must be a positive integer or 'all', got '0'"),
        (["--max-faces", "-1"], "--max-faces: must be a positive integer or 'all', got '-1'"),
        (["--max-faces", "two"], "--max-faces: must be a positive integer or 'all'"),
        (["--min-face", "nan"], "--min-face must be at least 12 pixels, got nan"),
        (["--device", "tpu"], "--device must be cpu, cuda or cuda:N, got 'tpu'"),
    ],
)
def test_predict_refuses_bad_counts_and_devices(tmp_path, photo_and_ckpt, capsys, extra, message):
    photo, ckpt = photo_and_ckpt
    out = tmp_path / "r.csv"
    try:  # argparse refuses a bad --max-faces itself: usage line, message, exit 2
        code = run_cli(
            ["predict", str(photo), "--checkpoint", str(ckpt), "--out", str(out), *extra]
        )
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_predict_cuda_on_a_cpu_machine(tmp_path, photo_and_ckpt, capsys, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    photo, ckpt = photo_and_ckpt
    argv = ["predict", str(photo), "--checkpoint", str(ckpt), "--out", str(tmp_path / "r.csv")]
    assert run_cli([*argv, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "facefactors predict: error: Option --device asks for cuda, but CUDA is not "
        "available on this machine."
    )


def test_predict_max_faces_all_is_accepted() -> None:
    from facefactors.commands.predict import face_count

    assert face_count("all") is None and face_count("3") == 3


def test_null_is_refused_where_the_key_cannot_be_empty() -> None:
    """`--set train.lr=` followed by a YAML comment or `null` used to pass as None and fail
    later with a TypeError inside validation (found by tests/test_fuzz.py)."""
    with pytest.raises(ConfigError, match=r"^Config key 'train\.lr' cannot be null"):
        load_config(IPDConfig, None, ["train.lr=null"])
    with pytest.raises(ConfigError, match=r"'data\.size' cannot be null"):
        load_config(IPDConfig, None, ["data.size=# a comment"])
    assert load_config(IPDConfig, None, ["train.max_steps=null"]).train.max_steps is None
