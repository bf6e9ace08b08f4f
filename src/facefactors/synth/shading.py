"""Second-order spherical-harmonic (SH) Lambertian shading (DESIGN.md §7).

Pure functions shared by the synthetic renderer and the tensorial model.

Coefficient order (9 per colour channel)::

    0 L00, 1 L1-1, 2 L10, 3 L11, 4 L2-2, 5 L2-1, 6 L20, 7 L21, 8 L22

with the Ramamoorthi–Hanrahan irradiance formula

    E(n) = c4 L00 - c5 L20 + c3 L20 z^2 + c1 L22 (x^2 - y^2)
           + 2 c1 (L2-2 xy + L21 xz + L2-1 yz) + 2 c2 (L11 x + L1-1 y + L10 z)

Normals live in camera coordinates: x to image right, y to image top, z toward
the viewer. The coefficients ``L_lm`` are radiance coefficients: a distant
light of strength ``k`` from unit direction ``d`` has ``L_lm = k * Y_lm(d)``
(see :func:`directional_sh`), and then ``E(n) ≈ k * max(n·d, 0)``.
"""

from __future__ import annotations

import torch

C1, C2, C3, C4, C5 = 0.429043, 0.511664, 0.743152, 0.886227, 0.247708

# Real SH basis constants Y_lm (same order as the coefficients).
_Y00 = 0.282095
_Y1 = 0.488603
_Y2 = 1.092548
_Y20 = 0.315392
_Y22 = 0.546274

# Coefficients whose basis function is odd in x: flipping the image left-right
# (x -> -x) negates them (L11 ~ x, L2-2 ~ xy, L21 ~ xz).
SH_ODD_IN_X: tuple[int, ...] = (3, 4, 7)


def sh_basis(normals: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Irradiance basis: ``E(n) = sh_basis(n) @ L`` for one channel.

    The Ramamoorthi–Hanrahan constants are folded in, so the result is linear
    in the 9 coefficients exactly as in the module docstring.

    Args:
        normals: (..., 3) unit normals (x, y, z), camera frame; or any layout
            with the 3 components along ``dim``.
        dim: the component axis.

    Returns:
        (..., 9) basis values in the coefficient order above, along ``dim``.
    """
    x, y, z = normals.unbind(dim)
    one = torch.ones_like(x)
    return torch.stack(
        (
            C4 * one,
            2.0 * C2 * y,
            2.0 * C2 * z,
            2.0 * C2 * x,
            2.0 * C1 * x * y,
            2.0 * C1 * y * z,
            C3 * z * z - C5,
            2.0 * C1 * x * z,
            C1 * (x * x - y * y),
        ),
        dim=dim,
    )


def sh_shading(normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """Per-channel Lambertian irradiance of unit normals under SH lighting.

    Args:
        normals: (B, ..., 3) unit normals in the camera frame, e.g. (B, H, W, 3).
        sh: (B, 3, 9) coefficients, one row of 9 per colour channel (R, G, B).

    Returns:
        (B, ..., 3) shading, the irradiance per colour channel (not clamped:
        a second-order fit of a hard light can dip slightly below zero).
    """
    basis = sh_basis(normals)  # (B, ..., 9)
    b = basis.shape[0]
    flat = basis.reshape(b, -1, 9)
    out = torch.bmm(flat, sh.transpose(1, 2).to(flat.dtype))  # (B, P, 3)
    return out.reshape(*basis.shape[:-1], 3)


def sh_shading_maps(normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """:func:`sh_shading` for channels-first maps.

    Args:
        normals: (B, 3, H, W) unit normals (camera frame).
        sh: (B, 3, 9) coefficients.

    Returns:
        (B, 3, H, W) shading.
    """
    b, _, h, w = normals.shape
    basis = sh_basis(normals, dim=1).reshape(b, 9, h * w)
    return torch.bmm(sh.to(basis.dtype), basis).view(b, 3, h, w)


def sh_real_basis(dirs: torch.Tensor) -> torch.Tensor:
    """Real SH basis functions ``Y_lm`` (no convolution constants).

    Args:
        dirs: (..., 3) unit directions.

    Returns:
        (..., 9) values of Y00, Y1-1, Y10, Y11, Y2-2, Y2-1, Y20, Y21, Y22.
    """
    x, y, z = dirs.unbind(-1)
    return torch.stack(
        (
            torch.full_like(x, _Y00),
            _Y1 * y,
            _Y1 * z,
            _Y1 * x,
            _Y2 * x * y,
            _Y2 * y * z,
            _Y20 * (3.0 * z * z - 1.0),
            _Y2 * x * z,
            _Y22 * (x * x - y * y),
        ),
        dim=-1,
    )


def directional_sh(direction: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """SH coefficients of distant lights, so that ``E(n) ≈ strength * max(n·d, 0)``.

    Args:
        direction: (..., 3) unit vectors pointing from the face toward the light.
        strength: (..., 3) per-channel strength.

    Returns:
        (..., 3, 9) coefficients.
    """
    return strength[..., :, None] * sh_real_basis(direction)[..., None, :]


def ambient_sh(level: torch.Tensor) -> torch.Tensor:
    """SH coefficients of a uniform environment giving irradiance ``level``.

    Args:
        level: (..., 3) per-channel irradiance.

    Returns:
        (..., 3, 9) coefficients (only L00 is non-zero).
    """
    out = torch.zeros(*level.shape, 9, dtype=level.dtype)
    out[..., 0] = level / C4
    return out


def mirror_sh(sh: torch.Tensor) -> torch.Tensor:
    """Coefficients of the left-right mirrored environment (x -> -x).

    Args:
        sh: (..., 9) or (..., 3, 9) coefficients.

    Returns:
        Same shape, with the x-odd coefficients (L11, L2-2, L21) negated.
    """
    out = sh.clone()
    out[..., list(SH_ODD_IN_X)] = -out[..., list(SH_ODD_IN_X)]
    return out
