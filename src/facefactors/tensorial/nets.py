"""Building blocks of the tensorial model: encoder, decoders, projections, BEGAN D.

The encoder and decoders are Neural Face Editing's (Shu et al. 2017, the
paper's ref. [28]; Appendix A): three 5 × 5 conv stages with 2 × 2 max-pooling
and ``Threshold(0, 1e-6)``; decoders start with an FC layer to the encoder's
last feature map and mirror the stages. Mask and background decoders unpool
with the encoder's indices (and concatenate the encoder's activations, the
skip connections of Appendix A); the others upsample (nearest) instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class PoolState:
    """What the mask and background decoders need from the encoder.

    Attributes:
        indices: max-pooling indices of the three stages, finest first:
            (B, c1, H/2, W/2), (B, c2, H/4, W/4), (B, c3, H/8, W/8).
        skips: the stages' activations before pooling, finest first:
            (B, c1, H, W), (B, c2, H/2, W/2), (B, c3, H/4, W/4).
    """

    indices: list[torch.Tensor]
    skips: list[torch.Tensor]


def _conv5(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 5, padding=2)  # "we pad the filter responses" (Appendix A)


class Encoder(nn.Module):
    """x (B, 3, S, S) → z_i (B, code_dim) and the pooling state.

    Args:
        channels: the three conv widths (96, 48, 24 in the paper).
        size: input size S (divisible by 8); 64 gives a 24 × 8 × 8 feature map.
        code_dim: z_i size (128).
        threshold: value of ``Threshold(0, threshold)``.
    """

    def __init__(self, channels: list[int], size: int, code_dim: int, threshold: float) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.convs = nn.ModuleList([_conv5(3, c1), _conv5(c1, c2), _conv5(c2, c3)])
        self.act = nn.Threshold(0.0, threshold)
        self.feature_shape = (c3, size // 8, size // 8)
        self.fc = nn.Linear(c3 * (size // 8) ** 2, code_dim)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, PoolState]:
        """The conv stack: (B, 3, S, S) → (B, c3, S/8, S/8) and the pooling state."""
        indices, skips = [], []
        # A flat background gives exact ties inside the 2 × 2 pooling windows, and the
        # channels-last conv rounds differently from the NCHW one, so the argmax (the
        # indices the decoders unpool by) would depend on how the caller laid out x.
        h = x.contiguous()
        for conv in self.convs:
            y = conv(h)
            # Threshold after pooling as NFE; max-pool commutes with the monotone
            # threshold, so act(y) is also the activation the skip hands over.
            skips.append(self.act(y))
            h, idx = F.max_pool2d(y, 2, return_indices=True)
            h = self.act(h)
            indices.append(idx)
        return h, PoolState(indices, skips)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, PoolState]:
        """(B, 3, S, S) → (z_i (B, code_dim) in (0, 1), pooling state); sigmoid as NFE."""
        h, state = self.forward_features(x)
        return torch.sigmoid(self.fc(h.flatten(1))), state


class UnpoolDecoder(nn.Module):
    """Code → map, strictly symmetric to the encoder, unpooling by its indices.

    Args:
        in_dim: code size (z_b or z_m).
        channels: the encoder's widths (c1, c2, c3).
        size: image size S.
        out_channels: 3 (background) or 1 (mask).
        threshold: the ``Threshold`` value.
        skip: concatenate the encoder's activation after each unpooling.
    """

    def __init__(
        self,
        in_dim: int,
        channels: list[int],
        size: int,
        out_channels: int,
        threshold: float,
        skip: bool = True,
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        m = 2 if skip else 1
        self.skip = skip
        self.shape = (c3, size // 8, size // 8)
        self.fc = nn.Linear(in_dim, c3 * (size // 8) ** 2)
        # Coarsest first: unpool(idx3) → c3, unpool(idx2) → c2, unpool(idx1) → c1.
        self.convs = nn.ModuleList([_conv5(m * c3, c2), _conv5(m * c2, c1), _conv5(m * c1, c1)])
        self.out = nn.Conv2d(c1, out_channels, 3, padding=1)
        self.act = nn.Threshold(0.0, threshold)

    def forward(self, z: torch.Tensor, state: PoolState) -> torch.Tensor:
        """(B, in_dim) and the encoder's pooling state → (B, out_channels, S, S), pre-activation."""
        h = self.act(self.fc(z)).view(z.shape[0], *self.shape)
        for conv, idx, skip in zip(self.convs, state.indices[::-1], state.skips[::-1]):
            h = F.max_unpool2d(h, idx, 2, output_size=skip.shape[-2:])
            if self.skip:
                h = torch.cat([h, skip], dim=1)
            h = self.act(conv(h))
        return self.out(h)


class UpsampleDecoder(nn.Module):
    """Feature → map by FC, then three (nearest 2× upsampling, 5 × 5 conv) stages.

    Args:
        in_dim: input feature size.
        channels: the encoder's widths (c1, c2, c3), mirrored.
        size: image size S.
        out_channels: maps produced.
        act: nonlinearity factory (NFE: Threshold for albedo, Tanh for normals).
    """

    def __init__(
        self,
        in_dim: int,
        channels: list[int],
        size: int,
        out_channels: int,
        act: Callable[[], nn.Module],
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.shape = (c3, size // 8, size // 8)
        self.fc = nn.Linear(in_dim, c3 * (size // 8) ** 2)
        self.convs = nn.ModuleList([_conv5(c3, c2), _conv5(c2, c1), _conv5(c1, c1)])
        self.out = nn.Conv2d(c1, out_channels, 3, padding=1)
        self.act = act()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) → (B, out_channels, S, S), pre-activation."""
        h = self.act(self.fc(z)).view(z.shape[0], *self.shape)
        for conv in self.convs:
            h = self.act(conv(F.interpolate(h, scale_factor=2, mode="nearest")))
        return self.out(h)


class Projection(nn.Module):
    """ "Projection" of §3.5: an unbiased linear layer whose weight is T_(1).

    With ``rank`` set, the weight is factored as ``U V`` (k_out × r, r × k_in):
    still linear in the Khatri–Rao feature, with the unfolding's rank capped.

    Args:
        in_features: Khatri–Rao feature size (e.g. k_l · k_exp · k_id).
        out_features: k_x (images, normals) or 3 · vertices (shape).
        rank: None for the full matrix.
    """

    def __init__(self, in_features: int, out_features: int, rank: int | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        if rank is None:
            self.weight = nn.Linear(in_features, out_features, bias=False)
        else:
            self.down = nn.Linear(in_features, rank, bias=False)
            self.up = nn.Linear(rank, out_features, bias=False)

    def matrix(self) -> torch.Tensor:
        """The mode-1 matricised core T_(1): (out_features, in_features)."""
        if self.rank is None:
            return self.weight.weight
        return self.up.weight @ self.down.weight

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """(B, in_features) → (B, out_features) = feature @ T_(1)ᵀ."""
        if self.rank is None:
            return self.weight(feature)
        return self.up(self.down(feature))


class BeganDiscriminator(nn.Module):
    """BEGAN's discriminator: a small conv autoencoder, x → D(x) of the same shape.

    Encoder: 3 × 3 conv, then per width a stride-2 3 × 3 conv and a 3 × 3 conv
    (ELU, as the BEGAN reference), FC to a code; the decoder mirrors it with
    nearest upsampling. No output nonlinearity: D reconstructs images in
    [-1, 1] and its L1 error is the energy.

    Args:
        channels: stage widths; S must be divisible by 2 ** len(channels).
        size: image size S.
        code: bottleneck size.
    """

    def __init__(self, channels: list[int], size: int, code: int) -> None:
        super().__init__()
        s = size // 2 ** len(channels)
        self.shape = (channels[-1], s, s)
        enc: list[nn.Module] = [nn.Conv2d(3, channels[0], 3, padding=1), nn.ELU()]
        prev = channels[0]
        for c in channels:
            enc += [nn.Conv2d(prev, c, 3, stride=2, padding=1), nn.ELU()]
            enc += [nn.Conv2d(c, c, 3, padding=1), nn.ELU()]
            prev = c
        self.enc = nn.Sequential(*enc)
        self.fc_enc = nn.Linear(channels[-1] * s * s, code)
        self.fc_dec = nn.Linear(code, channels[-1] * s * s)
        dec: list[nn.Module] = []
        widths = channels[::-1] + [channels[0]]
        for cin, cout in zip(widths[:-1], widths[1:]):
            dec += [nn.Upsample(scale_factor=2, mode="nearest")]
            dec += [nn.Conv2d(cin, cout, 3, padding=1), nn.ELU()]
        dec += [nn.Conv2d(channels[0], 3, 3, padding=1)]
        self.dec = nn.Sequential(*dec)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) → (B, code) bottleneck."""
        return self.fc_enc(self.enc(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) → (B, 3, S, S) reconstruction D(x)."""
        h = self.fc_dec(self.forward_features(x)).view(x.shape[0], *self.shape)
        return self.dec(h)
