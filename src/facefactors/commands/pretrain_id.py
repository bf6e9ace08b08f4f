"""``facefactors pretrain-id``: train the identity encoder (E_id and N of IPD-FER).

Writes ``OUT/backbone.pt``, which ``facefactors train --set model.id_checkpoint=
OUT/backbone.pt`` (or :func:`facefactors.nets.create_backbone`) loads.
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
        "pretrain-id",
        help="train a face-recognition backbone (ArcFace) for the identity encoder",
        description="Train a backbone with an ArcFace/CosFace margin head on an identity "
        "folder (root/<identity>/*.jpg) or on synthetic identities, report verification "
        "accuracy on held-out identities and save OUT/backbone.pt.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="run folder to create")
    add_config_option(p, "pretrain_synth_quick")
    add_overrides_option(p, "epochs=3")
    p.add_argument(
        "--data",
        default=None,
        metavar="ROOT",
        help="identity folder root/<identity>/*.jpg (default: the config's data, 'synth')",
    )
    add_resume_option(p, "OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from facefactors.config import load_config
    from facefactors.errors import DataError
    from facefactors.recognition.train import PretrainConfig, pretrain, read_checkpoint

    overrides = list(args.overrides)
    if args.data is not None:
        if not Path(args.data).is_dir():
            raise DataError(f"Identity folder {args.data} does not exist.")
        overrides.append(f"data={json.dumps(str(args.data))}")
    args.overrides = overrides
    ckpt = Path(args.out) / "checkpoints" / "last.pt"
    if args.config is None and not args.resume:  # the full-size defaults
        cfg = load_config(PretrainConfig, None, overrides)
    else:
        cfg = run_config(
            PretrainConfig, args, lambda: read_checkpoint(ckpt)["config"], "pretrain_synth_quick"
        )
    result = pretrain(cfg, args.out, resume=args.resume)
    v = result.verification
    print(
        f"verification on held-out identities: acc {v['acc']:.4f} ± {v['acc_std']:.4f} "
        f"({cfg.verify_folds}-fold), AUC {v['auc']:.4f}, threshold {v['best_threshold']:.3f}, {v['pairs']} pairs"
    )
    print(f"saved {result.backbone_path} ({result.seconds:.0f} s)")
    return 0
