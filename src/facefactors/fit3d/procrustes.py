"""Head rotation, scale and shift from 5 landmarks: a closed-form weak-perspective fit.

The model's 3D landmarks ``X`` (left eye, right eye, nose, left / right mouth corner,
MTCNN order) map to the image by the renderer's camera
(:func:`facefactors.fit3d.render.camera`)::

    column = s (R X)_x + t_x,     row = -s (R X)_y + t_y

With the image's ``y = -row`` this is ``x = P (s R) X + t`` with ``P`` the first two
rows. :func:`weak_perspective_fit` solves the unconstrained affine ``A = s P R``
by least squares over the centred points, then takes the nearest scaled pair of
orthonormal rows (SVD: ``A = U S V^T`` → ``P R = U V^T``, ``s`` = mean singular
value) and completes the rotation with ``r3 = r1 × r2``, so ``det R = +1``
(a reflection cannot come out). On noiseless landmarks of non-coplanar points the
affine is exact and so are ``R``, ``s`` and ``t``.
"""

from __future__ import annotations

import torch


def image_xy(points: torch.Tensor) -> torch.Tensor:
    """(..., 2) (column, row) pixels → (column, -row): y up, like the head frame."""
    return points * points.new_tensor([1.0, -1.0])


def weak_perspective_fit(
    model_points: torch.Tensor, image_points: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rotation, scale and shift of a weak-perspective camera from point pairs.

    Args:
        model_points: (N, K, 3) head-frame points (K >= 4, not coplanar).
        image_points: (N, K, 2) their (column, row) pixels.

    Returns:
        ``(R (N, 3, 3), s (N,), t (N, 2))`` with ``column, row`` as in the module
        docstring (``t`` in (column, row) pixels).
    """
    x3 = model_points.double()
    x2 = image_xy(image_points.double())
    c3, c2 = x3.mean(dim=1, keepdim=True), x2.mean(dim=1, keepdim=True)
    a3, a2 = x3 - c3, x2 - c2
    # A (N, 2, 3) minimises sum |A a3_k - a2_k|^2.
    gram = a3.transpose(1, 2) @ a3  # (N, 3, 3)
    cross = a2.transpose(1, 2) @ a3  # (N, 2, 3)
    affine = torch.linalg.solve(gram, cross.transpose(1, 2)).transpose(1, 2)
    u, sv, vt = torch.linalg.svd(affine, full_matrices=False)  # u (N,2,2), vt (N,2,3)
    rows = u @ vt
    rot = torch.cat([rows, torch.linalg.cross(rows[:, 0], rows[:, 1])[:, None]], dim=1)
    scale = sv.mean(dim=1)
    proj = scale[:, None, None] * (c3 @ rows.transpose(1, 2))  # (N, 1, 2)
    shift = image_xy((c2 - proj)[:, 0])
    dtype = model_points.dtype
    return rot.to(dtype), scale.to(dtype), shift.to(dtype)


def project_points(
    points: torch.Tensor, rot: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor
) -> torch.Tensor:
    """(N, K, 3) head-frame points → (N, K, 2) (column, row) pixels under the camera."""
    xy = scale[:, None, None] * (points @ rot.transpose(1, 2))[..., :2]
    return image_xy(xy) + shift[:, None, :]


def yaw_deg(rot: torch.Tensor) -> torch.Tensor:
    """Yaw (degrees) of ``R = Rz(roll) Rx(pitch) Ry(yaw)``: ``atan2(-R20, R22)``.

    Args:
        rot: (N, 3, 3).

    Returns:
        (N,).
    """
    return torch.rad2deg(torch.atan2(-rot[:, 2, 0], rot[:, 2, 2]))
