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
        "5 images and compared with torch. With --int8 a statically quantised int8 copy "
        "(QDQ, per-channel weights) is also written, calibrated on rendered synthetic faces "
        "and compared with the fp32 model on held-out ones. Needs `pip install facefactors[onnx]`.",
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
    p.add_argument(
        "--int8",
        metavar="FILE",
        help="also write a static int8 (QDQ) model, calibrated on synthetic faces",
    )
    p.add_argument(
        "--calibration-count",
        type=int,
        default=256,
        metavar="N",
        help="synthetic faces that calibrate the int8 model (default 256)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from facefactors.export.onnx import export_checkpoint

    if args.int8 and args.calibration_count < 1:
        from facefactors.errors import ConfigError

        raise ConfigError(f"--calibration-count must be positive, got {args.calibration_count}.")
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
    if args.int8:
        from facefactors.export.quantize import quantize_exported

        q = quantize_exported(info["onnx"], args.int8, calibration_count=args.calibration_count)
        print(
            f"wrote {q['int8']} (int8 QDQ, calibrated on {q['calibration_images']} synthetic "
            f"faces); int8 vs fp32 on {q['images']} held-out synthetic faces: top-1 agreement "
            f"{q['top1_agreement']:.3f}, max abs diff {q['max_abs_diff']:.3g} "
            f"(fp32 logit range {q['logit_range']:.3g})"
        )
    return 0
