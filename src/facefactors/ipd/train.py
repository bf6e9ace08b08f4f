"""The IPD-FER training loop: Algorithm 1 over epochs, with a resumable run folder.

    RUN/config.yaml            the full config
    RUN/metrics.jsonl          one JSON object per log step: step, epoch, lr, loss/..., acc/...
    RUN/samples/step_NNNNNN.png  grids real | G(f_id) | G(f_id+f_pose) | G(f_id+f_pose+f_exp)
    RUN/checkpoints/last.pt    written atomically after every epoch (and when stopping early)
    RUN/model.pt               the inference export (E_exp + C_exp) at the end

Data order is a pure function of (seed, epoch) and every RNG is saved, so
``resume=True`` continues exactly where the checkpoint left off. A NaN or inf
loss stops the run with :class:`NonFiniteLossError` before any update from it;
the last checkpoint on disk is the last good one.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from facefactors.checkpoint import save_checkpoint
from facefactors.config import save_config_yaml, to_dict
from facefactors.export.classifier import IPD_TRAIN_FORMAT as FORMAT
from facefactors.ipd.checks import data_warnings, warn_random_identity_encoder
from facefactors.ipd.config import IPDConfig, validate_config
from facefactors.ipd.data import PREVIEW_KEYS, DataBundle, build_datasets, collate
from facefactors.ipd.export import inference_state
from facefactors.ipd.grids import sample_grid
from facefactors.ipd.model import IPDModel, build_model
from facefactors.ipd.phases import Batch, build_phases, wrap_nets
from facefactors.ipd.warmstart import load_init_checkpoint
from facefactors.training import distributed as ddp
from facefactors.training.budget import stretch_epochs
from facefactors.training.loop import (
    Autocast,
    autocast_factory,
    epoch_loader,
    progress,
    random_hflip,
    steps_per_epoch,
    total_steps,
)
from facefactors.training.phases import Phase, run_phase, trainable_modules
from facefactors.training.run import (
    MetricsLog,
    check_fresh_or_resume,
    label_columns,
    last_checkpoint,
    sample_path,
    save_png,
)
from facefactors.training.state import (
    read_training_state,
    restore_training_state,
    save_training_state,
)


@dataclass
class TrainResult:
    """What a finished (or stopped) run reached."""

    out: Path
    step: int
    epoch: int
    model: IPDModel
    metrics: dict[str, float] = field(default_factory=dict)
    rank: int = 0  # this process's rank (only rank 0 writes the run folder)


def prepare_batch(
    raw: dict[str, torch.Tensor],
    model: IPDModel,
    device: torch.device,
    cfg: IPDConfig,
    autocast: Autocast,
) -> Batch:
    """Move a collated batch to the device, flip at random, and compute f_id once.

    The flips draw from the global torch RNG (saved in checkpoints). f_id = E_id(x)
    serves phase 1 (L_cos), phase 3 (f_{i-p}) and L_id (N(x)) without recomputation.
    """
    x = raw["image"].to(device, non_blocking=True).float()
    x_n = raw["neutral"].to(device, non_blocking=True).float() if "neutral" in raw else None
    if cfg.train.hflip and x_n is not None:  # one flip for a face and its neutral twin
        x, x_n = random_hflip(torch.cat([x, x_n], 1)).split(3, 1)
    elif cfg.train.hflip:
        x = random_hflip(x)
    if cfg.train.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    f_id = None
    if model.e_id is not None:
        with torch.no_grad(), autocast():
            f_id = model.e_id(x)
    y = raw["expression"].to(device).long()
    return Batch(x, y, raw["pose_bin"].to(device).long(), f_id, x_n)


@torch.no_grad()
def validate(
    model: IPDModel,
    ds: Dataset,
    cfg: IPDConfig,
    device: torch.device,
    autocast: Autocast,
) -> dict[str, float]:
    """Expression accuracy and cross-entropy of E_exp + C_exp on ``ds``."""
    was = model.training
    model.eval()
    hits = total = 0
    nll = 0.0
    loader = DataLoader(ds, batch_size=cfg.train.batch_size, collate_fn=collate)
    try:
        for raw in loader:
            x = raw["image"].to(device).float()
            if cfg.train.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = raw["expression"].to(device).long()
            valid = y < len(model.classes)
            with autocast():
                logits = model.classify(x).float()
            logp = torch.log_softmax(logits[valid], 1)
            nll -= float(logp.gather(1, y[valid][:, None]).sum())
            hits += int((logits[valid].argmax(1) == y[valid]).sum())
            total += int(valid.sum())
    finally:
        model.train(was)
    if total == 0:
        return {}
    return {"val/acc": hits / total, "val/loss": nll / total}


def read_checkpoint(path: str | Path) -> dict:
    """An IPD-FER training checkpoint (``RUN/checkpoints/last.pt``) as a dict.

    Raises:
        CheckpointError: missing, truncated, or written by another trainer.
    """
    return read_training_state(path, FORMAT, "an IPD-FER training checkpoint")


def load_trained(path: str | Path) -> tuple[IPDModel, IPDConfig]:
    """Rebuild a full model (all networks) from a training checkpoint ``last.pt``, in eval mode.

    Raises:
        CheckpointError: not an IPD-FER training checkpoint, or weights that do not fit.
    """
    from facefactors.checkpoint import load_weights
    from facefactors.config import from_dict

    state = read_checkpoint(path)
    cfg = from_dict(IPDConfig, state["config"])
    cfg.model.id_checkpoint = None  # the weights below already contain E_id
    model = build_model(cfg)
    load_weights(model, state["model"], path, "the IPD-FER model its config describes")
    return model.eval(), cfg


def save_run_state(
    path: str | Path,
    cfg: IPDConfig,
    model: IPDModel,
    phases: list[Phase],
    *,
    step: int,
    epoch: int,
    batch_in_epoch: int,
    metrics: dict[str, float] | None = None,
    window: dict | None = None,
) -> Path:
    """Write the resumable state of an IPD-FER run atomically (the layout of format /1).

    ``window`` is the metrics log's open averaging window (:meth:`MetricsLog.window`).
    """
    return save_training_state(
        path,
        format=FORMAT,
        config=to_dict(cfg),
        model=model,
        optimizers={p.name: p.optimizer for p in phases},
        schedulers={p.name: p.scheduler for p in phases},
        step=step,
        epoch=epoch,
        batch_in_epoch=batch_in_epoch,
        metrics=metrics,
        extra={"classes": list(model.classes), "metrics_window": window},
    )


def _open_checkpoint(out: Path, resume: bool) -> dict | None:
    """The checkpoint to resume from; refuse to overwrite a run that was not resumed."""
    path = check_fresh_or_resume(out, resume)
    return None if path is None else read_checkpoint(path)


@dataclass
class _Run:
    """Everything the loop needs, built by :func:`_setup`."""

    cfg: IPDConfig
    out: Path
    info: ddp.DistInfo
    data: DataBundle
    model: IPDModel
    phases: list[Phase]
    trainable: list[torch.nn.Module]
    autocast: Autocast
    log: MetricsLog
    preview: dict[str, torch.Tensor] | None
    steps_per_epoch: int
    total: int

    def save(self, step: int, epoch: int, skip: int, record: dict[str, float]) -> None:
        if self.info.is_main:
            save_run_state(
                last_checkpoint(self.out), self.cfg, self.model, self.phases,
                step=step, epoch=epoch, batch_in_epoch=skip, metrics=record,
                window=self.log.window(),
            )  # fmt: skip

    def grid(self, step: int) -> None:
        if self.preview is None:
            return
        x = self.preview["image"].to(self.info.device).float()
        keys = [k for k in PREVIEW_KEYS if k in self.preview]
        grid, names = sample_grid(self.model, x, [self.preview[k].float() for k in keys])
        save_png(sample_path(self.out, step), label_columns(grid, names + keys))


def _setup(
    cfg: IPDConfig, out: Path, info: ddp.DistInfo, resume: bool, data: DataBundle | None
) -> tuple[_Run, tuple[int, int, int]]:
    """Build data, model, phases; restore a checkpoint; return the run and (step, epoch, skip)."""
    t = cfg.train
    if t.threads:
        torch.set_num_threads(t.threads)
    state = _open_checkpoint(out, resume)
    torch.manual_seed(t.seed)
    data = data or build_datasets(cfg.data, cfg.model.classes, cfg.loss.true_neutral)
    cfg = replace(cfg, model=replace(cfg.model, classes=list(data.classes)))
    steps = steps_per_epoch(data.train, t.batch_size, t.seed, info)
    epochs, lr_step = stretch_epochs(t.epochs, t.lr_step_epochs, steps, t.min_steps)
    if epochs != t.epochs and info.is_main:
        print(
            f"note: train.min_steps={t.min_steps} raises train.epochs from {t.epochs} to "
            f"{epochs} ({steps} steps per epoch) and train.lr_step_epochs from "
            f"{t.lr_step_epochs} to {lr_step}.",
            file=sys.stderr,
        )
    t = replace(t, epochs=epochs, lr_step_epochs=lr_step)
    cfg = replace(cfg, train=t)
    model = build_model(cfg)
    if cfg.model.init_checkpoint and state is None:  # a resumed run has its own weights
        load_init_checkpoint(model, cfg.model.init_checkpoint)
    model = model.to(info.device)
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    phases = build_phases(model, cfg, wrap_nets(model, info))
    position = (0, 0, 0)
    if state is not None:
        position = restore_training_state(
            state,
            model,
            {p.name: p.optimizer for p in phases},
            {p.name: p.scheduler for p in phases},
            last_checkpoint(out),
        )
    main = info.is_main
    total = total_steps(t.epochs, steps, t.max_steps)
    if main:
        (out / "samples").mkdir(parents=True, exist_ok=True)
        save_config_yaml(cfg, out / "config.yaml")
        for msg in [*data.notes, *data_warnings(cfg, model, data, total, steps, out)]:
            print(f"warning: {msg}", file=sys.stderr)
    run = _Run(
        cfg=cfg,
        out=out,
        info=info,
        data=data,
        model=model.train(),
        phases=phases,
        trainable=trainable_modules(phases),
        autocast=autocast_factory(info.device, t.bf16),
        log=MetricsLog(out / "metrics.jsonl" if main else None, position[0] if state else None),
        preview=_preview(data, t.sample_count) if main and model.dec is not None else None,
        steps_per_epoch=steps,
        total=total,
    )
    run.log.restore_window(state.get("metrics_window") if state else None, last_checkpoint(out))
    return run, position


def train(
    cfg: IPDConfig, out: str | Path, *, resume: bool = False, data: DataBundle | None = None
) -> TrainResult:
    """Train an IPD-FER model (or a variant) into the run folder ``out``.

    Args:
        cfg: the run config (with ``resume``, the checkpoint's config should be passed).
        out: run folder.
        resume: continue from ``out/checkpoints/last.pt``.
        data: prebuilt datasets (tests); default: :func:`build_datasets` from ``cfg.data``.

    Returns:
        The final model, step, epoch and last metrics.

    Raises:
        ConfigError, DataError, CheckpointError, NonFiniteLossError.
    """
    cfg = validate_config(cfg)
    out = Path(out)
    warn_random_identity_encoder(cfg)
    info = ddp.init_distributed(cfg.train.device)
    bar = None
    try:
        run, (step, epoch, skip) = _setup(cfg, out, info, resume, data)
        cfg, t, model = run.cfg, run.cfg.train, run.model
        bar = progress(run.total, step, f"train {model.variant}", info)
        record: dict[str, float] = {}
        tick = time.perf_counter()
        while epoch < t.epochs and step < run.total:
            loader = epoch_loader(
                run.data.train,
                batch_size=t.batch_size,
                seed=t.seed,
                info=info,
                epoch=epoch,
                skip=skip,
                collate_fn=collate,
                num_workers=t.num_workers,
            )
            for raw in loader:
                batch = prepare_batch(raw, model, info.device, cfg, run.autocast)
                logs: dict[str, torch.Tensor] = {}
                for phase in run.phases:  # Algorithm 1: cls, disc, gen
                    logs.update(run_phase(phase, batch, run.trainable, step + 1, run.autocast))
                step, skip = step + 1, skip + 1
                run.log.add(logs)
                bar.update(1)
                if step % t.log_every == 0 or step == run.total:
                    seconds = (time.perf_counter() - tick) / max(run.log.count, 1)
                    lr = run.phases[0].optimizer.param_groups[0]["lr"]
                    record = run.log.flush(
                        info, step=step, epoch=epoch, lr=lr, **{"time/step_s": seconds}
                    )
                    bar.set_postfix(
                        {k[5:]: f"{v:.3g}" for k, v in record.items() if k.endswith("/total")}
                    )
                    tick = time.perf_counter()
                if t.sample_every and step % t.sample_every == 0:
                    run.grid(step)
                if step >= run.total:
                    break
            if skip >= run.steps_per_epoch:  # the epoch is complete
                for phase in run.phases:
                    phase.scheduler.step()
                epoch, skip = epoch + 1, 0
                if t.validate and info.is_main:
                    val = validate(model, run.data.val, cfg, info.device, run.autocast)
                    record = run.log.write({"step": step, "epoch": epoch} | val)
            run.save(step, epoch, skip, record)
            ddp.barrier(info)
        if info.is_main:
            save_checkpoint(out / "model.pt", inference_state(model, cfg))
            run.grid(step)
    finally:
        if bar is not None:
            bar.close()
        ddp.shutdown(info)
    return TrainResult(out, step, epoch, model, record, info.rank)


def _preview(data: DataBundle, count: int) -> dict[str, torch.Tensor] | None:
    """The first ``count`` validation items, with true neutral faces when available."""
    if count < 1 or len(data.val) == 0:
        return None
    view = data.preview or data.val
    return collate(view.__getitems__(list(range(min(count, len(view))))))
