"""``facefactors bench infer``: the inference path, E_exp + C_exp, in several settings."""

from __future__ import annotations

from collections.abc import Callable

import torch

from facefactors.bench.timing import setup, timeit
from facefactors.export.classifier import ExpressionClassifier
from facefactors.ipd.config import IPDConfig
from facefactors.ipd.model import IPDModel


def _classifier(size: int, dev: torch.device) -> ExpressionClassifier:
    cfg = IPDConfig()
    cfg.model.variant = "baseline"
    model = IPDModel(cfg.model, size)
    return ExpressionClassifier(model.e_exp, model.c_exp, model.classes, size).to(dev).eval()


def _infer_one(
    batch: int,
    size: int,
    seconds: float,
    dev: torch.device,
    dtype: str,
    channels_last: bool,
    compile: bool,
) -> dict:
    net = _classifier(size, dev)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    fn = torch.compile(net) if compile else net
    bf16 = dtype == "bf16"

    def run(n: int) -> Callable[[], None]:
        x = torch.rand(n, 3, size, size, device=dev).contiguous(memory_format=fmt)

        def call() -> None:
            with (
                torch.inference_mode(),
                torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16),
            ):
                fn(x)
            if dev.type == "cuda":
                torch.cuda.synchronize()

        return call

    per_batch = timeit(run(batch), seconds, warmup=2)
    single = timeit(run(1), max(seconds / 4, 0.5), min_runs=10, warmup=2)
    return {
        "backend": "torch",
        "dtype": dtype,
        "channels_last": channels_last,
        "compile": compile,
        "images_per_s": batch / per_batch,
        "latency_ms_single": single * 1e3,
    }


def bench_infer(
    batch: int = 64,
    size: int = 112,
    seconds: float = 5.0,
    threads: int | None = None,
    device: str = "cpu",
    dtype: str | None = None,
    channels_last: bool | None = None,
    compile: bool | None = None,
    onnxruntime: bool | None = None,
) -> dict:
    """Throughput and single-image latency of E_exp + C_exp.

    With ``dtype``/``channels_last``/``compile`` left None, four torch settings are
    tried (fp32 eager; fp32 + channels_last + compile; bf16 + channels_last; bf16 +
    channels_last + compile) and the fastest is reported at the top level, all of
    them under ``all``. bf16 only pays off on CPUs with native bf16 (AVX512-BF16, AMX).

    ``onnxruntime`` (default: when no torch setting is given, onnxruntime is
    installed and the device is the CPU) adds onnxruntime fp32 and static int8
    (:mod:`facefactors.bench.ort`) on the same batch, with as many threads as torch.

    Returns:
        ``images_per_s``, ``latency_ms_single``, ``backend``, ``dtype``,
        ``channels_last``, ``compile`` (of the fastest batched setting),
        ``best_latency_ms_single`` (of the fastest single-image one), ``threads``,
        ``batch``, ``size``, ``device``, ``cpu_capability`` and ``all``.
    """
    from facefactors.bench.ort import bench_ort, ort_available

    dev = setup(threads, device)
    auto = dtype is None and channels_last is None and compile is None
    if onnxruntime is None:
        onnxruntime = auto and dev.type == "cpu" and ort_available()
    if auto:
        settings = [
            ("fp32", False, False),
            ("fp32", True, True),
            ("bf16", True, False),
            ("bf16", True, True),
        ]
    else:
        settings = [(dtype or "fp32", bool(channels_last), bool(compile))]
    results = [_infer_one(batch, size, seconds, dev, *s) for s in settings]
    if onnxruntime:
        net = _classifier(size, torch.device("cpu"))
        results += bench_ort(net, batch, seconds, torch.get_num_threads(), timeit)
    best = max(results, key=lambda r: r["images_per_s"])
    fastest_single = min(r["latency_ms_single"] for r in results)
    common = {"threads": torch.get_num_threads(), "batch": batch, "size": size, "device": str(dev)}
    common["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return best | common | {"best_latency_ms_single": fastest_single, "all": results}
