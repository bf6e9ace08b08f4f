"""ResNet-18 with torchvision's state-dict keys, used as an embedding network.

The key layout (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``
...) is exactly torchvision's, so the MS-Celeb-1M ResNet-18 that FER codebases
(SCN, DAN, RAN) fine-tune loads unchanged. The classifier ``fc`` is left out:
the network returns the global-average-pooled feature (512-d at width 64), and
:func:`facefactors.nets.loading.load_backbone_weights` ignores a checkpoint's
``fc.*`` head.
"""

from __future__ import annotations

import torch
from torch import nn

from facefactors.nets.blocks import conv3x3, downsample


class BasicBlock(nn.Module):
    """torchvision's basic block: conv–BN–ReLU–conv–BN, add, ReLU.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        stride: stride of the first conv (and of the shortcut projection).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = (
            downsample(in_ch, out_ch, stride) if stride != 1 or in_ch != out_ch else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, H, W) → (B, out_ch, H/stride, W/stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision-layout ResNet with basic blocks and no classifier.

    Args:
        layers: blocks per stage, ``[2, 2, 2, 2]`` for ResNet-18.
        width: channels of the first stage (64 in torchvision); stages use
            ``width, 2·width, 4·width, 8·width``. Small widths make tiny test models.

        embedding: ``"pool"`` (torchvision: the global average of the last stage,
            non-negative because it averages ReLU outputs) or ``"bn_fc_bn"`` (the
            face-recognition head: BatchNorm2d on the last map, flatten, a linear
            layer, BatchNorm1d; signed features that keep where things are).
        input_size: square input size, which sizes the ``bn_fc_bn`` linear layer.
        embedding_dim: ``bn_fc_bn`` embedding size (None: ``8 * width``).

    Attributes:
        num_features: embedding size, ``8 * width`` for ``pool``.
    """

    def __init__(
        self,
        layers: list[int],
        width: int = 64,
        embedding: str = "pool",
        input_size: int = 112,
        embedding_dim: int | None = None,
    ) -> None:
        super().__init__()
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        chans = [width, 2 * width, 4 * width, 8 * width]
        in_ch = width
        for i, (ch, n) in enumerate(zip(chans, layers)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(in_ch, ch, stride)] + [BasicBlock(ch, ch) for _ in range(n - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            in_ch = ch
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.embedding = embedding
        self.num_features = chans[-1]
        if embedding == "bn_fc_bn":
            side = final_map_size(input_size)
            self.num_features = embedding_dim or chans[-1]
            self.embed_bn2d = nn.BatchNorm2d(chans[-1])
            self.embed_fc = nn.Linear(chans[-1] * side * side, self.num_features)
            self.embed_bn = nn.BatchNorm1d(self.num_features)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's init; the last BN of each block starts at zero so every
        # residual branch starts as the identity, which trains faster from scratch.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map before pooling.

        Args:
            x: images (B, 3, H, W), e.g. (B, 3, 112, 112).

        Returns:
            (B, 8·width, ceil(H/32), ceil(W/32)), e.g. (B, 512, 4, 4) at 112 px.
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding (B, 3, H, W) → (B, num_features): pooled, or BN–FC–BN of the map."""
        h = self.forward_features(x)
        if self.embedding == "pool":
            return torch.flatten(self.avgpool(h), 1)
        return self.embed_bn(
            self.embed_fc(torch.flatten(self.embed_bn2d(h), 1))
        )  # (B, C·s·s) → (B, D)


EMBEDDINGS = ("pool", "bn_fc_bn")


def final_map_size(input_size: int) -> int:
    """Side of the last stage's map: five stride-2 steps, each rounding up (112 → 4, 64 → 2)."""
    side = input_size
    for _ in range(5):
        side = -(-side // 2)
    return side


def resnet18(
    width: int = 64,
    embedding: str = "pool",
    input_size: int = 112,
    embedding_dim: int | None = None,
) -> ResNet:
    """ResNet-18 embedding network with torchvision keys (512-d at width 64)."""
    return ResNet([2, 2, 2, 2], width, embedding, input_size, embedding_dim)
