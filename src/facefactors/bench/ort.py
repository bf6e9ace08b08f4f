"""onnxruntime timings for ``facefactors bench infer``: fp32 and static int8.

The classifier is exported with :func:`facefactors.export.onnx.export_onnx`,
quantised with :func:`facefactors.export.quantize.quantize_onnx` (calibrated on a few
synthetic faces, enough for timing) and both files are timed on the same
random batch and single image as the torch settings.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from facefactors.export.classifier import ExpressionClassifier

CALIBRATION_COUNT = 32  # synthetic faces: quantisation ranges good enough for timing


def ort_available() -> bool:
    """Whether onnx and onnxruntime can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def bench_ort(
    net: ExpressionClassifier,
    batch: int,
    seconds: float,
    threads: int,
    timeit: Callable[..., float],
) -> list[dict]:
    """Images/s (batch of ``batch``) and single-image latency of onnxruntime fp32 and int8.

    Args:
        net: the classifier, on the CPU (its weights are not changed).
        batch: images per batched call; inputs are (batch, 3, S, S) uniform in [-1, 1].
        seconds: minimum measuring time of the batched call.
        threads: onnxruntime ``intra_op_num_threads``.
        timeit: ``timeit(fn, seconds, min_runs=, warmup=)`` → mean seconds per call.

    Returns:
        Two dicts (fp32, int8) with ``backend`` = "onnxruntime", ``dtype``,
        ``channels_last``, ``compile`` (False), ``images_per_s``, ``latency_ms_single``.
    """
    from facefactors.export.onnx import INPUT_NAME, OUTPUT_NAME, export_onnx
    from facefactors.export.onnxrt import session
    from facefactors.export.quantize import quantize_onnx, synthetic_calibration

    size = int(net.input_size)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).numpy()
    one = np.ascontiguousarray(x[:1])
    results = []
    with tempfile.TemporaryDirectory(prefix="facefactors-bench-") as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        export_onnx(net, fp32)
        quantize_onnx(fp32, int8, synthetic_calibration(size, CALIBRATION_COUNT))
        for dtype, path in (("fp32", fp32), ("int8", int8)):
            sess = session(path, threads)

            def call(inp: np.ndarray, sess=sess) -> Callable[[], None]:
                return lambda: sess.run([OUTPUT_NAME], {INPUT_NAME: inp})

            per_batch = timeit(call(x), seconds, warmup=2)
            single = timeit(call(one), max(seconds / 4, 0.5), min_runs=10, warmup=2)
            results.append(
                {
                    "backend": "onnxruntime",
                    "dtype": dtype,
                    "channels_last": False,
                    "compile": False,
                    "images_per_s": batch / per_batch,
                    "latency_ms_single": single * 1e3,
                }
            )
    return results
