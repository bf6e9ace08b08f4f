"""Fit our linear face model to aligned face crops: the pseudo ground truth of §3.6.

Method (analysis by synthesis, batched, on the CPU):

1. **Pose from landmarks.** :func:`~facefactors.fit3d.procrustes.weak_perspective_fit`
   of the mean face's five 3D landmarks to the crop's five landmarks gives the
   rotation, scale and shift in closed form.
2. **Light in closed form.** With the current albedo and normals fixed, the image is
   linear in the 27 SH coefficients; they are solved per face and colour channel by
   ridge-regularised least squares over the rendered face pixels, at every step
   (variable projection: the light is never a free Adam parameter).
3. **Refinement.** Adam on the identity shape (32), expression (36) and albedo (15)
   coefficients and on a rotation, log-scale and shift correction, minimising

   ``photometric`` (mean squared error inside the rendered mask, the image in [0, 1])
   ``+ w_lm · landmarks`` (squared pixel error / (0.05 · size)², the crop's 5 points)
   ``+ w_shape · mean(β²) + w_exp · mean(|e|) + w_albedo · mean((a − a₀)²)``,

   rendering with :func:`~facefactors.fit3d.render.render_fit` (visibility
   recomputed at every step). After each step the coefficients are projected onto
   their ranges (expressions ≥ 0, albedo parameters within the generator's ranges).

The result has the same fields, shapes and units as the synthetic faces' exact
pseudo ground truth (:data:`facefactors.tensorial.batch.PSEUDO_GT`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facefactors.fit3d import procrustes as P
from facefactors.fit3d import render as FR
from facefactors.synth import expression as E
from facefactors.synth import facemodel as FM
from facefactors.synth import identity as ID
from facefactors.synth.shading import sh_basis

# Ranges of the albedo parameters as the generator draws them (identity.sample_identity).
ALBEDO_LO = np.array([-1, -2, 0, 0, 0, 0.45, -1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=np.float32)
ALBEDO_HI = np.array([1, 2, 1, 1, 1, 0.95, 1, 1, 1, 1, 1, 1, 1, 1, 1], dtype=np.float32)
SHAPE_LIMIT = 3.0
EXP_MAX = 2.5


@dataclass
class Fit3dConfig:
    """Settings of the fit (saved beside its output).

    Attributes:
        size: render (and output map) size in pixels; crops are resized to it.
        steps: Adam steps of the refinement (0: landmarks + light only).
        lr: Adam learning rate of the coefficients (the pose gets a tenth of it).
        w_landmarks, w_shape, w_exp, w_albedo: loss weights (module docstring).
        sh_ridge: ridge weight of the light's least squares (per pixel-normalised).
        batch: faces fitted together.
    """

    size: int = 64
    steps: int = 40
    lr: float = 0.05
    w_landmarks: float = 0.02
    w_shape: float = 2e-3
    w_exp: float = 2e-3
    w_albedo: float = 1e-3
    sh_ridge: float = 1e-3
    batch: int = 32


@dataclass
class FitResult:
    """Pseudo ground truth of N faces (float32 tensors), as the synthetic faces give it.

    Attributes:
        rotation: (N, 3, 3). id_coeffs: (N, K_SHAPE + K_ALBEDO). exp_coeffs: (N, 36).
        vertices: (N, Vs, 3) expressive head-frame mm, no pose (the model's subsample).
        normals: (N, 3, S, S) camera-frame unit normals, 0 off the face.
        sh: (N, 3, 9). mask: (N, 1, S, S). yaw: (N,) degrees.
        scale: (N,) pixels per mm; shift: (N, 2) pixels (the camera).
        photometric: (N,) final masked mean squared error (image in [0, 1]).
        landmark_px: (N,) final mean landmark distance in pixels.
    """

    rotation: torch.Tensor
    id_coeffs: torch.Tensor
    exp_coeffs: torch.Tensor
    vertices: torch.Tensor
    normals: torch.Tensor
    sh: torch.Tensor
    mask: torch.Tensor
    yaw: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor
    photometric: torch.Tensor
    landmark_px: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        return dict(vars(self))

    @staticmethod
    def cat(parts: list[FitResult]) -> FitResult:
        return FitResult(**{k: torch.cat([vars(p)[k] for p in parts]) for k in vars(parts[0])})


def solve_sh(
    face_albedo: torch.Tensor,
    normals: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    ridge: float = 1e-3,
) -> torch.Tensor:
    """Least-squares SH light: ``target ≈ albedo · (sh_basis(n) @ L_c)`` per channel c.

    Args:
        face_albedo: (N, 3, H, W) albedo. normals: (N, 3, H, W) unit normals.
        weight: (N, 1, H, W) pixel weights (0 outside the face).
        target: (N, 3, H, W) image in [0, 1].
        ridge: Tikhonov weight, relative to the total weight of each face.

    Returns:
        (N, 3, 9) coefficients minimising the weighted squared error + ridge · |L|².
    """
    n = normals.shape[0]
    basis = sh_basis(normals.double(), dim=1).reshape(n, 1, 9, -1)  # (N, 1, 9, P)
    design = basis * face_albedo.double().reshape(n, 3, 1, -1)  # (N, 3, 9, P)
    w = weight.double().reshape(n, 1, 1, -1)
    gram = (design * w) @ design.transpose(2, 3)  # (N, 3, 9, 9)
    rhs = (design * w) @ target.double().reshape(n, 3, -1, 1)  # (N, 3, 9, 1)
    total = w.sum(dim=-1, keepdim=True).clamp_min(1.0)
    gram = gram + ridge * total * torch.eye(9, dtype=torch.float64)
    return torch.linalg.solve(gram, rhs)[..., 0].float()


def _project(shape: torch.Tensor, exp: torch.Tensor, alb: torch.Tensor) -> None:
    """Keep the coefficients inside the model's ranges (in place, no gradient)."""
    with torch.no_grad():
        shape.clamp_(-SHAPE_LIMIT, SHAPE_LIMIT)
        exp.clamp_(0.0, EXP_MAX)
        torch.maximum(alb, torch.from_numpy(ALBEDO_LO), out=alb)
        torch.minimum(alb, torch.from_numpy(ALBEDO_HI), out=alb)


def _skew(w: torch.Tensor) -> torch.Tensor:
    """(N, 3) axis-angle → (N, 3, 3) skew-symmetric matrices."""
    z = torch.zeros_like(w[:, 0])
    x, y, c = w.unbind(1)
    return torch.stack([z, -c, y, c, z, -x, -y, x, z], dim=1).view(-1, 3, 3)


def fit_faces(images: torch.Tensor, landmarks: torch.Tensor, cfg: Fit3dConfig) -> FitResult:
    """Fit the face model to aligned crops, ``cfg.batch`` at a time.

    Args:
        images: (N, 3, S, S) crops in [-1, 1] at ``cfg.size``.
        landmarks: (N, 5, 2) the crops' landmarks in pixels (MTCNN order).

    Returns:
        The fitted pseudo ground truth.
    """
    if images.shape[-1] != cfg.size or images.shape[-2] != cfg.size:
        raise ValueError(f"fit_faces needs {cfg.size}-px crops, got {tuple(images.shape)}.")
    parts = [
        _fit_batch(images[i : i + cfg.batch], landmarks[i : i + cfg.batch], cfg)
        for i in range(0, len(images), cfg.batch)
    ]
    return FitResult.cat(parts)


def _fit_batch(images: torch.Tensor, lm2d: torch.Tensor, cfg: Fit3dConfig) -> FitResult:
    model = FM.face_model(cfg.size)
    n = images.shape[0]
    target = (images.float() + 1.0) / 2.0
    lm2d = lm2d.float()
    lm_mean = FM.landmarks3d(model, model.mean[None]).expand(n, 5, 3)
    rot0, scale0, shift0 = P.weak_perspective_fit(lm_mean, lm2d)

    shape = torch.zeros(n, ID.K_SHAPE, requires_grad=True)
    exp = torch.zeros(n, 2 * E.NUM_AUS, requires_grad=True)
    alb = FR.albedo_basis(cfg.size).a0.expand(n, -1).clone().requires_grad_(True)
    rotvec = torch.zeros(n, 3, requires_grad=True)
    log_s = torch.zeros(n, requires_grad=True)
    shift = shift0.clone().requires_grad_(True)
    opt = torch.optim.Adam(
        [
            {"params": [shape, exp, alb], "lr": cfg.lr},
            {"params": [rotvec, log_s], "lr": cfg.lr * 0.1},
            {"params": [shift], "lr": cfg.lr * 10.0},
        ]
    )
    lm_scale = (0.05 * cfg.size) ** 2

    def forward():
        rot = torch.linalg.matrix_exp(_skew(rotvec)) @ rot0
        m, t = FR.camera(rot, scale0 * log_s.exp(), shift)
        verts = FR.model_vertices(model, shape, exp)
        dark = exp[:, model.wrinkle_cols] @ model.wrinkles.T
        out = FR.render_fit(model, verts, m, t, FR.linear_albedo(cfg.size, alb), None, dark)
        weight = out["alpha"] * out["valid"]
        sh = solve_sh(out["albedo"].detach(), out["normals"].detach(), weight, target, cfg.sh_ridge)
        face = FR.shade(out["albedo"], out["normals"], sh)
        photo = ((face - target).square() * weight).sum((1, 2, 3)) / (3 * weight.sum((1, 2, 3)))
        lm = (out["landmarks"] - lm2d).square().sum(-1).mean(1)  # (N,) px^2
        return rot, verts, out, sh, photo, lm

    for _step in range(cfg.steps):
        _rot, _verts, _out, _sh, photo, lm = forward()
        loss = (
            photo.mean()
            + cfg.w_landmarks * lm.mean() / lm_scale
            + cfg.w_shape * shape.square().mean()
            + cfg.w_exp * exp.abs().mean()
            + cfg.w_albedo * (alb - FR.albedo_basis(cfg.size).a0).square().mean()
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _project(shape, exp, alb)

    with torch.no_grad():
        rot, verts, out, sh, photo, lm = forward()
        return FitResult(
            rotation=rot,
            id_coeffs=torch.cat([shape, alb], dim=1).detach(),
            exp_coeffs=exp.detach().clone(),
            vertices=verts[:, :, model.subsample].transpose(1, 2).contiguous(),
            normals=out["normals"],
            sh=sh,
            mask=out["alpha"],
            yaw=P.yaw_deg(rot),
            scale=scale0 * log_s.exp(),
            shift=shift.detach().clone(),
            photometric=photo,
            landmark_px=(out["landmarks"] - lm2d).norm(dim=-1).mean(dim=1),
        )
