"""Speed benchmarks for ``facefactors bench train`` and ``facefactors bench infer``.

``bench_train`` times one optimisation step of the baseline (E_exp + C_exp with
cross-entropy) and one full IPD-FER step (Algorithm 1's three phases) on random
images with the default networks, and reports their ratio (the paper's was ~5:
Table 7). ``bench_infer`` times the inference path, E_exp + C_exp, batched and
for single images, in several precision/layout/compile settings.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from facefactors.config import apply_overrides, from_dict
from facefactors.ipd.config import IPDConfig
from facefactors.ipd.export import ExpressionClassifier
from facefactors.ipd.model import IPDModel, build_model
from facefactors.ipd.phases import build_phases, run_phase
from facefactors.ipd.train import autocast_factory, prepare_batch


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
    variant: str,
    batch: int,
    size: int,
    dev: torch.device,
    bf16: bool,
    channels_last: bool,
    schedule: str = "alternating",
    overrides: list[str] | None = None,
) -> tuple[Callable[[], None], dict[str, float]]:
    """A closure running one training step of ``variant`` and its per-phase timings.

    The step is the trainer's: :func:`prepare_batch` (flips, f_id once) and then
    every phase; only the data come from ``torch.rand``.
    """
    cfg = from_dict(IPDConfig, apply_overrides({}, overrides))
    cfg.model.variant = variant
    cfg.data.size = size
    cfg.train.bf16, cfg.train.channels_last, cfg.train.schedule = bf16, channels_last, schedule
    model = build_model(cfg).to(dev).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    phases = build_phases(model, cfg)
    trainable = list({id(m): m for p in phases for m in p.modules}.values())
    raw = {
        "image": torch.rand(batch, 3, size, size) * 2 - 1,
        "expression": torch.randint(0, len(model.classes), (batch,)),
        "pose_bin": torch.randint(0, cfg.model.pose_bins, (batch,)),
    }
    autocast = autocast_factory(dev, bf16)
    phase_s = {"e_id": 0.0} | {p.name: 0.0 for p in phases}

    def timed(name: str, fn: Callable[[], object]) -> object:
        t0 = time.perf_counter()
        out = fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        phase_s[name] += time.perf_counter() - t0
        return out

    def step() -> None:
        b = timed("e_id", lambda: prepare_batch(raw, model, dev, cfg, autocast))
        for p in phases:
            timed(p.name, lambda p=p: run_phase(p, b, trainable, 1, autocast))

    return step, phase_s


def bench_train(
    batch: int = 32,
    size: int = 112,
    seconds: float = 5.0,
    threads: int | None = None,
    device: str = "cpu",
    bf16: bool = False,
    channels_last: bool = False,
    schedule: str = "alternating",
    overrides: list[str] | None = None,
) -> dict:
    """Seconds per training step of the baseline and of IPD-FER, and their ratio.

    Baseline and IPD steps alternate, so both see the same machine load, and the
    medians over at least ``seconds`` (and 3 rounds) are reported. ``overrides``
    are ``--set``-style config changes (e.g. ``model.decoder_channels=8``).

    Returns:
        ``baseline_step_s``, ``ipd_step_s`` (medians), ``ratio``, ``baseline_gflop``,
        ``ipd_gflop`` and ``flop_ratio`` (conv/matmul arithmetic per step), ``ipd_phase_s``
        (median seconds per step in E_id and each phase), ``ipd_images_per_s``,
        ``rounds`` and the settings.
    """
    dev = _setup(threads, device)
    out: dict = {
        "batch": batch,
        "size": size,
        "device": str(dev),
        "threads": torch.get_num_threads(),
    }
    out |= {"dtype": "bf16" if bf16 else "fp32", "channels_last": channels_last}
    out |= {"schedule": schedule, "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    out["overrides"] = list(overrides or [])
    torch.manual_seed(0)
    args = (batch, size, dev, bf16, channels_last, schedule, overrides)
    base_step, _ = _train_step_fn("baseline", *args)
    ipd_step, phase_s = _train_step_fn("ipd", *args)
    base_step(), ipd_step()  # warm-up
    out["baseline_gflop"] = _step_gflop(base_step)
    out["ipd_gflop"] = _step_gflop(ipd_step)
    # The ratio of arithmetic (conv + matmul FLOPs, forward and backward): the floor
    # that the time ratio would reach if every network ran at the same efficiency.
    out["flop_ratio"] = out["ipd_gflop"] / out["baseline_gflop"]
    base_t: list[float] = []
    ipd_t: list[float] = []
    phases: dict[str, list[float]] = {k: [] for k in phase_s}
    start = time.perf_counter()
    while len(ipd_t) < 3 or time.perf_counter() - start < seconds:
        base_t.append(_once(base_step))
        phase_s.update({k: 0.0 for k in phase_s})
        ipd_t.append(_once(ipd_step))
        for k, v in phase_s.items():
            phases[k].append(v)
    out["baseline_step_s"] = statistics.median(base_t)
    out["ipd_step_s"] = statistics.median(ipd_t)
    out["ipd_phase_s"] = {k: statistics.median(v) for k, v in phases.items()}
    out["ratio"] = out["ipd_step_s"] / out["baseline_step_s"]
    out["ipd_images_per_s"] = batch / out["ipd_step_s"]
    out["rounds"] = len(ipd_t)
    return out


def _step_gflop(step: Callable[[], None]) -> float:
    """GFLOP (10⁹ multiply-adds counted as 2) of conv/matmul in one training step."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / 1e9


def _once(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


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

    per_batch = _timeit(run(batch), seconds, warmup=2)
    single = _timeit(run(1), max(seconds / 4, 0.5), min_runs=10, warmup=2)
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
    (:mod:`facefactors.ipd.bench_ort`) on the same batch, with as many threads as torch.

    Returns:
        ``images_per_s``, ``latency_ms_single``, ``backend``, ``dtype``,
        ``channels_last``, ``compile`` (of the fastest batched setting),
        ``best_latency_ms_single`` (of the fastest single-image one), ``threads``,
        ``batch``, ``size``, ``device``, ``cpu_capability`` and ``all``.
    """
    from facefactors.ipd.bench_ort import bench_ort, ort_available

    dev = _setup(threads, device)
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
        results += bench_ort(net, batch, seconds, torch.get_num_threads(), _timeit)
    best = max(results, key=lambda r: r["images_per_s"])
    fastest_single = min(r["latency_ms_single"] for r in results)
    common = {"threads": torch.get_num_threads(), "batch": batch, "size": size, "device": str(dev)}
    common["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return best | common | {"best_latency_ms_single": fastest_single, "all": results}
