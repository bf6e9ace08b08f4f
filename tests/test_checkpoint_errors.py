"""Checkpoint files a kill or a careless user leaves: fsync, orphans, pickles, half dicts."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from facefactors import checkpoint as C
from facefactors.errors import CheckpointError
from facefactors.export.classifier import FORMAT, IPD_TRAIN_FORMAT, load_expression_model
from facefactors.ipd.train import read_checkpoint as read_ipd_checkpoint
from facefactors.tensorial.checkpoints import MODEL_FORMAT, load_generator
from inference_helpers import save_tiny_checkpoint, tiny_model


class Custom:
    """An importable class: torch.save pickles it as a Python object."""


def test_save_fsyncs_the_file_before_the_rename(tmp_path, monkeypatch) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(C.os, "fsync", fsync)
    monkeypatch.setattr(C.os, "replace", replace)
    C.save_checkpoint(tmp_path / "last.pt", {"w": torch.ones(3)})
    kinds = [k for k, _ in events]
    assert kinds == ["fsync", "replace"]
    assert events[0][1] == events[1][1]  # the temporary file itself was synced, then renamed


def test_orphan_temporary_files_are_removed_on_the_next_save(tmp_path) -> None:
    ckpt = tmp_path / "checkpoints" / "last.pt"
    ckpt.parent.mkdir()
    orphan = ckpt.parent / ".last.pt.k3j2x.tmp"  # what a kill during torch.save leaves
    orphan.write_bytes(b"\0" * 1000)
    other = ckpt.parent / ".model.pt.abc.tmp"  # another file's temporary: not ours
    other.write_bytes(b"x")
    C.save_checkpoint(ckpt, {"w": torch.ones(2)})
    assert sorted(p.name for p in ckpt.parent.iterdir()) == [".model.pt.abc.tmp", "last.pt"]


def test_orphan_temporary_files_are_removed_on_resume(tmp_path) -> None:
    from facefactors.ipd.train import train
    from ipd_helpers import random_bundle, tiny_config

    run = tmp_path / "run"
    train(tiny_config("baseline", epochs=1), run, data=random_bundle(8))
    orphan = run / "checkpoints" / ".last.pt.zz9.tmp"
    orphan.write_bytes(b"half a checkpoint")
    read_ipd_checkpoint(run / "checkpoints" / "last.pt")  # what --resume reads first
    assert not orphan.exists()


@pytest.mark.parametrize("kind", ["torch-object", "bare-pickle"])
def test_a_pickle_of_python_objects_is_refused_in_one_sentence(tmp_path, kind) -> None:
    path = tmp_path / "evil.pt"
    if kind == "torch-object":
        torch.save({"obj": Custom()}, path)
    else:
        path.write_bytes(pickle.dumps({"obj": Custom}))
    with pytest.raises(CheckpointError) as err:
        C.load_checkpoint(path)
    msg = str(err.value)
    assert msg == (
        f"Checkpoint file {path} was refused: it holds Python objects, which facefactors "
        "never loads (not a facefactors checkpoint, or an unsafe file)."
    )


def test_garbage_is_corrupt_without_torch_advice(tmp_path) -> None:
    path = tmp_path / "junk.pt"
    path.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"junk\.pt could not be read") as err:
        C.load_checkpoint(path)
    assert "weights_only" not in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("state", "named"),
    [
        ({"format": FORMAT}, "'classes'"),
        ({"format": FORMAT, "classes": ["a", "b"]}, "'backbone'"),
        ({"format": FORMAT, "classes": ["a"], "backbone": {"name": "resnet18"}}, "'backbone."),
        ({"format": IPD_TRAIN_FORMAT}, "'model'"),
        ({"format": IPD_TRAIN_FORMAT, "model": {}}, "c_exp"),
    ],
)
def test_half_formed_expression_checkpoints_name_the_missing_entry(tmp_path, state, named):
    path = C.save_checkpoint(tmp_path / "model.pt", state)
    with pytest.raises(CheckpointError, match=rf"model\.pt.*{named}"):
        load_expression_model(path)


def test_half_formed_training_and_tensorial_checkpoints(tmp_path) -> None:
    path = C.save_checkpoint(tmp_path / "last.pt", {"format": IPD_TRAIN_FORMAT})
    with pytest.raises(CheckpointError, match=r"last\.pt lacks the entry 'config'"):
        read_ipd_checkpoint(path)
    path = C.save_checkpoint(tmp_path / "t.pt", {"format": MODEL_FORMAT})
    with pytest.raises(CheckpointError, match=r"t\.pt lacks the entry 'generator'"):
        load_generator(path)


def test_mismatched_weights_are_named_key_by_key(tmp_path) -> None:
    path = save_tiny_checkpoint(tmp_path / "model.pt")
    state = C.load_checkpoint(path)
    e = state["e_exp"]
    first, second = sorted(k for k in e if k.endswith("weight"))[:2]
    del e[first]
    e["extra.weight"] = torch.zeros(1)
    e[second] = torch.zeros(2, 2)
    C.save_checkpoint(path, state)
    with pytest.raises(CheckpointError) as err:
        load_expression_model(path)
    msg = str(err.value)
    assert "Error(s) in loading" not in msg
    assert f"missing keys {first}" in msg and "unexpected keys extra.weight" in msg
    assert f"shape mismatches {second} (2, 2) vs" in msg and "E_exp" in msg


def test_a_non_tensor_weight_is_named(tmp_path) -> None:
    model, _cfg = tiny_model()
    weights = dict(model.c_exp.state_dict(), bias="oops")
    with pytest.raises(CheckpointError, match=r"bias: not a tensor"):
        C.load_weights(model.c_exp, weights, "x.pt", "C_exp")
