"""IResNet (insightface ``arcface_torch`` layout) for face recognition.

The structure and state-dict keys follow insightface's ``iresnet`` so a user's
``backbone.pth`` (r18/r34/r50) loads unchanged:

- stem ``conv1`` 3×3/1 (no bias), ``bn1``, ``prelu`` — no max-pool, which keeps
  the full 112×112 resolution in the first stage;
- ``layer1..layer4``, each starting with stride 2 (112 → 56 → 28 → 14 → 7);
- block ``bn1 → conv1 → bn2 → prelu → conv2(stride) → bn3`` plus the shortcut,
  with no activation after the add (a "pre-activation"-style improved block);
- head ``bn2`` (BatchNorm2d), flatten, dropout, ``fc`` (C·7·7 → 512 at 112 px,
  C·4·4 → 512 at 64 px) and ``features`` (BatchNorm1d). As in insightface, the
  scale of ``features`` is fixed at 1 (not trained); only its shift learns.
"""

from __future__ import annotations

import torch
from torch import nn

from facefactors.nets.blocks import conv3x3, downsample, halved

# insightface uses eps=1e-5 everywhere (the PyTorch default, but spelled out
# there); momentum is PyTorch's default 0.1.
_EPS = 1e-5

IRESNET_LAYERS: dict[str, list[int]] = {
    "iresnet18": [2, 2, 2, 2],
    "iresnet34": [3, 4, 6, 3],
    "iresnet50": [3, 4, 14, 3],
}


class IBasicBlock(nn.Module):
    """Improved residual block: BN–conv–BN–PReLU–conv(stride)–BN, plus the shortcut.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        stride: stride of the second conv (and of the shortcut projection).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch, eps=_EPS)
        self.conv1 = conv3x3(in_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch, eps=_EPS)
        self.prelu = nn.PReLU(out_ch)
        self.conv2 = conv3x3(out_ch, out_ch, stride)
        self.bn3 = nn.BatchNorm2d(out_ch, eps=_EPS)
        self.downsample = (
            downsample(in_ch, out_ch, stride, eps=_EPS) if stride != 1 or in_ch != out_ch else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, H, W) → (B, out_ch, ceil(H/stride), ceil(W/stride))."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv1(self.bn1(x))
        out = self.prelu(self.bn2(out))
        out = self.bn3(self.conv2(out))
        return out + identity  # no activation after the add, as in insightface


class IResNet(nn.Module):
    """insightface IResNet embedding network.

    Args:
        layers: blocks per stage, e.g. ``[2, 2, 2, 2]`` for r18.
        width: channels of the first stage (64 in insightface); stages use
            ``width, 2·width, 4·width, 8·width``.
        input_size: square input size; sizes the ``fc`` layer (7×7 map at 112,
            4×4 at 64).
        embedding_dim: output size of ``fc`` and ``features`` (512 in insightface).
        dropout: dropout before ``fc`` (0 in insightface's default).

    Attributes:
        num_features: the embedding size.
        feature_size: side of the final feature map (7 at 112 px).
    """

    def __init__(
        self,
        layers: list[int],
        width: int = 64,
        input_size: int = 112,
        embedding_dim: int = 512,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(3, width)
        self.bn1 = nn.BatchNorm2d(width, eps=_EPS)
        self.prelu = nn.PReLU(width)
        chans = [width, 2 * width, 4 * width, 8 * width]
        in_ch = width
        for i, (ch, n) in enumerate(zip(chans, layers)):
            blocks = [IBasicBlock(in_ch, ch, 2)] + [IBasicBlock(ch, ch) for _ in range(n - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            in_ch = ch
        self.feature_size = halved(input_size, 4)
        self.input_size = input_size
        self.bn2 = nn.BatchNorm2d(in_ch, eps=_EPS)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(in_ch * self.feature_size**2, embedding_dim)
        self.features = nn.BatchNorm1d(embedding_dim, eps=_EPS)
        self.num_features = embedding_dim
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # insightface fixes the embedding BN scale at 1 so the margin loss, not
        # a learned gain, sets the embedding's norm.
        self.features.weight.requires_grad_(False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map after ``bn2``, before flattening.

        Args:
            x: images (B, 3, input_size, input_size), e.g. (B, 3, 112, 112).

        Returns:
            (B, 8·width, feature_size, feature_size), e.g. (B, 512, 7, 7).
        """
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.bn2(self.layer4(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding, (B, 3, input_size, input_size) → (B, num_features)."""
        x = torch.flatten(self.forward_features(x), 1)
        if x.shape[1] != self.fc.in_features:
            raise ValueError(
                f"IResNet was built for {self.input_size}×{self.input_size} inputs "
                f"(fc expects {self.fc.in_features} features) but got a feature map of "
                f"{x.shape[1]} values; pass input_size to match the images."
            )
        return self.features(self.fc(self.dropout(x)))


def iresnet(
    name: str,
    width: int = 64,
    input_size: int = 112,
    embedding_dim: int = 512,
    dropout: float = 0.0,
) -> IResNet:
    """Build ``iresnet18``, ``iresnet34`` or ``iresnet50`` by name."""
    return IResNet(IRESNET_LAYERS[name], width, input_size, embedding_dim, dropout)
