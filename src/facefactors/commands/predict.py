"""``facefactors predict INPUT... --checkpoint CKPT --out results.csv``: expressions per face.

See :mod:`facefactors.inference.predict` for what is written.
"""

from __future__ import annotations

import argparse

from facefactors.commands.weights import add_weights_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="detect faces in images, folders or videos and predict their expressions",
        description="Detect every face (MTCNN), align it, estimate its head pose and predict "
        "its expression. Writes one row per face (file, frame, face, box, det_score, "
        "yaw/pitch/roll, pose_bin, label, score, p_<class>...) to a CSV or JSON Lines file, "
        "appended batch by batch (run metadata, with every input's outcome, in "
        "<stem>.meta.json), or to one JSON document at the end. A rerun with the same --out "
        "continues an interrupted run (the journal <stem>.inputs.jsonl records what is done). "
        "Unreadable files are counted and listed, not fatal; the exit status is 1 when no "
        "input could be read.",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files, folders (searched recursively) or videos (.mp4 .avi .mov .mkv .webm)",
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        metavar="CKPT",
        help="model.pt, a training last.pt, or an .onnx file of `facefactors export` "
        "(fp32 or --int8; needs facefactors[onnx], runs on the CPU only)",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="results.csv, results.jsonl (both streamed) or results.json (written at the end)",
    )
    p.add_argument(
        "--every", type=int, default=1, metavar="N", help="video: process every N-th frame"
    )
    p.add_argument(
        "--annotate", default=None, metavar="DIR", help="write copies with boxes and labels drawn"
    )
    add_weights_option(p)
    p.add_argument(
        "--min-face", type=float, default=20.0, metavar="PX", help="MTCNN smallest face in pixels"
    )
    p.add_argument(
        "--batch", type=int, default=16, metavar="N", help="images or frames per batch (default 16)"
    )
    p.add_argument(
        "--max-faces",
        type=face_count,
        default=None,
        metavar="N",
        help="faces kept per image: a positive integer, or 'all' (the default)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument(
        "--no-track",
        dest="track",
        action="store_false",
        help="video: run the full detector on every frame instead of following faces with O-Net",
    )
    p.add_argument(
        "--detect-every",
        type=int,
        default=15,
        metavar="K",
        help="video with tracking: full detection every K processed frames (default 15)",
    )
    p.set_defaults(func=run)


def face_count(text: str) -> int | None:
    """``--max-faces``: a positive integer, or ``all`` (None).

    Raises:
        argparse.ArgumentTypeError: anything else (argparse prints it as one line).
    """
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'all', got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    import sys

    from facefactors.inference.predict import PredictOptions, run_predict

    summary = run_predict(
        PredictOptions(
            inputs=list(args.inputs),
            checkpoint=args.checkpoint,
            out=args.out,
            every=args.every,
            annotate=args.annotate,
            weights=args.weights,
            min_face=args.min_face,
            batch=args.batch,
            device=args.device,
            track=args.track,
            detect_every=args.detect_every,
            max_faces=args.max_faces,
        )
    )
    print(f"facefactors predict: {summary.message()}", file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in summary.outputs)}", file=sys.stderr)
    if summary.usable == 0:
        print("facefactors predict: no input could be read.", file=sys.stderr)
        return 1
    return 0
