"""``facefactors bench <what> --json``: speed and memory benchmarks that print JSON.

Speed is measured here, never in timed tests. Each benchmark returns a flat
dict that is printed as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from facefactors.commands.common import add_overrides_option
from facefactors.commands.weights import add_weights_option


def _bench_synth(args: argparse.Namespace) -> dict:
    from facefactors.bench.synth import bench_synth

    return bench_synth(size=args.size, seconds=args.seconds, threads=args.threads)


def _bench_prepare(args: argparse.Namespace) -> dict:
    from facefactors.bench.prepare import bench_prepare

    return bench_prepare(seconds=args.seconds, threads=args.threads)


def _bench_video(args: argparse.Namespace) -> dict:
    from facefactors.bench.video import bench_video

    return bench_video(seconds=args.seconds, threads=args.threads, size=args.size)


def _bench_train(args: argparse.Namespace) -> dict:
    if args.method == "tensorial":
        from facefactors.bench.tensorial import bench_tensorial

        presets = tuple(args.presets) if args.presets else None
        return bench_tensorial(
            batch=args.batch, seconds=args.seconds, threads=args.threads, device=args.device,
            bf16=args.bf16, **({"presets": presets} if presets else {}),
        )  # fmt: skip
    from facefactors.bench.train import bench_train

    return bench_train(
        batch=args.batch, size=args.size, seconds=args.seconds, threads=args.threads,
        device=args.device, bf16=args.bf16, channels_last=args.channels_last,
        schedule=args.schedule, overrides=args.overrides,
    )  # fmt: skip


def _bench_infer(args: argparse.Namespace) -> dict:
    from facefactors.bench.infer import bench_infer

    return bench_infer(
        batch=args.batch, size=args.size, seconds=args.seconds, threads=args.threads,
        device=args.device,
    )  # fmt: skip


def _bench_edit(args: argparse.Namespace) -> dict:
    from facefactors.bench.edit import bench_edit

    preset = args.presets[0] if args.presets else "tensorial_synth_quick"
    return bench_edit(
        seconds=args.seconds, threads=args.threads, batch=args.batch, preset=preset,
        weights_dir=args.weights,
    )  # fmt: skip


def _bench_fit3d(args: argparse.Namespace) -> dict:
    from facefactors.bench.fit3d import bench_fit3d

    return bench_fit3d(
        faces=args.faces, size=args.size, steps=args.steps, threads=args.threads,
        landmark_net=args.landmark_net,
    )  # fmt: skip


# name -> (help, function). Functions import their module lazily.
BENCHES: dict[str, tuple[str, Callable[[argparse.Namespace], dict]]] = {
    "synth": ("synthetic face rendering speed (faces/s)", _bench_synth),
    "prepare": ("detect + align + pose on 640x480 frames (faces/s)", _bench_prepare),
    "train": (
        "seconds per training step: baseline vs IPD-FER (or --method tensorial)",
        _bench_train,
    ),
    "infer": ("E_exp + C_exp inference throughput and single-image latency", _bench_infer),
    "video": (
        "end-to-end video fps: decode + detect/track + align + predict, 640x480",
        _bench_video,
    ),
    "edit": (
        "tensorial editing: encode+decode faces/s, transfer_expression/s, animate fps (640x480)",
        _bench_edit,
    ),
    "fit3d": (
        "3D face fit on synthetic faces: rotation/normal/SH/vertex errors and faces/s "
        "(use --size 64)",
        _bench_fit3d,
    ),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed benchmarks that print one JSON object")
    p.add_argument("what", choices=sorted(BENCHES), help="what to benchmark")
    p.add_argument("--json", action="store_true", help="print JSON only (the default output)")
    p.add_argument("--size", type=int, default=112, help="image size in pixels")
    p.add_argument("--batch", type=int, default=32, help="batch size where it applies")
    p.add_argument("--seconds", type=float, default=5.0, help="minimum time to measure")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (bench train)")
    p.add_argument(
        "--channels-last", action="store_true", help="channels_last memory format (bench train)"
    )
    p.add_argument(
        "--schedule", choices=("alternating", "joint"), default="alternating",
        help="IPD-FER step schedule (bench train): Algorithm 1 as written, or one encoder pass",
    )  # fmt: skip
    p.add_argument(
        "--method", choices=("ipd", "tensorial"), default="ipd",
        help="bench train: IPD-FER vs its baseline, or the tensorial model's D + G step",
    )  # fmt: skip
    p.add_argument(
        "--presets", nargs="+", default=None, metavar="PRESET",
        help="bench train --method tensorial: presets to time "
        "(default: tensorial_synth_quick tensorial_synth_paper); bench edit: the first one",
    )  # fmt: skip
    p.add_argument("--faces", type=int, default=64, help="bench fit3d: faces fitted")
    p.add_argument("--steps", type=int, default=40, help="bench fit3d: refinement steps")
    p.add_argument(
        "--landmark-net", default=None, metavar="PATH",
        help="bench fit3d: also fit with this LandmarkNet's landmarks",
    )  # fmt: skip
    add_weights_option(p)
    add_overrides_option(p, "model.decoder_channels=8 (bench train; IPD-FER config keys)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _help, fn = BENCHES[args.what]
    result = {"bench": args.what, **fn(args)}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0
