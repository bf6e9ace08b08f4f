"""The three MTCNN networks (Zhang et al., 2016) with facenet-pytorch state-dict keys.

Layer names and shapes match ``pnet.pt``, ``rnet.pt`` and ``onet.pt`` from the
facenet-pytorch 2.6.0 wheel, so ``load_state_dict(strict=True)`` loads them.

The weights come from the original Caffe model, which was trained from MATLAB
on column-major (transposed) images. The ported convolutions work on ordinary
(B, 3, H, W) input, but the dense layers of R-Net and O-Net expect their input
flattened in (W, H, C) order (x slowest, channel fastest). Flattening in the
usual (C, H, W) order gives plausible-looking garbage: dozens of confident
false faces on the test photos, which is how this was checked.

Inputs are RGB scaled as ``(x - 127.5) / 128``.
"""

from __future__ import annotations

import torch
from torch import nn


def _face_prob(logits: torch.Tensor) -> torch.Tensor:
    """Softmax probability of class 1 of two logits along dim 1, as sigmoid(l1 - l0).

    Equal to ``softmax(logits, 1)[:, 1]`` but one cheap elementwise pass.
    """
    return torch.sigmoid(logits[:, 1] - logits[:, 0])


def _flatten_caffe(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, W*H*C), flattened in the ported weights' (W, H, C) order."""
    return x.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal network: fully convolutional, one 12x12 window per output cell (stride 2).

    Input (B, 3, H, W) with H, W >= 12. Outputs ``prob`` (B, H', W'), the face
    probability, and ``reg`` (B, 4, H', W'), box offsets ``(dx1, dy1, dx2, dy2)``
    in units of the window size, where ``H' = ceil((H - 2) / 2) - 4``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        prob = _face_prob(self.conv4_1(x))
        return prob, self.conv4_2(x)


class RNet(nn.Module):
    """Refinement network on (B, 3, 24, 24) crops.

    Returns ``prob`` (B,) and ``reg`` (B, 4) box offsets relative to the crop size.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_caffe(x)))
        prob = _face_prob(self.dense5_1(x))
        return prob, self.dense5_2(x)


class ONet(nn.Module):
    """Output network on (B, 3, 48, 48) crops.

    Returns ``prob`` (B,), ``reg`` (B, 4) and ``points`` (B, 10): five x
    coordinates then five y coordinates, as fractions of the crop width/height.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_caffe(x)))
        prob = _face_prob(self.dense6_1(x))
        return prob, self.dense6_2(x), self.dense6_3(x)
