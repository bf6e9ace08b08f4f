"""Exported ONNX classifiers (fp32 or int8) as drop-in expression models for inference.

:func:`load_onnx_classifier` opens a ``.onnx`` file written by ``facefactors
export`` (:mod:`facefactors.export.onnx`, or its int8 copy from
:mod:`facefactors.export.quantize`) in an onnxruntime CPU session and wraps it in
:class:`OnnxExpressionClassifier`, which has the interface of
:class:`~facefactors.export.classifier.ExpressionClassifier` that
:class:`~facefactors.inference.ExpressionRecognizer` uses: ``classes``,
``input_size`` and ``forward(x) -> logits``. The class names and input size come
from the file's ``metadata_props``.

onnx and onnxruntime are the optional extra ``facefactors[onnx]``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from torch import nn

from facefactors.errors import CheckpointError, DataError, FaceFactorsError
from facefactors.export.onnxrt import require_onnx


class OnnxExpressionClassifier(nn.Module):
    """An onnxruntime session behind the ``ExpressionClassifier`` interface.

    It holds no torch parameters: ``.eval()`` and ``.to("cpu", memory_format=...)``
    are no-ops, any other device is refused (onnxruntime runs it on the CPU).

    Args:
        session: an ``onnxruntime.InferenceSession`` of the exported graph.
        classes: class names in logit order.
        input_size: S of the (B, 3, S, S) input.
        path: the file, named in error messages.
    """

    def __init__(self, session: Any, classes: list[str], input_size: int, path: Path) -> None:
        super().__init__()
        self.session = session
        self.classes = list(classes)
        self.input_size = int(input_size)
        self.path = Path(path)
        self._input_name = session.get_inputs()[0].name
        self._output_name = session.get_outputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [-1, 1] → (B, K) float32 logits, on ``x``'s device.

        Raises:
            DataError: ``x`` is not (B, 3, S, S) for this model's S.
        """
        s = self.input_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, s, s):
            raise DataError(
                f"ONNX model {self.path} takes (B, 3, {s}, {s}) images, got {tuple(x.shape)}."
            )
        if x.shape[0] == 0:
            return torch.zeros(0, len(self.classes), device=x.device)
        # A channels-last tensor is a strided view of NHWC memory; onnxruntime needs NCHW.
        images = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        (logits,) = self.session.run([self._output_name], {self._input_name: images})
        return torch.from_numpy(np.asarray(logits, dtype=np.float32)).to(x.device)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Not available: the exported graph ends in the logits.

        Raises:
            FaceFactorsError: always.
        """
        raise FaceFactorsError(
            f"ONNX model {self.path} only outputs logits; the features f_exp need the torch "
            "checkpoint (model.pt or last.pt) it was exported from."
        )

    def to(self, *args: Any, **kwargs: Any) -> OnnxExpressionClassifier:
        """Accept the CPU (any memory format, a no-op); refuse other devices.

        Raises:
            FaceFactorsError: a device other than the CPU is requested.
        """
        device = kwargs.get("device")
        for a in args:  # .to(device), .to(tensor), .to(device, dtype); a dtype alone has none
            if isinstance(a, torch.Tensor):
                device = a.device
            elif isinstance(a, str | int | torch.device):
                device = a
        if device is not None and torch.device(device).type != "cpu":
            self._refuse(torch.device(device))
        return super().to(*args, **kwargs)

    def cuda(self, device: Any = None) -> NoReturn:
        """Refused: onnxruntime runs this model on the CPU."""
        self._refuse(torch.device("cuda" if device is None else device))

    def _refuse(self, device: torch.device) -> NoReturn:
        raise FaceFactorsError(
            f"ONNX model {self.path} runs on the CPU only (onnxruntime CPU provider), not on "
            f"{device}; use --device cpu, or the torch checkpoint model.pt for {device.type}."
        )

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, classes={len(self.classes)}, input_size={self.input_size}"


def _onnx_reason(exc: Exception) -> str:
    """The useful end of an onnxruntime load error (after its "Load model from X failed:")."""
    text = str(exc).strip()
    text = text.split("failed:", 1)[1] if "failed:" in text else text
    lines = text.strip().splitlines()
    return lines[0].strip().rstrip(".") if lines else type(exc).__name__


def _metadata(meta: dict[str, str], path: Path) -> tuple[list[str], int]:
    """``(classes, input_size)`` from an exported file's metadata."""
    if "classes" not in meta:
        raise CheckpointError(
            f"ONNX model {path} is not a facefactors expression-model export (its metadata "
            "has no 'classes'); export one with `facefactors export`."
        )
    try:
        classes = json.loads(meta["classes"])
        size = int(meta.get("input_size", ""))
    except (ValueError, TypeError):
        classes, size = None, 0
    if not isinstance(classes, list) or not classes or size <= 0:
        raise CheckpointError(
            f"ONNX model {path} has malformed facefactors metadata (classes "
            f"{meta.get('classes')!r}, input_size {meta.get('input_size')!r})."
        )
    return [str(c) for c in classes], size


def load_onnx_classifier(path: str | os.PathLike) -> OnnxExpressionClassifier:
    """Open an exported fp32 or int8 ``.onnx`` classifier for CPU inference.

    The session uses ``torch.get_num_threads()`` intra-op threads (read now).

    Raises:
        FaceFactorsError: onnx/onnxruntime are not installed (names the pip extra).
        CheckpointError: the file is missing, unreadable, not a facefactors export,
            or its graph does not fit its metadata.
    """
    from facefactors.export.onnxrt import session as ort_session

    require_onnx()
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX model {path} does not exist.")
    try:
        sess = ort_session(path, threads=torch.get_num_threads())
    except Exception as exc:  # onnxruntime raises its own types for corrupt files
        raise CheckpointError(
            f"ONNX model {path} could not be read (truncated or corrupt?): {_onnx_reason(exc)}."
        ) from None
    classes, size = _metadata(sess.get_modelmeta().custom_metadata_map, path)
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1 or list(inputs[0].shape[1:]) != [3, size, size]:
        raise CheckpointError(
            f"ONNX model {path} does not take one (B, 3, {size}, {size}) input and return "
            "one logits output, as its metadata says."
        )
    k = outputs[0].shape[-1] if outputs[0].shape else None
    if isinstance(k, int) and k != len(classes):
        raise CheckpointError(
            f"ONNX model {path} returns {k} logits but its metadata names {len(classes)} classes."
        )
    return OnnxExpressionClassifier(sess, classes, size, path).eval()
