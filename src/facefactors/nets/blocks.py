"""Small building blocks shared by the backbones.

Both ResNet families use bias-free convolutions followed by BatchNorm, so the
helpers here never create a bias: the state-dict keys then match torchvision
and insightface exactly (``conv1.weight`` with no ``conv1.bias``).
"""

from __future__ import annotations

from torch import nn


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution, padding 1, no bias (BatchNorm follows)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """1×1 convolution, no bias: the projection shortcut of a residual block."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)


def downsample(in_ch: int, out_ch: int, stride: int, eps: float = 1e-5) -> nn.Sequential:
    """Projection shortcut ``conv1x1 → BN`` stored as ``downsample.0`` / ``downsample.1``."""
    return nn.Sequential(conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch, eps=eps))


def halved(size: int, times: int) -> int:
    """Spatial size after ``times`` stride-2 layers with 'same'-style padding.

    A 3×3/s2/p1 conv, a 7×7/s2/p3 conv and a 3×3/s2/p1 max-pool all map ``s`` to
    ``ceil(s / 2)``, so e.g. 112 → 56 → 28 → 14 → 7 and 64 → 32 → 16 → 8 → 4.
    """
    for _ in range(times):
        size = (size + 1) // 2
    return size
