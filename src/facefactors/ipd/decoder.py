"""G_dec: the decoder that turns a feature vector into a face (paper §4.2, DESIGN §6).

Five stages of (transpose conv → InstanceNorm → ReLU → residual block): the first
lifts the (B, D) feature, read as a D×1×1 map, to s×s with a kernel of size s
(s = size/16: 7 for 112-px faces, 4 for 64-px), and four ×2 stages follow
(7→14→28→56→112). A 3×3 conv to RGB and tanh put the output in [-1, 1], the
range of the input images.

Outside the paper, ``colour_grid = g > 0`` adds a colour path: a linear map of the
same feature to a g×g RGB map, up-sampled and added before the tanh, starting at zero
(the quick presets use g = 4; docs/ipd_findings.md §9).

The paper does not say how the weights start; the model keeps PyTorch's default.
:meth:`Decoder.reset_parameters` is the alternative measured in
docs/ipd_findings.md §8: He-normal convs for their real fan-in (a transpose conv
of stride s sees (k/s)² taps of each input channel per output pixel; the first
stage, on a 1 × 1 map, one), zero biases, and each residual block starting as
the identity. It lets a decoder fed only the background's colour learn it, but in
the IPD-FER generator it drew no more hue and lost 0.4 dB at the demo's budget.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from facefactors.constants import DECODER_NORMS as NORMS


def _norm(kind: str, ch: int) -> nn.Module:
    """InstanceNorm (the paper's), BatchNorm, or nothing, with a learned affine."""
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    return nn.Identity()


class ResBlock(nn.Module):
    """conv3×3–norm–ReLU–conv3×3–norm plus the input (a pix2pix-style residual block).

    Args:
        ch: channels in and out.
        norm: one of ``NORMS``.
    """

    def __init__(self, ch: int, norm: str = "instance") -> None:
        super().__init__()
        bias = norm == "none"
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, bias=bias),
            _norm(norm, ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1, bias=bias),
            _norm(norm, ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ch, H, W) → (B, ch, H, W)."""
        return x + self.body(x)


def _stage(
    in_ch: int, out_ch: int, kernel: int, stride: int, padding: int,
    norm: str = "instance", block_norm: str = "instance",
) -> nn.Sequential:  # fmt: skip
    """Transpose conv → norm → ReLU → residual block (normalised by ``block_norm``)."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, padding, bias=norm == "none"),
        _norm(norm, out_ch),
        nn.ReLU(inplace=True),
        ResBlock(out_ch, block_norm),
    )


def stage_channels(base: int) -> list[int]:
    """Channels of the five stages, coarse to fine: 16b, 8b, 4b, 2b, b, capped at 512."""
    return [min(base * 2**k, 512) for k in (4, 3, 2, 1, 0)]


class Decoder(nn.Module):
    """Feature vector → image.

    Args:
        in_dim: feature size D (512 for ResNet-18 encoders).
        size: output image size (a multiple of 16: 112, 64, 32).
        base: channels of the full-resolution stage (32 gives 512, 256, 128, 64, 32).
        start_norm: normalisation after the first (1×1 → s×s) transpose conv.
        norm: normalisation of every other stage and of the residual blocks. The
            paper's is InstanceNorm; it pins each channel's spatial mean to a learned
            constant, so the decoder must draw a global colour (the background, the
            light level) as spatial structure (see docs/ipd_findings.md §5).
        init: ``"torch"`` (PyTorch's default, the model's) or ``"he"``
            (:meth:`reset_parameters`).
        colour_grid: 0 for the paper's decoder; g > 0 adds a colour path outside the
            paper: a linear map of the same feature to a g×g RGB map, bilinearly
            up-sampled and added before the tanh (g = 1: one colour per image). It
            starts at zero, so the decoder starts as the paper's (docs/ipd_findings.md §9).
    """

    def __init__(
        self, in_dim: int, size: int, base: int = 32, start_norm: str = "instance",
        norm: str = "instance", init: str = "torch", colour_grid: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        if size % 16:
            raise ValueError(f"decoder size must be a multiple of 16, got {size}")
        for name, kind in (("start_norm", start_norm), ("norm", norm)):
            if kind not in NORMS:
                raise ValueError(f"{name} must be one of {NORMS}, got {kind!r}")
        chans = stage_channels(base)
        start = size // 16
        stages = [_stage(in_dim, chans[0], start, 1, 0, start_norm, norm)]  # 1×1 → s×s
        # ConvTranspose k4 s2 p1 doubles the size exactly.
        stages += [_stage(chans[i], chans[i + 1], 4, 2, 1, norm, norm) for i in range(4)]
        self.stages = nn.Sequential(*stages)
        self.to_rgb = nn.Conv2d(chans[-1], 3, 3, padding=1)
        self.size = size
        if init not in ("he", "torch"):
            raise ValueError(f"init must be 'he' or 'torch', got {init!r}")
        if colour_grid < 0 or size % max(colour_grid, 1):
            raise ValueError(f"colour_grid must be 0 or divide size {size}, got {colour_grid}")
        self.colour_grid = colour_grid
        self.colour = nn.Linear(in_dim, 3 * colour_grid**2) if colour_grid else None
        if self.colour is not None:
            nn.init.zeros_(self.colour.weight)
            nn.init.zeros_(self.colour.bias)
        if init == "he":
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """He-normal convs for their real fan-in, zero biases, residual blocks at identity."""
        for i, stage in enumerate(self.stages):
            up: nn.ConvTranspose2d = stage[0]
            taps = 1 if i == 0 else (up.kernel_size[0] // up.stride[0]) ** 2
            nn.init.normal_(up.weight, 0.0, math.sqrt(2.0 / (up.in_channels * taps)))
            block: ResBlock = stage[3]
            convs = [m for m in block.body if isinstance(m, nn.Conv2d)]
            for conv in [up, *convs]:
                if conv is not up:
                    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)
            last = block.body[-1]
            if getattr(last, "weight", None) is not None:  # BatchNorm / affine InstanceNorm
                nn.init.zeros_(last.weight)
            else:
                nn.init.zeros_(convs[-1].weight)
        nn.init.kaiming_normal_(self.to_rgb.weight, mode="fan_in", nonlinearity="linear")
        nn.init.zeros_(self.to_rgb.bias)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, 3, size, size) in [-1, 1]."""
        h = self.stages(f[:, :, None, None])  # (B, D, 1, 1) → (B, b, size, size)
        rgb = self.to_rgb(h)  # (B, 3, size, size), before the tanh
        if self.colour is not None:
            g = self.colour_grid
            c = self.colour(f).view(-1, 3, g, g)  # (B, 3, g, g)
            rgb = rgb + F.interpolate(c, size=self.size, mode="bilinear", align_corners=False)
        return torch.tanh(rgb)
