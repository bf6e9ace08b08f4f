"""The onnxruntime side every ONNX module shares: tensor names, the import guard, sessions.

Kept apart so that export (:mod:`~facefactors.export.onnx`), quantisation
(:mod:`~facefactors.export.quantize`) and the runtime classifier
(:mod:`~facefactors.export.runtime`) depend on it and not on each other.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from facefactors.errors import FaceFactorsError

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
# Batch sizes of the parity check; two different ones show the batch axis is dynamic.


def require_onnx() -> tuple[ModuleType, ModuleType]:
    """Import ``onnx`` and ``onnxruntime``.

    Raises:
        FaceFactorsError: one of them is not installed (names the pip extra).
    """
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise FaceFactorsError(
            f"ONNX export needs the packages onnx and onnxruntime ({exc.name or exc} is "
            "missing); install them with `pip install facefactors[onnx]`."
        ) from None
    return onnx, onnxruntime


def session(path: str | os.PathLike, threads: int | None = None) -> Any:
    """An onnxruntime CPU session; ``threads`` sets ``intra_op_num_threads`` (default: ORT's)."""
    _onnx, ort = require_onnx()
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
