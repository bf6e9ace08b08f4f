"""``facefactors bench train``: one optimisation step of each method.

``bench_train`` times one optimisation step of the baseline (E_exp + C_exp with
cross-entropy) and one full IPD-FER step (Algorithm 1's three phases) on random
images with the default networks, and reports their ratio (the paper's was ~5:
Table 7) and the FLOP floor of that ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from facefactors.bench.timing import once, setup
from facefactors.config import apply_overrides, from_dict
from facefactors.ipd.config import IPDConfig
from facefactors.ipd.model import build_model
from facefactors.ipd.phases import build_phases
from facefactors.ipd.train import prepare_batch
from facefactors.training.loop import autocast_factory
from facefactors.training.phases import run_phase, trainable_modules


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
    trainable = trainable_modules(phases)
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
    dev = setup(threads, device)
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
        base_t.append(once(base_step))
        phase_s.update({k: 0.0 for k in phase_s})
        ipd_t.append(once(ipd_step))
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
