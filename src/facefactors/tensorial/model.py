"""The adversarial neuro-tensorial autoencoder (§3.5, Fig. 2), its Z_0 baseline and D.

``E(x) = [z_b, z_m, z_l, z_p, z_id, z_exp]`` (Eq. 6); the decoder (Eq. 7) has
three streams besides the mask and background decoders:

1. 2-way synthesis ``z_exp ⊙ z_id`` and projection B → 3D shape x̂_3d (Eq. 4);
2. the same 2-way feature rotated by ``R = SO3(z_p)`` (§3.4) → normal and
   albedo decoders; the image is ``albedo ⊙ shading(normals, z_l)`` with the
   project's one SH shading function, composited over the background;
3. 3-way synthesis ``z_l ⊙ z_exp ⊙ z_id`` and projection Q → frontal image
   (Eq. 2), and Q with z_l replaced by the constant 1/k_l → frontal normals (Eq. 5).

Image-space conventions follow the synthetic renderer (DESIGN.md §7): albedo,
shading, mask, background, ``image`` and ``composite`` are linear [0, 1]
quantities and ``recon = 2 · composite − 1`` is compared with the input in
[-1, 1]. The clamps are NFE's HardTanh(0, 1) on ``albedo ⊙ shading`` and on
the composite.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from facefactors.synth import shading as SH
from facefactors.tensorial import ops
from facefactors.tensorial.config import TensorialModelConfig
from facefactors.tensorial.nets import (
    BeganDiscriminator,
    Encoder,
    PoolState,
    Projection,
    UnpoolDecoder,
    UpsampleDecoder,
)


@dataclass
class Codes:
    """The encoder's latent codes (Eq. 6).

    Attributes:
        z: (B, code_dim) intermediate code z_i.
        z_b, z_m: (B, z_b), (B, z_m) background and mask codes.
        z_l: (B, light_channels, 9) SH lighting code.
        z_p: (B, 9) pose code (a 3 × 3 matrix before projection).
        z_id: (B, k_id); z_exp: (B, k_exp).
    """

    z: torch.Tensor
    z_b: torch.Tensor
    z_m: torch.Tensor
    z_l: torch.Tensor
    z_p: torch.Tensor
    z_id: torch.Tensor
    z_exp: torch.Tensor

    def replace(self, **changes: torch.Tensor) -> Codes:
        """A copy with some codes swapped (expression/pose transfer, Eq. 18)."""
        return dataclasses.replace(self, **changes)


@dataclass
class TensorialOutput:
    """Everything the decoder computes (S = image size, V = vertices).

    Attributes:
        codes: the latent codes.
        rotation: (B, 3, 3) R = SO3(z_p).
        feature_2way: (B, k_exp·k_id) z_exp ⊙ z_id.
        feature_rotated: (B, k_exp·k_id) the rotated feature (§3.4).
        light: (B, 3, 9) SH coefficients used for shading (z_l, broadcast to RGB).
        albedo: (B, 3, S, S) in [0, 1].
        normals: (B, 3, S, S) camera-frame normals.
        shading: (B, 3, S, S) ``sh_shading_maps(normals, light)``.
        mask: (B, 1, S, S) in [0, 1].
        background: (B, 3, S, S) in [0, 1].
        image: (B, 3, S, S) clamp(albedo ⊙ shading, 0, 1).
        composite: (B, 3, S, S) clamp(image ⊙ mask + background ⊙ (1 − mask), 0, 1).
        recon: (B, 3, S, S) x̂ = 2 · composite − 1, in the input's [-1, 1].
        frontal: (B, 3, S, S) Q_(1)(z̄_l ⊙ z_exp ⊙ z_id), the input's range.
        frontal_normals: (B, 3, S, S) Q_(1)(1/k_l ⊙ z_exp ⊙ z_id).
        shape_3d: (B, V, 3) B_(1)(z_exp ⊙ z_id), head-frame mm.
        exp_pred: (B, exp_coeff_dim) fc(z_exp) of Eq. 10.
        id_pred: (B, id_coeff_dim) fc(z_id) of Eq. 11.
    """

    codes: Codes
    rotation: torch.Tensor
    feature_2way: torch.Tensor
    feature_rotated: torch.Tensor
    light: torch.Tensor
    albedo: torch.Tensor
    normals: torch.Tensor
    shading: torch.Tensor
    mask: torch.Tensor
    background: torch.Tensor
    image: torch.Tensor
    composite: torch.Tensor
    recon: torch.Tensor
    frontal: torch.Tensor
    frontal_normals: torch.Tensor
    shape_3d: torch.Tensor
    exp_pred: torch.Tensor
    id_pred: torch.Tensor


def compose(
    albedo: torch.Tensor,
    normals: torch.Tensor,
    light: torch.Tensor,
    mask: torch.Tensor,
    background: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The in-network image formation (NFE's shading and compositing layers).

    Args:
        albedo: (B, 3, S, S); normals: (B, 3, S, S); light: (B, 3, 9);
        mask: (B, 1, S, S); background: (B, 3, S, S).

    Returns:
        ``(shading, image, composite)``, each (B, 3, S, S); shading from
        :func:`facefactors.synth.shading.sh_shading_maps`, the same function
        that renders the synthetic faces, so both share one SH convention.
    """
    shading = SH.sh_shading_maps(normals, light)
    image = (albedo * shading).clamp(0.0, 1.0)
    composite = (image * mask + background * (1.0 - mask)).clamp(0.0, 1.0)
    return shading, image, composite


def normals_from_maps(raw: torch.Tensor, param: str, eps: float) -> torch.Tensor:
    """Decoder output → normals (B, 3, S, S).

    Args:
        raw: (B, 2, S, S) for ``nfe`` (Nx, Ny; Nz = √(ReLU(1 − Nx² − Ny²) + ε)),
            (B, 3, S, S) for ``unit`` (normalised to unit length).
        param: ``nfe`` or ``unit``.
        eps: NFE's ε under the root / the normalisation's ε.
    """
    if param == "unit":
        return F.normalize(raw, dim=1, eps=eps)
    nxy = F.hardtanh(raw)
    nz = torch.sqrt(F.relu(1.0 - (nxy * nxy).sum(1, keepdim=True)) + eps)
    return torch.cat([nxy, nz], dim=1)


class TensorialModel(nn.Module):
    """Encoder E and decoder D of the paper; ``forward(x)`` returns :class:`TensorialOutput`.

    Args:
        cfg: the model config (``variant`` ignored).
    """

    def __init__(self, cfg: TensorialModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        size, ch, thr = cfg.image_size, list(cfg.enc_channels), cfg.threshold
        self.encoder = Encoder(ch, size, cfg.code_dim, thr)
        c = cfg.code_dim
        self.head_b = nn.Linear(c, cfg.z_b)
        self.head_m = nn.Linear(c, cfg.z_m)
        self.head_l = nn.Linear(c, cfg.light_channels * cfg.k_l)
        self.head_p = nn.Linear(c, cfg.k_p)
        self.head_id = nn.Linear(c, cfg.k_id)
        self.head_exp = nn.Linear(c, cfg.k_exp)
        skip = cfg.skip_connections
        self.dec_background = UnpoolDecoder(cfg.z_b, ch, size, 3, thr, skip)
        self.dec_mask = UnpoolDecoder(cfg.z_m, ch, size, 1, thr, skip)
        self.dec_albedo = UpsampleDecoder(cfg.k_2way, ch, size, 3, lambda: nn.Threshold(0.0, thr))
        n_out = 2 if cfg.normals == "nfe" else 3
        self.dec_normals = UpsampleDecoder(cfg.k_2way, ch, size, n_out, nn.Tanh)  # NFE: Tanh
        self.q = Projection(cfg.k_3way, cfg.k_x, cfg.q_rank)  # Q_(1): k_x × k_l k_exp k_id
        self.b = Projection(cfg.k_2way, 3 * cfg.num_vertices, cfg.b_rank)  # B_(1)
        self.fc_exp = nn.Linear(cfg.k_exp, cfg.exp_coeff_dim)
        self.fc_id = nn.Linear(cfg.k_id, cfg.id_coeff_dim)

    def encode(self, x: torch.Tensor) -> tuple[Codes, PoolState]:
        """E(x): (B, 3, S, S) → codes and the pooling state the mask/background decoders use."""
        z, state = self.encoder(x)
        codes = Codes(
            z=z,
            z_b=self.head_b(z),
            z_m=self.head_m(z),
            z_l=self.head_l(z).view(-1, self.cfg.light_channels, self.cfg.k_l),
            z_p=self.head_p(z),
            z_id=self.head_id(z),
            z_exp=self.head_exp(z),
        )
        return codes, state

    def decode(self, codes: Codes, state: PoolState) -> TensorialOutput:
        """D(codes) (Eq. 7); ``state`` from :meth:`encode` of the image that gives z_b, z_m."""
        cfg = self.cfg
        n, s = codes.z.shape[0], cfg.image_size
        rotation = ops.project_to_so3(codes.z_p.view(n, 3, 3))
        two_way = ops.khatri_rao(codes.z_exp, codes.z_id)  # (B, k_exp k_id)
        rotated = ops.rotate_feature(two_way, rotation)
        albedo = torch.sigmoid(self.dec_albedo(rotated))
        normals = normals_from_maps(self.dec_normals(rotated), cfg.normals, cfg.normal_eps)
        mask = torch.sigmoid(self.dec_mask(codes.z_m, state))
        background = torch.sigmoid(self.dec_background(codes.z_b, state))
        light = codes.z_l.expand(n, 3, cfg.k_l)  # one grey light feeds all channels if C = 1
        shading, image, composite = compose(albedo, normals, light, mask, background)
        # The 3-way stream keeps k_l = 9: the channel mean of z_l (config docstring).
        z_l9 = codes.z_l.mean(dim=1)
        frontal = self.q(ops.khatri_rao(z_l9, codes.z_exp, codes.z_id))
        const = torch.full_like(z_l9, 1.0 / cfg.k_l)
        frontal_n = self.q(ops.khatri_rao(const, codes.z_exp, codes.z_id))
        shape = self.b(two_way).view(n, cfg.num_vertices, 3) * cfg.vertex_unit_mm
        return TensorialOutput(
            codes=codes,
            rotation=rotation,
            feature_2way=two_way,
            feature_rotated=rotated,
            light=light,
            albedo=albedo,
            normals=normals,
            shading=shading,
            mask=mask,
            background=background,
            image=image,
            composite=composite,
            recon=composite * 2.0 - 1.0,
            frontal=frontal.view(n, 3, s, s),
            frontal_normals=frontal_n.view(n, 3, s, s),
            shape_3d=shape,
            exp_pred=self.fc_exp(codes.z_exp),
            id_pred=self.fc_id(codes.z_id),
        )

    def forward(self, x: torch.Tensor) -> TensorialOutput:
        """(B, 3, S, S) in [-1, 1] → :class:`TensorialOutput`."""
        return self.decode(*self.encode(x))


@dataclass
class Z0Output:
    """Output of the Z_0 baseline.

    Attributes:
        z: (B, code_dim) intermediate code; z0: (B, z0_size) the latent;
        recon: (B, 3, S, S) x̂ in [-1, 1].
    """

    z: torch.Tensor
    z0: torch.Tensor
    recon: torch.Tensor


class Z0AutoEncoder(nn.Module):
    """The paper's Z_0 baseline: same encoder, one unstructured latent, one decoder.

    Encoder as :class:`TensorialModel`'s, an FC head to ``z0``, and an
    upsampling decoder of the same widths with a tanh output in [-1, 1].
    Trained with the same E_x (Eq. 8) and BEGAN discriminator; it is the
    entangled representation that Table 1 and Figs. 6–7 compare against.
    """

    def __init__(self, cfg: TensorialModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = list(cfg.enc_channels)
        self.encoder = Encoder(ch, cfg.image_size, cfg.code_dim, cfg.threshold)
        self.head = nn.Linear(cfg.code_dim, cfg.z0_size)
        thr = cfg.threshold
        self.decoder = UpsampleDecoder(
            cfg.z0_size, ch, cfg.image_size, 3, lambda: nn.Threshold(0.0, thr)
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) → z0 (B, z0_size)."""
        return self.head(self.encoder(x)[0])

    def forward(self, x: torch.Tensor) -> Z0Output:
        """(B, 3, S, S) → :class:`Z0Output`."""
        z, _ = self.encoder(x)
        z0 = self.head(z)
        return Z0Output(z=z, z0=z0, recon=torch.tanh(self.decoder(z0)))


class TensorialNets(NamedTuple):
    """The generator (tensorial model or Z_0) and its BEGAN discriminator."""

    generator: TensorialModel | Z0AutoEncoder
    discriminator: BeganDiscriminator


_GENERATORS = {"tensorial": TensorialModel, "z0": Z0AutoEncoder}


def build_model(cfg: TensorialModelConfig) -> TensorialNets:
    """The generator named by ``cfg.variant`` and a BEGAN discriminator."""
    generator = _GENERATORS[cfg.variant](cfg)
    disc = BeganDiscriminator(list(cfg.disc_channels), cfg.image_size, cfg.disc_code)
    return TensorialNets(generator, disc)
