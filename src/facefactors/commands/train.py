"""``facefactors train``: train IPD-FER (or ``id``/``baseline``), or the tensorial model, into a run folder.

The preset's ``method`` key picks the trainer (``tensorial`` for ``tensorial_synth_*``
and ``z0_synth_quick``; IPD-FER otherwise); ``--resume`` reads it from the checkpoint.

facefactors train --config ipd_synth_quick --out runs/ipd
facefactors train --config ipd_synth_quick --out runs/ipd --set train.epochs=3 --set loss.use_cos=false
facefactors train --out runs/ipd --resume --set train.epochs=40
torchrun --nproc-per-node 2 -m facefactors train --config ipd_synth_quick --out runs/ipd
"""

from __future__ import annotations

import argparse

from facefactors.commands.common import (
    add_config_option,
    add_overrides_option,
    add_resume_option,
    run_config,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train IPD-FER or a variant (baseline, id), or the tensorial model, into a run folder",
        description="Train with Algorithm 1 of the IPD-FER paper. The run folder gets "
        "config.yaml, metrics.jsonl, samples/, checkpoints/last.pt (every epoch) and "
        "model.pt (the E_exp + C_exp inference export).",
    )
    add_config_option(
        p, "ipd_synth_quick, id_synth_quick, baseline_synth_quick, tensorial_synth_quick"
    )
    p.add_argument("--out", required=True, metavar="RUN", help="run folder")
    add_overrides_option(p, "train.epochs=3")
    add_resume_option(p, "RUN")
    p.set_defaults(func=run)


def _method(args: argparse.Namespace) -> str:
    """``tensorial`` when the preset (or the resumed checkpoint) says so, else ``ipd``."""
    from pathlib import Path

    from facefactors.checkpoint import load_checkpoint
    from facefactors.config import read_yaml, resolve_preset

    if args.resume:
        ckpt = Path(args.out) / "checkpoints" / "last.pt"
        fmt = load_checkpoint(ckpt).get("format", "") if ckpt.is_file() else ""
        return "tensorial" if str(fmt).startswith("facefactors.tensorial") else "ipd"
    if args.config is None:
        return "ipd"  # run_config names the missing --config
    return str(read_yaml(resolve_preset(args.config)).get("method", "ipd"))


def _trainer(method: str):
    """(config class, validate, checkpoint reader, train, example preset, what model.pt holds,
    metric prefixes to print) of ``method``."""
    if method == "tensorial":
        from facefactors.tensorial.checkpoints import read_checkpoint
        from facefactors.tensorial.config import TensorialConfig, validate
        from facefactors.tensorial.train import train

        return (TensorialConfig, validate, read_checkpoint, train, "tensorial_synth_quick",
                "generator", ("val/",))  # fmt: skip
    from facefactors.ipd.config import IPDConfig, validate_config
    from facefactors.ipd.train import read_checkpoint, train

    return (IPDConfig, validate_config, read_checkpoint, train, "ipd_synth_quick",
            "inference export", ("val/", "loss/"))  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    cls, validate, read_checkpoint, train, example, export, shown_keys = _trainer(_method(args))
    out = Path(args.out)
    cfg = run_config(
        cls, args, lambda: read_checkpoint(out / "checkpoints" / "last.pt")["config"], example
    )
    validate(cfg)
    result = train(cfg, out, resume=args.resume)
    if result.rank != 0:  # under torchrun, one report is enough
        return 0
    shown = {k: round(v, 4) for k, v in result.metrics.items() if k.startswith(shown_keys)}
    print(f"trained {cfg.model.variant} to step {result.step} (epoch {result.epoch}): {shown}")
    print(f"run folder: {out} ({export}: {out / 'model.pt'})")
    return 0
