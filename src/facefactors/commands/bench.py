"""``facefactors bench <what> --json``: speed and memory benchmarks that print JSON.

Speed is measured here, never in timed tests. Each benchmark returns a flat
dict that is printed as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable


def _bench_synth(args: argparse.Namespace) -> dict:
    from facefactors.synth.bench import bench_synth

    return bench_synth(size=args.size, seconds=args.seconds, threads=args.threads)


def _bench_prepare(args: argparse.Namespace) -> dict:
    from facefactors.faces.bench import bench_prepare

    return bench_prepare(seconds=args.seconds, threads=args.threads)


def _bench_video(args: argparse.Namespace) -> dict:
    from facefactors.bench_video import bench_video

    return bench_video(seconds=args.seconds, threads=args.threads, size=args.size)


# name -> (help, function). Functions import their module lazily.
BENCHES: dict[str, tuple[str, Callable[[argparse.Namespace], dict]]] = {
    "synth": ("synthetic face rendering speed (faces/s)", _bench_synth),
    "prepare": ("detect + align + pose on 640x480 frames (faces/s)", _bench_prepare),
    "video": (
        "end-to-end video fps: decode + detect/track + align + predict, 640x480",
        _bench_video,
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _help, fn = BENCHES[args.what]
    result = {"bench": args.what, **fn(args)}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0
