"""Face preprocessing: MTCNN detection, 5-point alignment, landmark head pose, weights.

Modules:
    nms: greedy NMS in torch ("union" and "min" overlaps), batched per image.
    align: Umeyama similarity transform and ArcFace-template warping.
    mtcnn_nets / mtcnn: the P-Net, R-Net, O-Net cascade.
    pose: yaw/pitch/roll from 5 landmarks, calibrated on synthetic faces.
    pipeline: ``FacePipeline`` = detect + align + pose, used by ``prepare``/``predict``.
    weights: fetching and verifying the MTCNN weights (``facefactors weights``).
    samples: real photos shipped in our dependencies.

The names below are imported on first use, so ``import facefactors.faces`` stays cheap.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "MTCNN": "facefactors.faces.mtcnn",
    "Face": "facefactors.faces.pipeline",
    "FacePipeline": "facefactors.faces.pipeline",
    "align_face": "facefactors.faces.align",
    "similarity_transform": "facefactors.faces.align",
    "estimate_pose": "facefactors.faces.pose",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'facefactors.faces' has no attribute {name!r}")
