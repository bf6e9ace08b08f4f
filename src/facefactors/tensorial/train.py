"""The tensorial training loop: BEGAN's D and G steps over epochs, in a resumable run folder.

    RUN/config.yaml              the full config (method: tensorial)
    RUN/metrics.jsonl            loss/g/recon, loss/g/adv, ..., loss/d/real, began/k,
                                 began/M, val/psnr ... (one line per log step)
    RUN/samples/step_NNNNNN.png  input | reconstruction | albedo | normals | shading |
                                 mask | background | frontal reconstruction
    RUN/checkpoints/last.pt      after every epoch (and when max_steps stops the run)
    RUN/model.pt                 the generator alone with its config, for evaluation
                                 and editing

It stands on :mod:`facefactors.training` exactly as IPD-FER's trainer does: data
order is a function of (seed, epoch), every RNG and BEGAN's k_t are saved, so
``resume=True`` continues bit-for-bit; a NaN or inf loss stops the run before any
update from it; under torchrun each network trains in its own DDP wrapper.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from facefactors.checkpoint import entry, save_checkpoint
from facefactors.config import save_config_yaml, to_dict
from facefactors.tensorial.batch import Batch
from facefactors.tensorial.checkpoints import FORMAT, load_verifier, model_state, read_checkpoint
from facefactors.tensorial.config import TensorialConfig, validate
from facefactors.tensorial.data import FaceTable, TensorialData, build_data, collate
from facefactors.tensorial.model import TensorialModel, Z0AutoEncoder, build_model
from facefactors.tensorial.phases import TensorialPhases, build_phases, train_step
from facefactors.training import distributed as ddp
from facefactors.training.loop import (
    autocast_factory,
    epoch_loader,
    progress,
    steps_per_epoch,
    total_steps,
)
from facefactors.training.run import (
    MetricsLog,
    check_fresh_or_resume,
    last_checkpoint,
    sample_path,
    save_png,
    tile,
)
from facefactors.training.state import (
    restore_training_state,
    save_training_state,
)

GRID_COLUMNS = (
    "input", "reconstruction", "albedo", "normals", "shading", "mask", "background", "frontal",
)  # fmt: skip


@dataclass
class TrainResult:
    """What a finished (or stopped) run reached."""

    out: Path
    step: int
    epoch: int
    generator: TensorialModel | Z0AutoEncoder
    metrics: dict[str, float] = field(default_factory=dict)
    rank: int = 0


class _Nets(nn.Module):
    """Generator and discriminator under one state dict, for the training checkpoint."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module) -> None:
        super().__init__()
        self.generator, self.discriminator = generator, discriminator


def _as_image(t: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Any (N, C, S, S) map as a 3-channel image in [-1, 1], ``lo..hi`` mapped to black..white."""
    t = t.float().detach()
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    return ((t - lo) / (hi - lo) * 2 - 1).clamp(-1, 1)


@torch.no_grad()
def sample_grid(generator: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Tile :data:`GRID_COLUMNS` for a batch (Z_0 has only input and reconstruction)."""
    was = generator.training
    generator.eval()
    try:
        out = generator(x)
    finally:
        generator.train(was)
    cols = [x, out.recon]
    if not isinstance(generator, Z0AutoEncoder):
        shade_hi = float(out.shading.detach().amax().clamp_min(1e-6))
        cols += [
            _as_image(out.albedo, 0, 1),
            _as_image(out.normals, -1, 1),
            _as_image(out.shading, 0, shade_hi),
            _as_image(out.mask, 0, 1),
            _as_image(out.background, 0, 1),
            out.frontal.clamp(-1, 1),
        ]
    return tile([c.float().cpu() for c in cols])


@torch.no_grad()
def reconstruction_psnr(
    generator: nn.Module, table: FaceTable, device: torch.device, batch_size: int = 64
) -> float:
    """Mean PSNR (dB, images in [0, 1]) of the reconstructions of ``table``'s faces."""
    was = generator.training
    generator.eval()
    psnrs = []
    try:
        for start in range(0, len(table), batch_size):
            x = table.columns["image"][start : start + batch_size].to(device)
            mse = ((generator(x).recon - x) / 2).pow(2).flatten(1).mean(1).clamp_min(1e-10)
            psnrs.append(-10 * torch.log10(mse))
    finally:
        generator.train(was)
    return float(torch.cat(psnrs).mean()) if psnrs else float("nan")


def _sync_k(phases: TensorialPhases, info: ddp.DistInfo) -> None:
    """Average BEGAN's k_t over processes (each rank updated it from its own batch)."""
    if info.distributed:
        phases.state.k = ddp.all_reduce_mean({"k": phases.state.k}, info)["k"]


def train(
    cfg: TensorialConfig,
    out: str | Path,
    *,
    resume: bool = False,
    data: TensorialData | None = None,
) -> TrainResult:
    """Train the tensorial model (or Z_0) into the run folder ``out``.

    Args:
        cfg: the run config (with ``resume``, the checkpoint's config).
        out: run folder.
        resume: continue from ``out/checkpoints/last.pt``.
        data: prebuilt tables (tests, the demo); default: :func:`build_data`.

    Raises:
        ConfigError, DataError, CheckpointError, NonFiniteLossError.
    """
    cfg = validate(cfg)
    t = cfg.train
    out = Path(out)
    info = ddp.init_distributed(t.device)
    bar = None
    try:
        if t.threads:
            torch.set_num_threads(t.threads)
        ckpt = check_fresh_or_resume(out, resume)
        state = None if ckpt is None else read_checkpoint(ckpt)
        torch.manual_seed(t.seed)
        data = data or build_data(cfg)
        nets = build_model(cfg.model)
        model = _Nets(*nets).to(info.device)
        verifier = None
        if cfg.verifier_checkpoint and cfg.loss.active("veri"):
            verifier = load_verifier(cfg.verifier_checkpoint).to(info.device)
            ddp.broadcast_module(verifier, info)
        wrapped = type(nets)(*(ddp.ddp_wrap(m, info) for m in nets))
        phases = build_phases(nets, cfg, verifier, wrapped)
        optimizers = {p.name: p.optimizer for p in phases}
        step, epoch, skip = 0, 0, 0
        if state is not None:
            step, epoch, skip = restore_training_state(state, model, optimizers, None, ckpt)
            phases.state.k = float(entry(state, "began_k", ckpt, (int, float)))
        if info.is_main:
            (out / "samples").mkdir(parents=True, exist_ok=True)
            save_config_yaml(cfg, out / "config.yaml")
        spe = steps_per_epoch(data.train, t.batch_size, t.seed, info)
        total = total_steps(t.epochs, spe, t.max_steps)
        log = MetricsLog(out / "metrics.jsonl" if info.is_main else None,
                         step if state is not None else None)  # fmt: skip
        log.restore_window(state.get("metrics_window") if state is not None else None, ckpt)
        autocast = autocast_factory(info.device, t.bf16)
        preview = data.val.columns["image"][: t.sample_count].to(info.device)
        record: dict[str, float] = dict(state["metrics"]) if state is not None else {}

        def save() -> None:
            if info.is_main:
                save_training_state(
                    last_checkpoint(out), format=FORMAT, config=to_dict(cfg), model=model,
                    optimizers=optimizers, step=step, epoch=epoch, batch_in_epoch=skip,
                    metrics=record,
                    extra={"began_k": phases.state.k, "metrics_window": log.window()},
                )  # fmt: skip

        def grid() -> None:
            if info.is_main and len(preview):
                save_png(sample_path(out, step), sample_grid(nets.generator, preview))

        model.train()
        bar = progress(total, step, f"train {cfg.model.variant}", info)
        tick = time.perf_counter()
        while epoch < t.epochs and step < total:
            loader = epoch_loader(
                data.train, batch_size=t.batch_size, seed=t.seed, info=info, epoch=epoch,
                skip=skip, collate_fn=collate, num_workers=t.num_workers,
            )  # fmt: skip
            for raw in loader:
                batch = Batch.from_synth(raw, info.device)
                logs = train_step(phases, batch, step + 1, autocast)
                _sync_k(phases, info)
                step, skip = step + 1, skip + 1
                log.add(logs)
                bar.update(1)
                if step % t.log_every == 0 or step == total:
                    seconds = (time.perf_counter() - tick) / max(log.count, 1)
                    record = log.flush(info, step=step, epoch=epoch, **{"time/step_s": seconds})
                    bar.set_postfix(recon=f"{record.get('loss/g/recon', float('nan')):.3g}",
                                    k=f"{phases.state.k:.3f}")  # fmt: skip
                    tick = time.perf_counter()
                if t.sample_every and step % t.sample_every == 0:
                    grid()
                if step >= total:
                    break
            if skip >= spe:  # the epoch is complete
                epoch, skip = epoch + 1, 0
                if t.validate and info.is_main:
                    psnr = reconstruction_psnr(nets.generator, data.val, info.device)
                    record = log.write({"step": step, "epoch": epoch, "val/psnr": psnr})
            save()
            ddp.barrier(info)
        if info.is_main:
            save_checkpoint(out / "model.pt", model_state(nets.generator, cfg))
            grid()
    finally:
        if bar is not None:
            bar.close()
        ddp.shutdown(info)
    return TrainResult(out, step, epoch, nets.generator, record, info.rank)
