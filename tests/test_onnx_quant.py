"""Static int8 quantisation of the exported classifier: file, metadata, agreement, errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from facefactors.errors import FaceFactorsError
from facefactors.ipd.config import SEVEN_CLASSES
from inference_helpers import SIZE, run_cli, save_tiny_checkpoint, tiny_onnx_models

pytest.importorskip("onnxruntime", reason="the optional extra facefactors[onnx]")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny fp32 export, its int8 copy (64 calibration faces) and 64 held-out faces."""
    return tiny_onnx_models(tmp_path_factory.mktemp("quant"))


def test_synthetic_calibration_is_faces_in_range(models):
    cal, held = models["calibration"], models["held_out"]
    assert cal.shape == (64, 3, SIZE, SIZE) and cal.dtype == np.float32
    assert cal.min() >= -1.0 and cal.max() <= 1.0 and cal.std() > 0.1
    # Another seed draws other faces: the held-out images are not the calibration ones.
    assert np.abs(cal - held).mean() > 0.05


def test_int8_file_is_quantised_and_keeps_the_metadata(models):
    import onnx

    from facefactors.export.onnx import read_onnx_metadata

    proto = onnx.load(str(models["int8"]))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 20  # every convolution and the head
    meta = read_onnx_metadata(models["int8"])
    source = read_onnx_metadata(models["fp32"])
    assert {k: meta[k] for k in source} == source
    assert json.loads(meta["classes"]) == SEVEN_CLASSES
    quant = json.loads(meta["quantization"])
    assert quant["calibration_images"] == 64
    assert "int8" in quant["format"] and quant["weights"] == "int8 per-channel"
    assert not list(models["int8"].parent.glob(".*.tmp"))  # atomic write left nothing


def test_int8_model_has_a_dynamic_batch_axis(models):
    from facefactors.export.onnxrt import session

    sess = session(models["int8"], threads=1)
    for b in (2, 5):
        (got,) = sess.run(["logits"], {"image": models["held_out"][:b]})
        assert got.shape == (b, len(SEVEN_CLASSES)) and got.dtype == np.float32


def test_int8_agrees_with_fp32_on_held_out_faces(models):
    from facefactors.export.quantize import agreement

    a = agreement(models["fp32"], models["int8"], models["held_out"])
    assert a["images"] == 64
    # Measured: 1.0 agreement and a max diff of ~1% of the logit range (tiny model).
    # Calibrating on images shrunk 20x (wrong ranges) gives ~0.4 and ~45%.
    assert a["top1_agreement"] >= 0.9
    assert 0 < a["max_abs_diff"] < 0.15 * a["logit_range"]


def test_badly_calibrated_int8_is_caught_by_agreement(models, tmp_path):
    from facefactors.export.quantize import agreement, quantize_onnx

    bad = quantize_onnx(models["fp32"], tmp_path / "bad.onnx", models["calibration"] * 0.05)
    a = agreement(models["fp32"], bad, models["held_out"])
    assert a["top1_agreement"] < 0.9 or a["max_abs_diff"] > 0.15 * a["logit_range"]


def test_wrong_calibration_shape_names_the_expected_shape(models, tmp_path):
    from facefactors.export.quantize import quantize_onnx

    wrong = torch.zeros(4, 3, SIZE + 1, SIZE + 1)
    with pytest.raises(FaceFactorsError, match=rf"\(N, 3, {SIZE}, {SIZE}\).*\(4, 3, 33, 33\)"):
        quantize_onnx(models["fp32"], tmp_path / "q.onnx", wrong)
    with pytest.raises(FaceFactorsError, match=rf"\(N, 3, {SIZE}, {SIZE}\)"):
        quantize_onnx(models["fp32"], tmp_path / "q.onnx", np.zeros((3, SIZE, SIZE)))
    assert not (tmp_path / "q.onnx").exists()


def test_missing_source_names_the_file(models, tmp_path):
    from facefactors.export.quantize import agreement, quantize_onnx

    missing = tmp_path / "nope.onnx"
    with pytest.raises(FaceFactorsError, match=f"{missing} does not exist"):
        quantize_onnx(missing, tmp_path / "q.onnx", models["calibration"])
    with pytest.raises(FaceFactorsError, match=f"{missing} does not exist"):
        agreement(models["fp32"], missing, models["held_out"])


def test_quantising_onto_the_source_is_refused(models):
    from facefactors.export.quantize import quantize_onnx

    with pytest.raises(FaceFactorsError, match="overwrite its source"):
        quantize_onnx(models["fp32"], models["fp32"], models["calibration"])


def test_missing_onnxruntime_names_the_extra(models, tmp_path, monkeypatch):
    from facefactors.export.quantize import quantize_onnx

    for name in [m for m in sys.modules if m == "onnxruntime" or m.startswith("onnxruntime.")]:
        monkeypatch.setitem(sys.modules, name, None)  # import now raises ImportError
    with pytest.raises(FaceFactorsError, match=r"pip install facefactors\[onnx\]"):
        quantize_onnx(models["fp32"], tmp_path / "q.onnx", models["calibration"])


def test_export_cli_writes_int8_and_reports_agreement(tmp_path, capsys):
    from facefactors.export.onnx import read_onnx_metadata

    ckpt = save_tiny_checkpoint(tmp_path / "model.pt", seed=5)
    fp32, int8 = tmp_path / "m.onnx", tmp_path / "m.int8.onnx"
    argv = ["export", "--checkpoint", str(ckpt), "--onnx", str(fp32), "--int8", str(int8)]
    assert run_cli([*argv, "--calibration-count", "16"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"wrote {fp32} ")
    assert lines[1].startswith(f"wrote {int8} (int8 QDQ, calibrated on 16 synthetic faces)")
    assert "int8 vs fp32 on 64 held-out synthetic faces: top-1 agreement" in lines[1]
    rate = float(lines[1].split("top-1 agreement ")[1].split(",")[0])
    assert 0.8 <= rate <= 1.0
    assert json.loads(read_onnx_metadata(int8)["quantization"])["calibration_images"] == 16


def test_export_cli_rejects_a_non_positive_calibration_count(tmp_path, capsys):
    ckpt = save_tiny_checkpoint(tmp_path / "model.pt")
    argv = ["export", "--checkpoint", str(ckpt), "--onnx", str(tmp_path / "m.onnx")]
    assert run_cli([*argv, "--int8", str(tmp_path / "q.onnx"), "--calibration-count", "0"]) == 2
    assert "--calibration-count must be positive" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
