"""Static int8 quantisation of the exported expression classifier (onnxruntime).

The fp32 graph of :mod:`facefactors.export.onnx` (``image`` (B, 3, S, S) float32
in [-1, 1] → ``logits`` (B, K)) is rewritten in QDQ form: per-channel signed
int8 weights, unsigned int8 activations whose ranges (MinMax) come from
calibration images. On CPUs with AVX512-VNNI onnxruntime runs it several times
faster than fp32. Inputs and outputs stay float32, the batch axis stays dynamic
and the source model's ``metadata_props`` are kept, plus ``quantization``.

Calibration images are rendered synthetic faces from the training split
(:func:`synthetic_calibration`); :func:`agreement` compares the int8 and fp32
models on other, held-out synthetic faces.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facefactors.errors import ConfigError, FaceFactorsError
from facefactors.export.onnxrt import INPUT_NAME, OUTPUT_NAME, require_onnx, session

CALIBRATION_COUNT = 256  # synthetic faces calibrating `facefactors export --int8`
HELD_OUT_COUNT = 64  # synthetic faces of the int8-vs-fp32 agreement check
CALIBRATION_SEED, HELD_OUT_SEED = 0, 1  # different seeds: different identities
_CHUNK = 32  # images per onnxruntime call during calibration and comparison


def synthetic_calibration(size: int, count: int, seed: int = CALIBRATION_SEED) -> np.ndarray:
    """``count`` rendered synthetic faces from the training split, aligned like real ones.

    Only the posed image is rendered (no neutral twins, no maps), four samples per
    identity; identities depend on ``seed``, so two seeds give disjoint faces.

    Returns:
        (count, 3, size, size) float32 in [-1, 1].
    """
    from facefactors.synth.dataset import SynthFaces
    from facefactors.synth.scene import render_batch

    if isinstance(count, bool) or int(count) != count or count <= 0:
        raise ConfigError(f"The number of synthetic faces must be positive, got {count!r}.")
    ds = SynthFaces("train", -(-int(count) // 4), 4, size, seed, maps=False)
    parts = []
    for start in range(0, int(count), 64):
        f = ds.factors(range(start, min(start + 64, int(count))))
        parts.append(render_batch(f, size, neutral=False, frontal=False, maps=False)["image"])
    return torch.cat(parts).numpy().astype(np.float32, copy=False)


def _input_size(proto: Any, path: Path) -> int:
    """S of the model's ``image`` input (B, 3, S, S)."""
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] != 3 or dims[2] <= 0 or dims[2] != dims[3]:
        raise FaceFactorsError(f"ONNX model {path} does not take (B, 3, S, S) images.")
    return int(dims[2])


def _as_images(images: np.ndarray | torch.Tensor, size: int, what: str) -> np.ndarray:
    """``images`` as a C-contiguous float32 (N, 3, size, size) array, N >= 1."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[0] < 1 or tuple(arr.shape[1:]) != (3, size, size):
        raise FaceFactorsError(
            f"{what} must have shape (N, 3, {size}, {size}) (float32 in [-1, 1], N >= 1), "
            f"got {tuple(arr.shape)}."
        )
    return np.ascontiguousarray(arr, dtype=np.float32)


def _load(path: str | os.PathLike) -> tuple[Any, Path]:
    onnx, _ort = require_onnx()
    path = Path(path)
    if not path.is_file():
        raise FaceFactorsError(f"ONNX model {path} does not exist.")
    return onnx.load(str(path)), path


def quantize_onnx(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    calibration: np.ndarray | torch.Tensor,
    per_channel: bool = True,
) -> Path:
    """Write a static int8 QDQ copy of the fp32 ONNX model ``src`` to ``dst``.

    The graph is first cleaned up by onnxruntime's ``quant_pre_process`` (shape
    inference, fusions; its files go to a temporary folder), then quantised with
    activation ranges measured (MinMax) on ``calibration``. ``dst`` is written
    atomically.

    Args:
        src: fp32 model from :func:`facefactors.export.onnx.export_onnx`.
        dst: destination ``.onnx`` file (must differ from ``src``).
        calibration: (N, 3, S, S) float32 images in [-1, 1], S the model's input size.
        per_channel: one weight scale per output channel (else one per tensor).

    Returns:
        ``dst``.

    Raises:
        FaceFactorsError: onnx/onnxruntime missing, ``src`` missing, ``dst`` equal to
            ``src`` or ``calibration`` of the wrong shape.
    """
    onnx, _ort = require_onnx()  # before the imports below, which would fail less clearly
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from facefactors.checkpoint import atomic_write_bytes

    proto, src = _load(src)
    dst = Path(dst)
    if dst.resolve() == src.resolve():
        raise FaceFactorsError(f"The int8 model would overwrite its source {src}.")
    images = _as_images(calibration, _input_size(proto, src), "Calibration images")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches: Iterator[np.ndarray] = iter(
                images[i : i + _CHUNK] for i in range(0, len(images), _CHUNK)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    with tempfile.TemporaryDirectory(prefix="facefactors-quant-") as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(src), str(pre))
        quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        quantized = onnx.load(str(out))
    del quantized.metadata_props[:]
    for entry in proto.metadata_props:
        quantized.metadata_props.add(key=entry.key, value=entry.value)
    description = {
        "format": "int8 QDQ (onnxruntime static)",
        "weights": "int8 " + ("per-channel" if per_channel else "per-tensor"),
        "activations": "uint8 per-tensor, MinMax",
        "calibration_images": len(images),
    }
    quantized.metadata_props.add(key="quantization", value=json.dumps(description))
    atomic_write_bytes(dst, quantized.SerializeToString())
    return dst


def logits(path: str | os.PathLike, images: np.ndarray) -> np.ndarray:
    """(N, 3, S, S) float32 → (N, K) logits of an ONNX model, in chunks."""
    sess = session(path)
    chunks = [images[i : i + _CHUNK] for i in range(0, len(images), _CHUNK)]
    return np.concatenate([sess.run([OUTPUT_NAME], {INPUT_NAME: c})[0] for c in chunks])


def agreement(
    fp32_path: str | os.PathLike, int8_path: str | os.PathLike, images: np.ndarray | torch.Tensor
) -> dict[str, float | int]:
    """How closely the int8 model follows the fp32 one on ``images``.

    ``images`` (N, 3, S, S) in [-1, 1] should be held out from calibration.

    Returns:
        ``images`` (N), ``top1_agreement`` (fraction of equal argmax classes),
        ``max_abs_diff`` (largest |int8 - fp32| logit) and ``logit_range`` (largest
        minus smallest fp32 logit: the scale that ``max_abs_diff`` is measured against).
    """
    proto, fp32_path = _load(fp32_path)
    _load(int8_path)
    x = _as_images(images, _input_size(proto, fp32_path), "Held-out images")
    ref, got = logits(fp32_path, x), logits(int8_path, x)
    return {
        "images": len(x),
        "top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
        "max_abs_diff": float(np.abs(got - ref).max()),
        "logit_range": float(ref.max() - ref.min()),
    }


def quantize_exported(
    fp32_path: str | os.PathLike,
    int8_path: str | os.PathLike,
    calibration_count: int = CALIBRATION_COUNT,
    held_out_count: int = HELD_OUT_COUNT,
) -> dict[str, Any]:
    """Quantise an exported model on synthetic faces and check it on held-out ones.

    Returns:
        ``int8`` (path), ``calibration_images`` and the :func:`agreement` keys.
    """
    proto, src = _load(fp32_path)
    size = _input_size(proto, src)
    calibration = synthetic_calibration(size, calibration_count, CALIBRATION_SEED)
    path = quantize_onnx(src, int8_path, calibration)
    held_out = synthetic_calibration(size, held_out_count, HELD_OUT_SEED)
    return {"int8": str(path), "calibration_images": len(calibration)} | agreement(
        src, path, held_out
    )
