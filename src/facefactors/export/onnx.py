"""ONNX export of the inference path (E_exp + C_exp) and its onnxruntime check.

The graph takes ``image`` (B, 3, S, S) float32 in [-1, 1] (RGB, 5-point aligned,
``(x/255 - 0.5)/0.5``) and returns ``logits`` (B, K); the batch axis is dynamic.
The class names, input size and normalisation are stored in the model's
``metadata_props`` so that a deployed model describes itself.

onnx and onnxruntime are the optional extra ``facefactors[onnx]``.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from facefactors.errors import CheckpointError, FaceFactorsError
from facefactors.export.classifier import NORMALIZATION
from facefactors.export.onnxrt import INPUT_NAME, OUTPUT_NAME, require_onnx

VERIFY_BATCH_SIZES: tuple[int, ...] = (2, 5)

if TYPE_CHECKING:
    from facefactors.export.classifier import ExpressionClassifier


def onnx_metadata(model: ExpressionClassifier) -> dict[str, str]:
    """String metadata stored in the ONNX file: classes (JSON list), input size, normalisation."""
    from facefactors import __version__

    return {
        "classes": json.dumps(list(model.classes)),
        "input_size": str(int(model.input_size)),
        "normalization": json.dumps(NORMALIZATION),
        "input_layout": "NCHW, RGB, 5-point ArcFace-template aligned, (x/255 - 0.5)/0.5",
        "producer": f"facefactors {__version__}",
    }


def export_onnx(model: ExpressionClassifier, path: str | os.PathLike, opset: int = 17) -> Path:
    """Write E_exp + C_exp as an ONNX graph with a dynamic batch axis.

    Uses the TorchScript-based exporter (``dynamo=False``), which needs no
    onnxscript. The file is written atomically.

    Args:
        model: the classifier (its weights are not changed).
        path: destination ``.onnx`` file.
        opset: ONNX opset version.

    Returns:
        ``path``.
    """
    from facefactors.checkpoint import atomic_write_bytes

    onnx, _ort = require_onnx()
    model = model.eval()
    s = int(model.input_size)
    dummy = torch.zeros(2, 3, s, s)
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The legacy exporter is chosen on purpose (the dynamo one needs onnxscript);
        # its deprecation notice would only alarm users.
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        torch.onnx.export(
            model,
            (dummy,),
            buf,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in onnx_metadata(model).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    atomic_write_bytes(path, proto.SerializeToString())
    return Path(path)


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict."""
    onnx, _ort = require_onnx()
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def verify_onnx(
    path: str | os.PathLike,
    model: ExpressionClassifier,
    batch_sizes: tuple[int, ...] = VERIFY_BATCH_SIZES,
    seed: int = 0,
) -> float:
    """Largest |onnxruntime - torch| logit difference on random batches.

    Args:
        path: the exported file.
        model: the torch classifier it was exported from.
        batch_sizes: one random batch (uniform in [-1, 1]) of each size.
        seed: seed of the random batches.

    Returns:
        The max abs difference over all batches.

    Raises:
        FaceFactorsError: onnxruntime returns a wrong shape (the batch axis is not dynamic).
    """
    _onnx, ort = require_onnx()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    s = int(model.input_size)
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for b in batch_sizes:
        x = torch.rand(b, 3, s, s, generator=g) * 2 - 1
        with torch.no_grad():
            expected = model.eval()(x).numpy()
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
        if got.shape != expected.shape:
            raise FaceFactorsError(
                f"ONNX model {path} returned logits of shape {got.shape} for a batch of {b} "
                f"instead of {expected.shape}."
            )
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def export_checkpoint(
    checkpoint: str | os.PathLike, onnx_path: str | os.PathLike, opset: int = 17
) -> dict[str, Any]:
    """Load a checkpoint, export it to ONNX and verify it with onnxruntime.

    Returns:
        ``{"onnx", "classes", "input_size", "opset", "batch_sizes", "max_abs_diff"}``.

    Raises:
        CheckpointError: the checkpoint is missing, not an expression model or an .onnx file.
        FaceFactorsError: onnx/onnxruntime are not installed.
    """
    from facefactors.export.classifier import ExpressionClassifier, load_expression_model

    require_onnx()  # before loading anything, so a missing extra fails fast
    model = load_expression_model(checkpoint)
    if not isinstance(model, ExpressionClassifier):  # an .onnx file: nothing to export
        raise CheckpointError(
            f"Checkpoint {checkpoint} is already an ONNX model; export needs the torch "
            "checkpoint (model.pt or last.pt)."
        )
    path = export_onnx(model, onnx_path, opset=opset)
    return {
        "onnx": str(path),
        "classes": list(model.classes),
        "input_size": int(model.input_size),
        "opset": opset,
        "batch_sizes": list(VERIFY_BATCH_SIZES),
        "max_abs_diff": verify_onnx(path, model),
    }
