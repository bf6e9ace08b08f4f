"""``facefactors export --checkpoint CKPT --onnx model.onnx``: ONNX of E_exp + C_exp, verified."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export the expression classifier (E_exp + C_exp) to ONNX and verify it",
        description="Export only the inference path, E_exp + C_exp: input 'image' "
        "(B, 3, S, S) in [-1, 1], output 'logits' (B, K), dynamic batch axis, class names "
        "in the metadata. The file is then run with onnxruntime on random batches of 2 and "
        "5 images and compared with torch. Needs `pip install facefactors[onnx]`.",
    )
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="model.pt or last.pt")
    p.add_argument("--onnx", required=True, metavar="FILE", help="output .onnx file")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="fail (exit 1) when |onnxruntime - torch| exceeds this (default 1e-4)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from facefactors.onnx_export import export_checkpoint

    info = export_checkpoint(args.checkpoint, args.onnx, opset=args.opset)
    diff = info["max_abs_diff"]
    sizes = " and ".join(str(b) for b in info["batch_sizes"])
    print(
        f"wrote {info['onnx']} ({len(info['classes'])} classes, input {info['input_size']} px, "
        f"opset {info['opset']}); onnxruntime vs torch on batches of {sizes}: "
        f"max abs diff {diff:.3g}"
    )
    if not diff <= args.tolerance:
        print(
            f"facefactors export: error: max abs diff {diff:.3g} exceeds --tolerance "
            f"{args.tolerance:g}.",
            file=sys.stderr,
        )
        return 1
    return 0
