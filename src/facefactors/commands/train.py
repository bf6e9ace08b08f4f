"""``facefactors train``: train IPD-FER (or its ``id``/``baseline`` variants) into a run folder.

facefactors train --config ipd_synth_quick --out runs/ipd
facefactors train --config ipd_synth_quick --out runs/ipd --set train.epochs=3 --set loss.use_cos=false
facefactors train --out runs/ipd --resume --set train.epochs=40
torchrun --nproc-per-node 2 -m facefactors train --config ipd_synth_quick --out runs/ipd
"""

from __future__ import annotations

import argparse

from facefactors.commands.common import add_config_option, add_overrides_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train IPD-FER or a variant (baseline, id) into a run folder",
        description="Train with Algorithm 1 of the IPD-FER paper. The run folder gets "
        "config.yaml, metrics.jsonl, samples/, checkpoints/last.pt (every epoch) and "
        "model.pt (the E_exp + C_exp inference export).",
    )
    add_config_option(p, "ipd_synth_quick, id_synth_quick, baseline_synth_quick")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder")
    add_overrides_option(p, "train.epochs=3")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue RUN from checkpoints/last.pt with its saved config (plus --set overrides)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from facefactors.config import apply_overrides, from_dict, load_config
    from facefactors.errors import ConfigError
    from facefactors.ipd.config import IPDConfig, validate_config
    from facefactors.ipd.state import read_training_state
    from facefactors.ipd.train import train

    out = Path(args.out)
    if args.resume:
        if args.config is not None:
            raise ConfigError(
                f"--resume continues {out} with the config saved in its checkpoint; "
                "drop --config (use --set to change keys such as train.epochs)."
            )
        saved = read_training_state(out / "checkpoints" / "last.pt")["config"]
        cfg = from_dict(IPDConfig, apply_overrides(saved, args.overrides))
    else:
        if args.config is None:
            raise ConfigError("Pass --config PRESET (e.g. ipd_synth_quick) or --resume.")
        cfg = load_config(IPDConfig, args.config, args.overrides)
    validate_config(cfg)
    result = train(cfg, out, resume=args.resume)
    if result.rank != 0:  # under torchrun, one report is enough
        return 0
    shown = {k: round(v, 4) for k, v in result.metrics.items() if k.startswith(("val/", "loss/"))}
    print(f"trained {cfg.model.variant} to step {result.step} (epoch {result.epoch}): {shown}")
    print(f"run folder: {out} (inference export: {out / 'model.pt'})")
    return 0
