"""``facefactors fit3d PREPARED``: pseudo ground truth for a prepared folder of faces.

Fits our linear face model to every aligned crop (:mod:`facefactors.fit3d`) and writes
``PREPARED/fit3d/`` (resumable), which ``facefactors train --config tensorial_...
--set data.source=prepared data.root=PREPARED`` trains on.
"""

from __future__ import annotations

import argparse

from facefactors.commands.weights import add_weights_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit3d",
        help="fit the 3D face model to a prepared folder (pseudo ground truth for tensorial)",
        description="Fit rotation, identity and expression coefficients and SH light to every "
        "aligned face of a folder written by `facefactors prepare`, by landmarks and "
        "analysis by synthesis; writes PREPARED/fit3d/. Reruns keep finished chunks.",
    )
    p.add_argument("prepared", metavar="PREPARED", help="a folder written by `facefactors prepare`")
    p.add_argument(
        "--size", type=int, default=64, metavar="PX", help="fit and map size (default 64)"
    )
    p.add_argument("--steps", type=int, default=40, metavar="N", help="refinement steps (40)")
    p.add_argument("--batch", type=int, default=32, metavar="N", help="faces fitted together")
    p.add_argument("--chunk", type=int, default=256, metavar="N", help="faces per part file")
    p.add_argument(
        "--landmarks",
        choices=("auto", "records", "net", "mtcnn"),
        default="auto",
        help="landmark source: prepare's records, --landmark-net, MTCNN on the crop, or the "
        "first that has them (auto)",
    )
    p.add_argument(
        "--landmark-net", metavar="PATH", default=None, help="a LandmarkNet checkpoint (.pt)"
    )
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch threads")
    add_weights_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from facefactors.errors import ConfigError
    from facefactors.fit3d.fitter import Fit3dConfig
    from facefactors.fit3d.run import fit_prepared

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    for name in ("size", "steps", "batch", "chunk"):
        value = getattr(args, name)
        if value < (0 if name == "steps" else 1) or (name == "size" and value < 32):
            raise ConfigError(f"Option --{name} has an invalid value {value}.")
    cfg = Fit3dConfig(size=args.size, steps=args.steps, batch=args.batch)
    info = fit_prepared(
        args.prepared, cfg, args.landmarks, args.landmark_net, args.weights, chunk=args.chunk
    )
    skipped = ", ".join(f"{k}: {v}" for k, v in info["skipped"].items()) or "none"
    print(
        f"fitted {info['fitted']} of {info['faces']} faces (skipped {skipped}; "
        f"{info['resumed_parts']} parts reused); wrote {args.prepared}/fit3d/"
    )
    return 0
