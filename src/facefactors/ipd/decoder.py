"""G_dec: the decoder that turns a feature vector into a face (paper §4.2, DESIGN §6).

Five stages of (transpose conv → InstanceNorm → ReLU → residual block): the first
lifts the (B, D) feature, read as a D×1×1 map, to s×s with a kernel of size s
(s = size/16: 7 for 112-px faces, 4 for 64-px), and four ×2 stages follow
(7→14→28→56→112). A 3×3 conv to RGB and tanh put the output in [-1, 1], the
range of the input images.
"""

from __future__ import annotations

import torch
from torch import nn


class ResBlock(nn.Module):
    """conv3×3–IN–ReLU–conv3×3–IN plus the input (a pix2pix-style residual block).

    Args:
        ch: channels in and out.
    """

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, bias=False),
            nn.InstanceNorm2d(ch, affine=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1, bias=False),
            nn.InstanceNorm2d(ch, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ch, H, W) → (B, ch, H, W)."""
        return x + self.body(x)


START_NORMS = ("instance", "none")


def _stage(
    in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, norm: str = "instance"
) -> nn.Sequential:
    """Transpose conv → InstanceNorm (or none) → ReLU → residual block."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, padding, bias=norm == "none"),
        nn.InstanceNorm2d(out_ch, affine=True) if norm == "instance" else nn.Identity(),
        nn.ReLU(inplace=True),
        ResBlock(out_ch),
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
    """

    def __init__(
        self, in_dim: int, size: int, base: int = 32, start_norm: str = "instance"
    ) -> None:
        super().__init__()
        if size % 16:
            raise ValueError(f"decoder size must be a multiple of 16, got {size}")
        if start_norm not in START_NORMS:
            raise ValueError(f"start_norm must be one of {START_NORMS}, got {start_norm!r}")
        chans = stage_channels(base)
        start = size // 16
        stages = [_stage(in_dim, chans[0], start, 1, 0, start_norm)]  # 1×1 → s×s
        # ConvTranspose k4 s2 p1 doubles the size exactly.
        stages += [_stage(chans[i], chans[i + 1], 4, 2, 1) for i in range(4)]
        self.stages = nn.Sequential(*stages)
        self.to_rgb = nn.Conv2d(chans[-1], 3, 3, padding=1)
        self.size = size

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(B, D) → (B, 3, size, size) in [-1, 1]."""
        h = self.stages(f[:, :, None, None])  # (B, D, 1, 1) → (B, b, size, size)
        return torch.tanh(self.to_rgb(h))
