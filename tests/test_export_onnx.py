"""`facefactors export`: ONNX of E_exp + C_exp, parity with torch, dynamic batch, metadata."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from facefactors.errors import FaceFactorsError
from facefactors.export.classifier import load_expression_model
from facefactors.ipd.config import SEVEN_CLASSES
from inference_helpers import SIZE, run_cli, save_tiny_checkpoint

pytest.importorskip("onnxruntime", reason="the optional extra facefactors[onnx]")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny model exported once through the CLI; (checkpoint, onnx path, printed line)."""
    folder = tmp_path_factory.mktemp("onnx")
    ckpt = save_tiny_checkpoint(folder / "model.pt", seed=5)
    path = folder / "model.onnx"
    with pytest.MonkeyPatch.context() as mp:
        out = []
        mp.setattr("builtins.print", lambda *a, **k: out.append(" ".join(map(str, a))))
        code = run_cli(["export", "--checkpoint", str(ckpt), "--onnx", str(path)])
    return {"code": code, "ckpt": ckpt, "onnx": path, "printed": "\n".join(out)}


def test_export_reports_parity_on_two_batch_sizes(exported):
    assert exported["code"] == 0
    line = exported["printed"]
    assert "onnxruntime vs torch on batches of 2 and 5: max abs diff" in line
    assert float(line.rsplit(" ", 1)[1]) < 1e-4


def test_onnx_matches_torch_for_any_batch_size(exported):
    import onnxruntime as ort

    model = load_expression_model(exported["ckpt"])
    session = ort.InferenceSession(str(exported["onnx"]), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("image", "logits")
    assert inp.shape[1:] == [3, SIZE, SIZE] and not isinstance(inp.shape[0], int)
    g = torch.Generator().manual_seed(0)
    for b in (1, 3, 7):
        x = torch.rand(b, 3, SIZE, SIZE, generator=g) * 2 - 1
        with torch.no_grad():
            expected = model(x).numpy()
        (got,) = session.run(["logits"], {"image": x.numpy()})
        assert got.shape == (b, len(SEVEN_CLASSES))
        if b > 1:  # the logits differ between faces: parity is not a constant output
            assert expected.std(0).max() > 1e-3
        assert np.abs(got - expected).max() < 1e-4


def test_metadata_names_the_classes(exported):
    from facefactors.export.onnx import read_onnx_metadata

    meta = read_onnx_metadata(exported["onnx"])
    assert json.loads(meta["classes"]) == SEVEN_CLASSES
    assert meta["input_size"] == str(SIZE)
    assert json.loads(meta["normalization"]) == {"mean": 0.5, "std": 0.5, "color": "RGB"}


def test_only_the_inference_path_is_exported(exported):
    import onnx
    from onnx import numpy_helper

    model = load_expression_model(exported["ckpt"])
    inits = {
        t.name: numpy_helper.to_array(t) for t in onnx.load(str(exported["onnx"])).graph.initializer
    }
    np.testing.assert_array_equal(inits["head.weight"], model.head.weight.detach().numpy())
    # The exporter folds BatchNorm into the convolutions (and shares equal tensors), so
    # the file holds at most as many numbers as E_exp + C_exp: nothing of E_id or E_pose.
    total = sum(a.size for a in inits.values())
    assert 0 < total <= sum(t.numel() for t in model.state_dict().values())


def test_missing_onnxruntime_names_the_extra(exported, tmp_path, monkeypatch):
    from facefactors.export.onnx import export_checkpoint

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(FaceFactorsError, match=r"pip install facefactors\[onnx\]"):
        export_checkpoint(exported["ckpt"], tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_missing_checkpoint_exits_2(tmp_path, capsys):
    ckpt = tmp_path / "nope.pt"
    assert run_cli(["export", "--checkpoint", str(ckpt), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err.strip().endswith(f"Checkpoint file {ckpt} does not exist.")
