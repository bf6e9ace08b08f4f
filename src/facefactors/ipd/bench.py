"""Speed benchmarks for ``facefactors bench train`` and ``facefactors bench infer``.

``bench_train`` times one optimisation step of the baseline (E_exp + C_exp with
cross-entropy) and one full IPD-FER step (Algorithm 1's three phases) on random
images with the default networks, and reports their ratio (the paper's was ~5:
Table 7). ``bench_infer`` times the inference path, E_exp + C_exp, batched and
for single images, in several precision/layout/compile settings.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import torch

from facefactors.ipd.config import IPDConfig
from facefactors.ipd.export import ExpressionClassifier
from facefactors.ipd.model import IPDModel
from facefactors.ipd.phases import Batch, build_phases, run_phase


def _timeit(fn: Callable[[], None], seconds: float, min_runs: int = 3, warmup: int = 1) -> float:
    """Mean seconds per call of ``fn`` over at least ``seconds`` and ``min_runs`` calls."""
    for _ in range(warmup):
        fn()
    runs, start = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < seconds:
        fn()
        runs += 1
    return (time.perf_counter() - start) / runs


def _setup(threads: int | None, device: str) -> torch.device:
    if threads:
        torch.set_num_threads(threads)
    return torch.device(device)


def _train_step_fn(
    variant: str, batch: int, size: int, dev: torch.device, bf16: bool, channels_last: bool
) -> tuple[Callable[[], None], dict[str, float]]:
    """A closure running one training step of ``variant`` and its per-phase timings."""
    cfg = IPDConfig()
    cfg.model.variant = variant
    cfg.data.size = size
    model = IPDModel(cfg.model, size).to(dev).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    phases = build_phases(model, cfg)
    trainable = list({id(m): m for p in phases for m in p.modules}.values())
    x = torch.rand(batch, 3, size, size, device=dev).mul(2).sub(1).contiguous(memory_format=fmt)
    y = torch.randint(0, len(model.classes), (batch,), device=dev)
    yp = torch.randint(0, cfg.model.pose_bins, (batch,), device=dev)
    autocast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    phase_s = {p.name: 0.0 for p in phases}

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def step() -> None:
        t0 = time.perf_counter()
        f_id = None
        if model.e_id is not None:
            with torch.no_grad(), autocast():
                f_id = model.e_id(x)
        b = Batch(x, y, yp, f_id)
        sync()
        phase_s["e_id"] = phase_s.get("e_id", 0.0) + time.perf_counter() - t0
        for p in phases:
            t0 = time.perf_counter()
            run_phase(p, b, trainable, 0, autocast)
            sync()
            phase_s[p.name] += time.perf_counter() - t0

    return step, phase_s


def bench_train(
    batch: int = 32,
    size: int = 112,
    seconds: float = 5.0,
    threads: int | None = None,
    device: str = "cpu",
    bf16: bool = False,
    channels_last: bool = False,
) -> dict:
    """Seconds per training step of the baseline and of IPD-FER, and their ratio.

    Returns:
        ``baseline_step_s``, ``ipd_step_s``, ``ratio``, ``ipd_phase_s`` (mean seconds
        per step spent in E_id and in each phase), ``ipd_images_per_s`` and the settings.
    """
    dev = _setup(threads, device)
    out: dict = {"batch": batch, "size": size, "device": str(dev), "threads": torch.get_num_threads()}
    out |= {"dtype": "bf16" if bf16 else "fp32", "channels_last": channels_last}
    torch.manual_seed(0)
    base_step, _ = _train_step_fn("baseline", batch, size, dev, bf16, channels_last)
    out["baseline_step_s"] = _timeit(base_step, seconds)
    ipd_step, phase_s = _train_step_fn("ipd", batch, size, dev, bf16, channels_last)
    ipd_step()  # warm-up outside the per-phase sums
    phase_s.update({k: 0.0 for k in phase_s})
    runs, start = 0, time.perf_counter()
    while runs < 2 or time.perf_counter() - start < seconds:
        ipd_step()
        runs += 1
    out["ipd_step_s"] = (time.perf_counter() - start) / runs
    out["ipd_phase_s"] = {k: v / runs for k, v in phase_s.items()}
    out["ratio"] = out["ipd_step_s"] / out["baseline_step_s"]
    out["ipd_images_per_s"] = batch / out["ipd_step_s"]
    return out


def _classifier(size: int, dev: torch.device) -> ExpressionClassifier:
    cfg = IPDConfig()
    cfg.model.variant = "baseline"
    model = IPDModel(cfg.model, size)
    return ExpressionClassifier(model.e_exp, model.c_exp, model.classes, size).to(dev).eval()


def _infer_one(
    batch: int, size: int, seconds: float, dev: torch.device, dtype: str, channels_last: bool, compile: bool
) -> dict:
    net = _classifier(size, dev)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    fn = torch.compile(net) if compile else net
    bf16 = dtype == "bf16"

    def run(n: int) -> Callable[[], None]:
        x = torch.rand(n, 3, size, size, device=dev).contiguous(memory_format=fmt)

        def call() -> None:
            with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                fn(x)
            if dev.type == "cuda":
                torch.cuda.synchronize()

        return call

    per_batch = _timeit(run(batch), seconds, warmup=2)
    single = _timeit(run(1), max(seconds / 4, 0.5), min_runs=10, warmup=2)
    return {
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
) -> dict:
    """Throughput and single-image latency of E_exp + C_exp.

    With ``dtype``/``channels_last``/``compile`` left None, three settings are tried
    (fp32 eager; bf16 + channels_last; bf16 + channels_last + compile) and the
    fastest is reported at the top level, all of them under ``all``.

    Returns:
        ``images_per_s``, ``latency_ms_single``, ``dtype``, ``channels_last``,
        ``compile``, ``threads``, ``batch``, ``size``, ``device`` and ``all``.
    """
    dev = _setup(threads, device)
    if dtype is None and channels_last is None and compile is None:
        settings = [("fp32", False, False), ("bf16", True, False), ("bf16", True, True)]
    else:
        settings = [(dtype or "fp32", bool(channels_last), bool(compile))]
    results = [_infer_one(batch, size, seconds, dev, *s) for s in settings]
    best = max(results, key=lambda r: r["images_per_s"])
    fastest_single = min(r["latency_ms_single"] for r in results)
    common = {"threads": torch.get_num_threads(), "batch": batch, "size": size, "device": str(dev)}
    return best | common | {"best_latency_ms_single": fastest_single, "all": results}
