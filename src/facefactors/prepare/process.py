"""The per-sample work of ``prepare``: decode, find the face, align, estimate pose, write.

This module is what a ``--workers`` process runs: :func:`init_worker` loads its
own MTCNN once, then :func:`process_chunk` turns jobs into progress records. The
main process only appends the records to the progress log, in dataset order.

How a face is found (``landmarks_from`` in the record):

- ``"mtcnn"``: detection mode; MTCNN on the whole image, the highest-scoring face
  is aligned (5 points -> ArcFace template) and its pose estimated.
- ``"dataset"``: the dataset's own landmarks (AffectNet, CK+; 68 or 5 points)
  align the face, in ``--no-detect`` mode, or when MTCNN finds no face.
- ``"crop"``: ``--no-detect`` on a pre-aligned crop (RAF-DB aligned, FERPlus,
  SFEW aligned): the crop is only resized; MTCNN, run on the resized crop,
  supplies landmarks for the pose when its weights are available.
- ``None``: a crop whose pose is unknown (no weights, or MTCNN found nothing on
  it). Pose is then recorded as unknown, never guessed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facefactors.errors import DataError
from facefactors.prepare.plan import Job

if TYPE_CHECKING:
    from facefactors.faces.pipeline import Face, FacePipeline

# iBUG 68-point indices: eyes are 36-41 (image left) and 42-47, nose tip 30,
# mouth corners 48 (image left) and 54.
_IBUG_LEFT_EYE = slice(36, 42)
_IBUG_RIGHT_EYE = slice(42, 48)
_IBUG_NOSE, _IBUG_MOUTH_LEFT, _IBUG_MOUTH_RIGHT = 30, 48, 54
# Context added around a tight crop before looking for landmarks on it: MTCNN's
# cascade is trained on boxes with some margin and misses faces filling the frame.
_CROP_PAD_FRACTION = 0.25
_JPEG_QUALITY = 95


@dataclass(frozen=True)
class Settings:
    """What every worker needs to process jobs.

    Attributes:
        out_dir: Output folder (aligned images go under ``images/``).
        size: Side of the output images in pixels.
        image_format: ``"jpg"`` (quality 95) or ``"png"``.
        detect: Detection mode (MTCNN on the whole image); False = ``--no-detect``.
        crop_landmarks: In ``--no-detect`` mode, run MTCNN on each crop for its pose.
        weights_dir: MTCNN weight folder (None: the cache folder).
        min_face_size: MTCNN's smallest face in pixels.
        threads: torch threads per worker (None: leave torch's default).
    """

    out_dir: str
    size: int = 112
    image_format: str = "jpg"
    detect: bool = True
    crop_landmarks: bool = False
    weights_dir: str | None = None
    min_face_size: float = 20.0
    threads: int | None = None

    @property
    def needs_mtcnn(self) -> bool:
        return self.detect or self.crop_landmarks


# Per-process state set by init_worker (each worker process has its own copy).
_SETTINGS: Settings | None = None
_PIPELINE: FacePipeline | None = None


def init_worker(settings: Settings) -> None:
    """Load this process's MTCNN (if the settings need one) and set its thread count."""
    global _SETTINGS, _PIPELINE
    import torch

    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    _SETTINGS = settings
    _PIPELINE = None
    if settings.needs_mtcnn:
        from facefactors.faces.mtcnn import MTCNN
        from facefactors.faces.pipeline import FacePipeline

        mtcnn = MTCNN(weights_dir=settings.weights_dir, min_face_size=settings.min_face_size)
        _PIPELINE = FacePipeline(mtcnn, size=settings.size)


def process_chunk(jobs: list[Job]) -> list[dict[str, Any]]:
    """Records of a list of jobs, in order (run after :func:`init_worker`)."""
    assert _SETTINGS is not None, "init_worker must run before process_chunk"
    return [process_job(job, _SETTINGS, _PIPELINE) for job in jobs]


def five_point_landmarks(landmarks: np.ndarray | None) -> np.ndarray | None:
    """(5, 2) points (left eye, right eye, nose, left and right mouth corner) or None.

    Args:
        landmarks: (5, 2) points in that order, (68, 2) iBUG points (AffectNet,
            CK+), or None. Other layouts give None: no alignment is guessed.
    """
    if landmarks is None:
        return None
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape == (5, 2):
        return lm
    if lm.shape != (68, 2):
        return None
    return np.stack(
        [
            lm[_IBUG_LEFT_EYE].mean(axis=0),
            lm[_IBUG_RIGHT_EYE].mean(axis=0),
            lm[_IBUG_NOSE],
            lm[_IBUG_MOUTH_LEFT],
            lm[_IBUG_MOUTH_RIGHT],
        ]
    )


def decode(job: Job) -> np.ndarray:
    """The (H, W, 3) uint8 RGB source image of a job (file or inline grey pixels)."""
    from facefactors.data.torchdata import decode_sample

    return decode_sample(job.sample)


def given_crop(image: np.ndarray, box: tuple[float, ...] | None, size: int) -> np.ndarray:
    """The dataset's face crop as a (size, size, 3) image, for ``--no-detect``.

    The box (x, y, w, h), if any, is cut out first; a non-square crop is then
    centre-cropped to a square (resizing it would squash the face) and resized.
    """
    from facefactors.data.io import resize_square

    if box is not None:
        h, w = image.shape[:2]
        x, y, bw, bh = box
        x1, y1 = max(int(round(x)), 0), max(int(round(y)), 0)
        x2, y2 = min(int(round(x + bw)), w), min(int(round(y + bh)), h)
        if x2 > x1 and y2 > y1:
            image = image[y1:y2, x1:x2]
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return resize_square(np.ascontiguousarray(image[top : top + side, left : left + side]), size)


def _pose(landmarks5: np.ndarray) -> dict[str, Any]:
    """yaw/pitch/roll (degrees) and the yaw bin of five landmarks."""
    from facefactors.constants import pose_bin
    from facefactors.faces.pose import estimate_pose

    yaw, pitch, roll = estimate_pose(np.asarray(landmarks5, dtype=np.float32))
    return {
        "yaw": float(yaw),
        "pitch": float(pitch),
        "roll": float(roll),
        "pose_bin": pose_bin(yaw),
    }


def _points(arr: np.ndarray) -> list:
    """Coordinates for the JSON record, rounded to 1/100 px."""
    return np.round(np.asarray(arr, dtype=np.float64), 2).tolist()


def _with_dataset_landmarks(
    image: np.ndarray, lm5: np.ndarray, size: int
) -> tuple[np.ndarray, dict]:
    from facefactors.faces.align import align_face

    return align_face(image, lm5, size), {
        "landmarks_from": "dataset",
        "landmarks5": _points(lm5),
        **_pose(lm5),
    }


def _best_face(image: np.ndarray, pipeline: FacePipeline) -> tuple[Face | None, int]:
    """The highest-scoring MTCNN face of an image (aligned, with pose) and the face count.

    Only the kept face is aligned and pose-labelled; the others are just counted.
    """
    boxes, landmarks = pipeline.mtcnn.detect(image)[0]  # sorted by decreasing score
    if len(boxes) == 0:
        return None, 0
    return pipeline.faces_from_landmarks(image, boxes[:1], landmarks[:1])[0], len(boxes)


def _face_fields(face: Face, count: int, source: str) -> dict:
    """Record fields of a kept MTCNN face: score, pose, and how many faces there were."""
    return {
        "faces": count,
        "landmarks_from": source,
        "det_score": float(face.score),
        "yaw": float(face.yaw),
        "pitch": float(face.pitch),
        "roll": float(face.roll),
        "pose_bin": int(face.pose_bin),
    }


def _detect(image: np.ndarray, pipeline: FacePipeline) -> tuple[np.ndarray | None, dict]:
    """Best MTCNN face of the whole image: (aligned crop or None, record fields)."""
    best, count = _best_face(image, pipeline)
    if best is None:
        return None, {"faces": 0}
    return best.aligned, {
        **_face_fields(best, count, "mtcnn"),
        "box": _points(best.box),
        "landmarks5": _points(best.landmarks5),
    }


def _crop_pose(crop: np.ndarray, pipeline: FacePipeline) -> dict:
    """Pose of a pre-aligned crop from MTCNN landmarks found on it (padded for context)."""
    import cv2

    pad = int(round(crop.shape[0] * _CROP_PAD_FRACTION))
    padded = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    best, count = _best_face(padded, pipeline)
    if best is None:
        return {"faces": 0}
    # The pose does not depend on the padding's translation; the landmarks are
    # stored in the written crop's pixels.
    return {**_face_fields(best, count, "crop"), "landmarks5": _points(best.landmarks5 - pad)}


def encode_image(img: np.ndarray, image_format: str) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG (quality 95) or PNG bytes."""
    import cv2

    params = [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY] if image_format == "jpg" else []
    ok, buf = cv2.imencode(f".{image_format}", np.ascontiguousarray(img[:, :, ::-1]), params)
    if not ok:
        raise DataError(f"OpenCV could not encode a {img.shape} image as {image_format}.")
    return buf.tobytes()


def base_record(job: Job) -> dict[str, Any]:
    """The record fields every outcome shares (pose unknown until found)."""
    s = job.sample
    return {
        "i": job.index,
        "key": job.key,
        "path": job.out_rel,
        "file": s.path if s.path is not None else job.key,
        "label": job.label,
        "split": s.split,
        "subject": s.subject,
        "fold": s.fold,
        "status": "ok",
        "faces": None,
        "landmarks_from": None,
        "det_score": None,
        "yaw": None,
        "pitch": None,
        "roll": None,
        "pose_bin": -1,
    }


def process_job(job: Job, settings: Settings, pipeline: FacePipeline | None) -> dict[str, Any]:
    """Prepare one sample and write its aligned image.

    Returns:
        The progress record: ``status`` ``"ok"`` (image written), or ``"missing"``,
        ``"corrupt"`` or ``"no_face"`` with a ``detail`` sentence.
    """
    rec = base_record(job)
    try:
        image = decode(job)
    except DataError as exc:
        gone = job.sample.path is not None and not os.path.isfile(job.sample.path)
        return {**rec, "status": "missing" if gone else "corrupt", "detail": str(exc)}

    lm5 = five_point_landmarks(job.sample.landmarks)
    try:
        if settings.detect:
            assert pipeline is not None, "detection needs an MTCNN pipeline"
            out, fields = _detect(image, pipeline)
            if out is None and lm5 is not None:
                out, more = _with_dataset_landmarks(image, lm5, settings.size)
                fields = {**fields, **more}
        elif lm5 is not None:
            out, fields = _with_dataset_landmarks(image, lm5, settings.size)
        else:
            out = given_crop(image, job.sample.box, settings.size)
            fields = _crop_pose(out, pipeline) if pipeline is not None else {}
    except DataError as exc:  # degenerate landmarks (all points equal, NaN)
        return {**rec, "status": "no_face", "detail": str(exc)}
    if out is None:
        return {**rec, **fields, "status": "no_face", "detail": "MTCNN found no face."}

    from facefactors.checkpoint import atomic_write_bytes

    # Image first, record after: a record always points to a complete image file.
    atomic_write_bytes(
        Path(settings.out_dir) / job.out_rel, encode_image(out, settings.image_format)
    )
    return {**rec, **fields}
