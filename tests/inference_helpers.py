"""Shared helpers for the inference, predict and export tests: tiny expression models."""

from __future__ import annotations

from pathlib import Path

import torch

from facefactors.checkpoint import save_checkpoint
from facefactors.ipd.export import inference_state
from facefactors.ipd.model import IPDModel, build_model
from ipd_helpers import tiny_config

# The tiny model takes 32x32 aligned faces (tests/ipd_helpers.tiny_config).
SIZE = 32


def tiny_model(seed: int = 0, variant: str = "baseline") -> tuple[IPDModel, object]:
    """A 4-channel model at 32 px whose BatchNorm statistics are not the identity.

    Random running means/variances make eval-mode BatchNorm do real work, so a
    parity check (ONNX, training vs export checkpoint) cannot pass by accident.
    """
    torch.manual_seed(seed)
    cfg = tiny_config(variant)
    model = build_model(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model, cfg


def save_tiny_checkpoint(path: Path, bias: list[float] | None = None, seed: int = 0) -> Path:
    """Save an inference checkpoint of :func:`tiny_model`.

    Args:
        path: destination ``model.pt``.
        bias: when given, C_exp's weight is zeroed and its bias set to this, so the
            probabilities are exactly ``softmax(bias)`` for every face.
        seed: weight seed.
    """
    model, cfg = tiny_model(seed)
    if bias is not None:
        with torch.no_grad():
            model.c_exp.weight.zero_()
            model.c_exp.bias.copy_(torch.tensor(bias))
    save_checkpoint(path, inference_state(model, cfg))
    return path


def run_cli(argv: list[str]) -> int:
    """``facefactors <argv>`` through the real entry point (exit code; output to capsys).

    Nothing is patched in: a command the CLI does not register fails here as it
    would for a user (tests/test_cli.py checks the registered commands).
    """
    from facefactors import cli

    return cli.main(argv)


def tiny_onnx_models(folder: Path, seed: int = 5, calibration: int = 64) -> dict:
    """A tiny checkpoint, its fp32 ONNX export and an int8 copy, written into ``folder``.

    The int8 model is calibrated on ``calibration`` synthetic faces of generator
    seed 0; the returned ``held_out`` faces (seed 1, other identities) were not used.

    Returns:
        ``{"ckpt", "fp32", "int8", "calibration", "held_out"}`` (paths and (N, 3, S, S) arrays).
    """
    from facefactors.export.classifier import load_expression_model
    from facefactors.export.onnx import export_onnx
    from facefactors.export.quantize import quantize_onnx, synthetic_calibration

    ckpt = save_tiny_checkpoint(folder / "model.pt", seed=seed)
    fp32 = export_onnx(load_expression_model(ckpt), folder / "model.onnx")
    faces = synthetic_calibration(SIZE, calibration, seed=0)
    int8 = quantize_onnx(fp32, folder / "model.int8.onnx", faces)
    held_out = synthetic_calibration(SIZE, calibration, seed=1)
    return {"ckpt": ckpt, "fp32": fp32, "int8": int8, "calibration": faces, "held_out": held_out}
