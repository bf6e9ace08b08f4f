"""``facefactors bench train --method tensorial``: one BEGAN D + G step of the tensorial model.

Times the real training step (:func:`facefactors.tensorial.phases.train_step`) on
random images with pseudo ground truth of the right shapes, at the ``quick`` and
``paper`` presets (or one of them), and reports seconds per step, images per
second, the parameter count and the share of Q_(1) in it.
"""

from __future__ import annotations

import torch

from facefactors.bench.timing import setup, timeit


def _random_batch(cfg, batch: int, dev: torch.device):
    """A batch of the right shapes; yaw half frontal so E_f and E_n are exercised."""
    from facefactors.tensorial.batch import Batch

    m, s = cfg.model, cfg.model.image_size
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.rand(*shape, generator=g)

    yaw = torch.where(torch.arange(batch) % 2 == 0, torch.zeros(batch), torch.full((batch,), 40.0))
    normals = torch.nn.functional.normalize(r(batch, 3, s, s) - 0.5, dim=1)
    return Batch(
        image=r(batch, 3, s, s) * 2 - 1, rotation=torch.eye(3).expand(batch, 3, 3).clone(),
        id_coeffs=r(batch, m.id_coeff_dim), exp_coeffs=r(batch, m.exp_coeff_dim),
        vertices=r(batch, m.num_vertices, 3) * 100, normals=normals, sh=r(batch, 3, 9),
        mask=(r(batch, 1, s, s) > 0.3).float(), yaw=yaw,
    ).to(dev)  # fmt: skip


def bench_one(preset: str, batch: int, seconds: float, dev: torch.device, bf16: bool) -> dict:
    """Step time of one preset."""
    from facefactors.tensorial.config import preset as load
    from facefactors.tensorial.model import build_model
    from facefactors.tensorial.phases import build_phases, train_step
    from facefactors.training.loop import autocast_factory

    cfg = load(preset, ["train.device=cpu"])
    nets = build_model(cfg.model)
    nets = type(nets)(*(m.to(dev) for m in nets))
    phases = build_phases(nets, cfg)
    b = _random_batch(cfg, batch, dev)
    autocast = autocast_factory(dev, bf16)

    def step() -> None:
        train_step(phases, b, 1, autocast)
        if dev.type == "cuda":
            torch.cuda.synchronize()

    sec = timeit(step, seconds, min_runs=2, warmup=1)
    params = sum(p.numel() for p in nets.generator.parameters())
    return {
        "preset": preset,
        "image_size": cfg.model.image_size,
        "step_s": sec,
        "images_per_s": batch / sec,
        "generator_params": params,
        "q_share": nets.generator.q.matrix().numel() / params,
    }


def bench_tensorial(
    batch: int = 32,
    seconds: float = 5.0,
    threads: int | None = None,
    device: str = "cpu",
    bf16: bool = False,
    presets: tuple[str, ...] = ("tensorial_synth_quick", "tensorial_synth_paper"),
) -> dict:
    """Seconds per D + G step and images/s of each preset, with the settings."""
    dev = setup(threads, device)
    rows = [bench_one(p, batch, seconds, dev, bf16) for p in presets]
    return {
        "method": "tensorial",
        "batch": batch,
        "device": str(dev),
        "bf16": bf16,
        "threads": torch.get_num_threads(),
        "presets": rows,
    }
