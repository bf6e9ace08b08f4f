"""Config strictness, overrides, and atomic/safe checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch

from facefactors.checkpoint import load_checkpoint, save_checkpoint
from facefactors.config import apply_overrides, from_dict, load_config, to_dict
from facefactors.errors import CheckpointError, ConfigError


@dataclass
class Inner:
    lr: float = 1e-4
    steps: int = 10
    name: str = "a"


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    flags: list[int] = field(default_factory=lambda: [1, 2])
    on: bool = True


def test_from_dict_roundtrip_and_types():
    cfg = from_dict(Outer, {"inner": {"lr": 1, "steps": 3}, "flags": [4], "on": False})
    assert cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert cfg.inner.steps == 3 and cfg.flags == [4] and cfg.on is False
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"'inner\.lrr'"):
        from_dict(Outer, {"inner": {"lrr": 1}})


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"'inner\.steps' must be an integer"):
        from_dict(Outer, {"inner": {"steps": "many"}})


def test_overrides_parse_yaml_values():
    d = apply_overrides({"inner": {"lr": 0.1}}, ["inner.lr=0.5", "inner.steps=7", "on=false"])
    assert d == {"inner": {"lr": 0.5, "steps": 7}, "on": False}
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["nokey"])


def test_unknown_preset():
    with pytest.raises(ConfigError, match="Unknown preset 'nope'"):
        load_config(Outer, "nope")


def test_yaml_file_and_bad_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("inner:\n  lr: 0.25\n")
    assert load_config(Outer, p).inner.lr == 0.25
    with pytest.raises(ConfigError, match="'inner.bogus'"):
        load_config(Outer, p, ["inner.bogus=1"])


def test_checkpoint_roundtrip_is_atomic(tmp_path):
    path = tmp_path / "ck" / "model.pt"
    state = {"w": torch.arange(6.0).reshape(2, 3), "config": {"a": 1}, "step": 3}
    save_checkpoint(path, state)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]  # no temp leftovers
    back = load_checkpoint(path)
    assert torch.equal(back["w"], state["w"]) and back["config"] == {"a": 1} and back["step"] == 3


def test_truncated_checkpoint_has_clear_message(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, {"w": torch.randn(100, 100)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.pt could not be read"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"

    # Arbitrary (importable) objects are refused under weights_only=True.
    torch.save({"obj": Inner()}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    import os

    from facefactors.checkpoint import atomic_write_text

    umask = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "a.pt", {"x": torch.zeros(1)})
        atomic_write_text(tmp_path / "b.txt", "hi")
    finally:
        os.umask(umask)
    # mkstemp creates 0600 files; a checkpoint or report must be readable like any file.
    for name in ("a.pt", "b.txt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.txt"]  # no temp left
