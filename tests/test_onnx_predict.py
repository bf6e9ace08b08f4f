"""Exported .onnx files (fp32 and int8) as inference models: parity, predict CLI, errors."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from facefactors.errors import CheckpointError, DataError, FaceFactorsError
from facefactors.export.classifier import load_expression_model
from facefactors.faces import samples
from facefactors.inference import ExpressionRecognizer
from facefactors.ipd.config import SEVEN_CLASSES
from inference_helpers import SIZE, run_cli, tiny_onnx_models

pytest.importorskip("onnxruntime", reason="the optional extra facefactors[onnx]")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One tiny checkpoint, its fp32 export and int8 copy (64 calibration faces)."""
    return tiny_onnx_models(tmp_path_factory.mktemp("onnx-predict"))


def _batch(b: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, SIZE, SIZE, generator=g) * 2 - 1


def test_fp32_onnx_loads_like_the_torch_model(models):
    from facefactors.export.runtime import OnnxExpressionClassifier

    ref = load_expression_model(models["ckpt"])
    got = load_expression_model(models["fp32"])
    assert isinstance(got, OnnxExpressionClassifier) and isinstance(got, torch.nn.Module)
    assert got.classes == ref.classes == SEVEN_CLASSES
    assert got.input_size == ref.input_size == SIZE
    for seed, b in enumerate((2, 5)):
        x = _batch(b, seed)
        with torch.inference_mode():
            expected, logits = ref(x), got(x)
        assert logits.shape == (b, len(SEVEN_CLASSES)) and logits.dtype == torch.float32
        assert expected.std(0).max() > 1e-3  # the faces get different logits
        assert (logits - expected).abs().max() < 1e-4


def test_channels_last_and_float64_inputs_give_the_same_logits(models):
    model = load_expression_model(models["fp32"])
    assert model.to("cpu", memory_format=torch.channels_last).eval() is model
    x = _batch(3, 7)
    with torch.inference_mode():
        plain = model(x)
        nhwc = model(x.contiguous(memory_format=torch.channels_last))
        double = model(x.double())
        empty = model(x[:0])
    assert torch.equal(plain, nhwc) and (plain - double).abs().max() < 1e-6
    assert empty.shape == (0, len(SEVEN_CLASSES))


def test_session_uses_the_torch_thread_count(models):
    torch.set_num_threads(2)
    model = load_expression_model(models["fp32"])
    assert model.session.get_session_options().intra_op_num_threads == 2
    assert model.session.get_providers() == ["CPUExecutionProvider"]


def test_int8_onnx_loads_and_agrees_with_fp32(models):
    from facefactors.export.quantize import synthetic_calibration

    fp32 = load_expression_model(models["fp32"])
    int8 = load_expression_model(models["int8"])
    assert (int8.classes, int8.input_size) == (SEVEN_CLASSES, SIZE)
    held_out = torch.from_numpy(synthetic_calibration(SIZE, 64, seed=1))
    with torch.inference_mode():
        ref, got = fp32(held_out), int8(held_out)
    assert not torch.equal(ref, got)  # it really is the quantised graph
    assert (ref.argmax(1) == got.argmax(1)).float().mean() >= 0.9


def test_recognizer_runs_the_onnx_model(models):
    x = _batch(4, 3)
    ref = ExpressionRecognizer.from_checkpoint(models["ckpt"]).probabilities(x)
    rec = ExpressionRecognizer.from_checkpoint(models["fp32"], batch_size=3)
    probs = rec.probabilities(x)
    np.testing.assert_allclose(probs, ref, atol=1e-5)
    preds = rec.predict(x)
    assert [p.label for p in preds] == [SEVEN_CLASSES[i] for i in ref.argmax(1)]


def test_recognizer_refuses_another_device(models):
    with pytest.raises(FaceFactorsError, match=r"runs on the CPU only.*--device cpu"):
        ExpressionRecognizer.from_checkpoint(models["fp32"], device="cuda")
    model = load_expression_model(models["fp32"])
    with pytest.raises(FaceFactorsError, match=f"ONNX model {models['fp32']} runs on the CPU"):
        model.cuda()


def test_features_are_not_available(models):
    model = load_expression_model(models["fp32"])
    with pytest.raises(FaceFactorsError, match=r"only outputs logits.*model\.pt"):
        model.features(_batch(2, 0))


def test_wrong_input_shape_names_the_expected_shape(models):
    model = load_expression_model(models["int8"])
    for bad in (torch.zeros(2, 3, SIZE + 1, SIZE + 1), torch.zeros(3, SIZE, SIZE)):
        with pytest.raises(DataError, match=rf"takes \(B, 3, {SIZE}, {SIZE}\) images, got"):
            model(bad)


def test_onnx_without_facefactors_metadata_names_the_file(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    shape = ["batch", 3, SIZE, SIZE]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["logits"])],
        "plain",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, shape)],
    )
    # IR version 8: an IR newer than the installed onnxruntime reads would fail earlier.
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "plain.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(CheckpointError, match=f"ONNX model {path} is not a facefactors"):
        load_expression_model(path)
    proto.metadata_props.add(key="classes", value="not json")
    onnx.save(proto, str(path))
    with pytest.raises(CheckpointError, match=f"ONNX model {path} has malformed facefactors"):
        load_expression_model(path)


def test_corrupt_and_missing_onnx_files_name_the_file(models, tmp_path):
    data = models["fp32"].read_bytes()
    for name, content in (("truncated.onnx", data[: len(data) // 2]), ("junk.onnx", b"x" * 50)):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match=f"ONNX model {path} could not be read") as info:
            load_expression_model(path)
        assert "\n" not in str(info.value)
    missing = tmp_path / "nope.onnx"
    with pytest.raises(CheckpointError, match=f"ONNX model {missing} does not exist"):
        load_expression_model(missing)


def test_missing_onnxruntime_names_the_extra(models, monkeypatch):
    for name in [m for m in sys.modules if m == "onnxruntime" or m.startswith("onnxruntime.")]:
        monkeypatch.setitem(sys.modules, name, None)  # import now raises ImportError
    with pytest.raises(FaceFactorsError, match=r"pip install facefactors\[onnx\]"):
        load_expression_model(models["fp32"])


def test_export_refuses_an_onnx_checkpoint(models, tmp_path, capsys):
    argv = ["export", "--checkpoint", str(models["fp32"]), "--onnx", str(tmp_path / "m.onnx")]
    assert run_cli(argv) == 2
    assert "is already an ONNX model" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_predict_cli_with_onnx_matches_torch(models, tmp_path, mtcnn_weights_dir, capsys):
    image = samples.grace_hopper()
    h, w = image.shape[:2]
    photo = tmp_path / "grace_hopper.jpg"
    Image.fromarray(cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)).save(photo)
    tables = {}
    for key in ("ckpt", "fp32", "int8"):
        out = tmp_path / f"{key}.csv"
        argv = ["predict", str(photo), "--checkpoint", str(models[key]), "--out", str(out)]
        assert run_cli([*argv, "--weights", mtcnn_weights_dir]) == 0
        tables[key] = pd.read_csv(out)
    capsys.readouterr()
    ref, fp32, int8 = tables["ckpt"], tables["fp32"], tables["int8"]
    assert len(ref) == 1 and list(fp32.columns) == list(ref.columns)
    assert fp32["label"].tolist() == ref["label"].tolist()
    p_cols = [f"p_{c}" for c in SEVEN_CLASSES]
    np.testing.assert_allclose(fp32[p_cols].to_numpy(), ref[p_cols].to_numpy(), atol=1e-5)
    # The detector does not depend on the classifier: same face, int8 probabilities.
    np.testing.assert_allclose(int8[["x1", "y1", "x2", "y2"]], ref[["x1", "y1", "x2", "y2"]])
    np.testing.assert_allclose(int8[p_cols].to_numpy().sum(1), 1.0, atol=1e-4)


def test_predict_cli_with_a_corrupt_onnx_exits_2(tmp_path, capsys):
    photo, bad = tmp_path / "a.png", tmp_path / "bad.onnx"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photo)
    bad.write_bytes(b"not an onnx model")
    argv = ["predict", str(photo), "--checkpoint", str(bad), "--out", str(tmp_path / "r.csv")]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert f"ONNX model {bad} could not be read" in err and err.count("\n") == 1
