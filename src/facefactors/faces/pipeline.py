"""Detect, align and estimate head pose: the preprocessing shared by ``prepare`` and ``predict``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facefactors.constants import pose_bin
from facefactors.faces.align import align_face
from facefactors.faces.mtcnn import MTCNN
from facefactors.faces.pose import estimate_pose


@dataclass
class Face:
    """One detected face.

    Attributes:
        box: (4,) float32 ``[x1, y1, x2, y2]`` in image pixels (may pass the border).
        score: O-Net face probability.
        landmarks5: (5, 2) float32 left eye, right eye, nose, left and right mouth
            corner (image left/right).
        aligned: (size, size, 3) uint8 RGB crop aligned to the ArcFace template.
        yaw, pitch, roll: head pose in degrees (see :mod:`facefactors.faces.pose`).
        pose_bin: yaw class 0..4 (``facefactors.constants.pose_bin``).
    """

    box: np.ndarray
    score: float
    landmarks5: np.ndarray
    aligned: np.ndarray
    yaw: float
    pitch: float
    roll: float
    pose_bin: int


class FacePipeline:
    """MTCNN detection, 5-point alignment and landmark head pose.

    Args:
        mtcnn: a loaded :class:`~facefactors.faces.mtcnn.MTCNN`.
        size: side of the aligned crops (112 or 64).
        max_faces: keep at most this many faces per image, highest score first
            (``None``: all).
    """

    def __init__(self, mtcnn: MTCNN, size: int = 112, max_faces: int | None = None) -> None:
        self.mtcnn = mtcnn
        self.size = int(size)
        self.max_faces = max_faces

    def process(self, image: np.ndarray) -> list[Face]:
        """All faces of one RGB uint8 (H, W, 3) image, by decreasing detection score."""
        return self.process_batch([image])[0]

    def process_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces of several images; images of the same size are detected as one batch."""
        detections = self.mtcnn.detect(list(images))
        return [
            self.faces_from_landmarks(image, boxes, landmarks)
            for image, (boxes, landmarks) in zip(images, detections)
        ]

    def faces_from_landmarks(
        self, image: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray
    ) -> list[Face]:
        """Align and pose-label detections (or landmarks from elsewhere, e.g. a dataset).

        Args:
            image: (H, W, 3) uint8 RGB.
            boxes: (N, 5) rows ``[x1, y1, x2, y2, score]``.
            landmarks: (N, 5, 2).
        """
        n = len(boxes) if self.max_faces is None else min(len(boxes), self.max_faces)
        faces = []
        for k in range(n):
            lm = np.asarray(landmarks[k], dtype=np.float32)
            yaw, pitch, roll = estimate_pose(lm)
            faces.append(
                Face(
                    box=np.asarray(boxes[k, :4], dtype=np.float32),
                    score=float(boxes[k, 4]),
                    landmarks5=lm,
                    aligned=align_face(image, lm, self.size),
                    yaw=yaw,
                    pitch=pitch,
                    roll=roll,
                    pose_bin=pose_bin(yaw),
                )
            )
        return faces
