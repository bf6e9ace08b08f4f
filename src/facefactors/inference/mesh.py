"""A 3D face mesh from one image: the tensorial model's fc heads through the linear face model.

The fc heads of Eqs. 10–11 predict the face model's coefficients, ``id_pred`` =
``[shape (K_SHAPE), albedo (K_ALBEDO)]`` and ``exp_pred`` (per-side AU
activations). The vertices are ``mean + shape @ B_id + exp @ B_exp``
(:mod:`facefactors.synth.facemodel`) at the vertex subsample the datasets report
(522 points, head-frame mm, no pose), triangulated over its lattice
(:func:`~facefactors.synth.facemodel.subsample_triangles`). Vertex colours are the
model's decoded albedo map sampled where each vertex projects in the aligned crop
under the predicted head rotation (the renderer's own projection); a vertex that
the face hides from the camera takes the colour of what covers it.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from facefactors.checkpoint import atomic_write_bytes
from facefactors.errors import DataError

MESH_SUFFIXES = (".obj", ".ply")


@dataclass
class Mesh:
    """One face mesh.

    Attributes:
        vertices: (V, 3) float32 head-frame millimetres (x right, y up, z to the camera).
        triangles: (T, 3) int64 vertex indices, counter-clockwise seen from the front.
        colours: (V, 3) uint8 sRGB-coded vertex colours (the linear albedo, scaled to 255).
        source: the input it came from.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    colours: np.ndarray
    source: str = ""

    def to_obj(self) -> str:
        """Wavefront OBJ text with ``v x y z r g b`` vertex colours (0..1) and 1-based faces."""
        buf = io.StringIO()
        buf.write(f"# facefactors face mesh of {self.source}\n")
        rgb = self.colours.astype(np.float64) / 255.0
        for (x, y, z), (r, g, b) in zip(self.vertices.astype(np.float64), rgb):
            buf.write(f"v {x:.4f} {y:.4f} {z:.4f} {r:.4f} {g:.4f} {b:.4f}\n")
        for a, b, c in self.triangles + 1:
            buf.write(f"f {a} {b} {c}\n")
        return buf.getvalue()

    def to_ply(self) -> bytes:
        """Binary little-endian PLY with float xyz, uchar RGB and int vertex_indices."""
        v, t = len(self.vertices), len(self.triangles)
        header = (
            "ply\nformat binary_little_endian 1.0\n"
            f"comment facefactors face mesh of {self.source}\n"
            f"element vertex {v}\nproperty float x\nproperty float y\nproperty float z\n"
            "property uchar red\nproperty uchar green\nproperty uchar blue\n"
            f"element face {t}\nproperty list uchar int vertex_indices\nend_header\n"
        )
        vert = np.zeros(v, dtype=[("p", "<f4", 3), ("c", "u1", 3)])
        vert["p"], vert["c"] = self.vertices, self.colours
        face = np.zeros(t, dtype=[("n", "u1"), ("i", "<i4", 3)])
        face["n"], face["i"] = 3, self.triangles
        return header.encode("ascii") + vert.tobytes() + face.tobytes()

    def save(self, path: str | os.PathLike) -> Path:
        """Write OBJ or PLY by the suffix, atomically.

        Raises:
            DataError: another suffix.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in MESH_SUFFIXES:
            raise DataError(f"Mesh output {path} must end in .obj or .ply.")
        data = self.to_obj().encode("utf-8") if suffix == ".obj" else self.to_ply()
        atomic_write_bytes(path, data)
        return path


def mesh_vertices(
    id_pred: torch.Tensor, exp_pred: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """All vertices of the linear face model for predicted coefficients.

    Args:
        id_pred: (B, K_SHAPE + K_ALBEDO) predicted identity coefficients (shape part used).
        exp_pred: (B, 2 * NUM_AUS) predicted expression coefficients.
        size: image size the face model is sampled for.

    Returns:
        ``(neutral, expressive)``, each (B, 3, V) head-frame mm in the face model's
        full vertex order.
    """
    from facefactors.synth import facemodel as FM
    from facefactors.synth.identity import K_SHAPE

    fm = FM.face_model(size)
    neutral = FM.identity_vertices(fm, id_pred[:, :K_SHAPE].float())
    return neutral, FM.add_expression(fm, neutral, exp_pred.float())


def sample_albedo(
    albedo: torch.Tensor,
    neutral: torch.Tensor,
    verts: torch.Tensor,
    rotation: torch.Tensor,
    size: int,
) -> torch.Tensor:
    """Colours of the albedo map where each vertex projects under its head rotation.

    Args:
        albedo: (B, 3, S, S) linear albedo in [0, 1].
        neutral: (B, 3, V) neutral vertices (their landmarks place the face, as the
            renderer does); verts: (B, 3, V) the expressive ones, head-frame mm.
        rotation: (B, 3, 3).
        size: S.

    Returns:
        (B, V, 3) in [0, 1].
    """
    from facefactors.synth import facemodel as FM
    from facefactors.synth.scene import pose_transforms, project

    fm = FM.face_model(size)
    m, t = pose_transforms(FM.landmarks3d(fm, neutral), rotation.float(), size)
    px = project(verts, m, t)[:, :2]  # (B, 2, V) column, row in pixels
    grid = (px + 0.5) / size * 2.0 - 1.0  # pixel centres, align_corners=False
    out = F.grid_sample(albedo, grid.transpose(1, 2)[:, None], align_corners=False)
    return out[:, :, 0].transpose(1, 2).clamp(0.0, 1.0)


def meshes_from_output(
    id_pred: torch.Tensor,
    exp_pred: torch.Tensor,
    albedo: torch.Tensor,
    rotation: torch.Tensor,
    sources: list[str],
) -> list[Mesh]:
    """One :class:`Mesh` per face from the decoder's fc heads, albedo and rotation.

    Args:
        id_pred: (B, K_id coeffs); exp_pred: (B, K_exp coeffs); albedo: (B, 3, S, S);
        rotation: (B, 3, 3); sources: B names.
    """
    from facefactors.synth import facemodel as FM

    size = albedo.shape[-1]
    fm = FM.face_model(size)
    neutral, verts = mesh_vertices(id_pred, exp_pred, size)
    colours = sample_albedo(albedo.float(), neutral, verts, rotation, size)[:, fm.subsample]
    sub = verts[:, :, fm.subsample].transpose(1, 2)
    tris = FM.subsample_triangles()
    rgb = (colours * 255.0).round().to(torch.uint8).numpy()
    return [
        Mesh(sub[i].numpy().astype(np.float32), tris.copy(), rgb[i], src)
        for i, src in enumerate(sources)
    ]
