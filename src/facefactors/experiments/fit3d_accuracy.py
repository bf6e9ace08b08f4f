"""How good is the fitted pseudo ground truth? Measured on synthetic faces, where it is known.

Faces of unseen TEST identities are rendered with their maps; the fitter sees only
the image and five landmarks, which come from one of two sources:

- ``true``: the renderer's exact 2D landmarks (an oracle detector: the upper bound),
- ``net``: a :class:`~facefactors.faces.landmark_net.LandmarkNet` run on the image
  (what a user without landmarks gets on low-resolution crops).

Each fit is compared with a trivial reference on the same faces and landmarks: the
**mean face** posed by the landmark Procrustes fit and lit by the least-squares SH
(the fitter with zero refinement steps). Errors:

- ``rotation_deg``: geodesic angle between the fitted and the true rotation;
- ``normal_deg``: angle between fitted and true normals, over pixels inside both masks
  (``mask_iou`` says how well the masks agree);
- ``sh_rmse`` and ``sh_rel``: RMSE of the 27 SH coefficients and ``|L̂ − L| / |L|``;
  ``sh_rel_scaled`` the same after the best scalar rescaling of ``L̂`` (albedo and
  light share an unobservable scale);
- ``vertex_mm``: mean distance of the 522 subsample vertices (head frame, mm, no
  pose), raw and after a similarity alignment (``vertex_mm_aligned``, as the
  tensorial evaluation measures 3D shape);
- ``shape_rmse``, ``exp_rmse``, ``albedo_rmse``: coefficient RMSEs;
- ``faces_per_s``: fitting speed on this process's torch threads.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from facefactors.experiments.tensorial_eval import vertex_error_mm
from facefactors.faces.pose import geodesic_deg
from facefactors.fit3d.fitter import Fit3dConfig, FitResult, fit_faces
from facefactors.fit3d.landmarks import net_landmarks
from facefactors.synth import identity as ID


def render_test_faces(n: int, size: int, seed: int = 0, per_identity: int = 4) -> dict:
    """``n`` rendered TEST faces with maps (``SynthFaces.batch`` keys)."""
    from facefactors.synth.dataset import SynthFaces

    ids = -(-n // per_identity)
    ds = SynthFaces(split="test", identities=ids, per_identity=per_identity, size=size, seed=seed)
    return ds.batch(list(range(n)))


def fit_errors(fit: FitResult, truth: dict) -> dict[str, float]:
    """Mean errors of a fit against the true factors (module docstring)."""
    rot = geodesic_deg(fit.rotation.double().numpy(), truth["rotation"].double().numpy())
    both = (fit.mask > 0.5) & (truth["mask"] > 0.5)
    cos = (fit.normals * truth["normals"]).sum(1, keepdim=True).clamp(-1, 1)
    ang = torch.rad2deg(torch.acos(cos))
    normal = float(ang[both].mean())
    union = ((fit.mask > 0.5) | (truth["mask"] > 0.5)).sum()
    d_sh = fit.sh - truth["sh"]
    sh_rel = d_sh.flatten(1).norm(dim=1) / truth["sh"].flatten(1).norm(dim=1)
    # Albedo and light trade a common scale; the best rescaling of the fitted light
    # measures its shape (direction, colour balance) alone.
    f, g = fit.sh.flatten(1), truth["sh"].flatten(1)
    c = (f * g).sum(1, keepdim=True) / f.square().sum(1, keepdim=True).clamp_min(1e-12)
    sh_rel_scaled = (c * f - g).norm(dim=1) / g.norm(dim=1)
    pred_v, true_v = fit.vertices.double().numpy(), truth["vertices"].double().numpy()
    k = ID.K_SHAPE

    def rmse(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).square().mean().sqrt())

    return {
        "rotation_deg": float(rot.mean()),
        "yaw_abs_deg": float((fit.yaw - truth["yaw"]).abs().mean()),
        "normal_deg": normal,
        "mask_iou": float(both.sum() / union),
        "sh_rmse": rmse(fit.sh, truth["sh"]),
        "sh_rel": float(sh_rel.mean()),
        "sh_rel_scaled": float(sh_rel_scaled.mean()),
        "vertex_mm": float(np.linalg.norm(pred_v - true_v, axis=-1).mean()),
        "vertex_mm_aligned": float(vertex_error_mm(pred_v, true_v).mean()),
        "shape_rmse": rmse(fit.id_coeffs[:, :k], truth["id_coeffs"][:, :k]),
        "albedo_rmse": rmse(fit.id_coeffs[:, k:], truth["id_coeffs"][:, k:]),
        "exp_rmse": rmse(fit.exp_coeffs, truth["exp_coeffs"]),
        "photometric_mse": float(fit.photometric.mean()),
        "landmark_px": float(fit.landmark_px.mean()),
    }


def timed_fit(images: torch.Tensor, landmarks: torch.Tensor, cfg: Fit3dConfig) -> tuple:
    """``(fit, faces per second)``."""
    t0 = time.perf_counter()
    fit = fit_faces(images, landmarks, cfg)
    return fit, len(images) / (time.perf_counter() - t0)


def accuracy(
    faces: int = 64,
    cfg: Fit3dConfig | None = None,
    seed: int = 0,
    landmark_net: Any = None,
) -> dict[str, Any]:
    """Fit ``faces`` rendered TEST faces; errors of the fit and of the mean-face reference.

    Returns:
        ``{"faces", "size", "steps", "sources": {source: {"fit": errors, "mean_face":
        errors, "landmark_input_px": ...}}}`` with a ``net`` source only when a
        landmark net is given.
    """
    cfg = cfg or Fit3dConfig()
    truth = render_test_faces(faces, cfg.size, seed)
    sources = {"true": truth["landmarks5"]}
    if landmark_net is not None:
        sources["net"] = net_landmarks(landmark_net, truth["image"])
    out: dict[str, Any] = {"faces": faces, "size": cfg.size, "steps": cfg.steps, "sources": {}}
    for name, lm in sources.items():
        fit, speed = timed_fit(truth["image"], lm, cfg)
        ref, ref_speed = timed_fit(truth["image"], lm, replace(cfg, steps=0))
        out["sources"][name] = {
            "landmark_input_px": float((lm - truth["landmarks5"]).norm(dim=-1).mean()),
            "fit": {**fit_errors(fit, truth), "faces_per_s": speed},
            "mean_face": {**fit_errors(ref, truth), "faces_per_s": ref_speed},
        }
    return out
