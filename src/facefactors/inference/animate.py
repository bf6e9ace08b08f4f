"""Animate a still face with the expressions of a video (paper §4.2, Fig. 10 as a video).

Every video frame's face (MTCNN on key frames, O-Net tracking in between, as
``facefactors predict`` does; or the frame itself when the video holds aligned
crops) is encoded, and its expression code z_exp replaces the template's; the
template's other codes and its photo stay. Frames are processed in batches, and
each decoded crop is pasted back into the template photo. A frame where no face
is found repeats the previous driver's expression (the template's own at the start).

The output has the video's frame size: the template photo is letterboxed into it,
or, with ``side_by_side``, the video frame and the animated template stand next to
each other (twice the width).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facefactors.errors import DataError
from facefactors.inference.editor import FaceCodes, FaceEditor
from facefactors.inference.faceinput import IDENTITY_MATRIX, AlignedFace
from facefactors.inference.io import VideoFrames


@dataclass
class AnimateStats:
    """What an animation did: ``frames`` written, ``missed`` frames without a face, ``fps``."""

    frames: int = 0
    missed: int = 0
    fps: float = 0.0


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` (h, w, 3) scaled to fit (height, width, 3), centred on black."""
    import cv2

    h, w = image.shape[:2]
    k = min(width / w, height / h)
    nw, nh = max(1, round(w * k)), max(1, round(h * k))
    inter = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    small = cv2.resize(image, (nw, nh), interpolation=inter)
    out = np.zeros((height, width, 3), np.uint8)
    y0, x0 = (height - nh) // 2, (width - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = small
    return out


def _driver_faces(
    editor: FaceEditor, frames: VideoFrames, aligned: bool, detect_every: int
) -> Iterator[tuple[np.ndarray, AlignedFace | None]]:
    """Per frame: (frame, its first face or None)."""
    s = editor.input_size
    tracker = None
    if not aligned:
        from facefactors.inference.tracking import FaceTracker

        tracker = FaceTracker(editor.inputs.pipeline.mtcnn, detect_every=detect_every)
    for _index, frame in frames:
        if aligned:
            if frame.shape[:2] != (s, s):
                raise DataError(
                    f"Video {frames.path} must hold {s} x {s} aligned frames with --aligned, "
                    f"got {frame.shape[1]} x {frame.shape[0]}."
                )
            yield frame, AlignedFace(frame, IDENTITY_MATRIX.copy(), frame, str(frames.path))
            continue
        boxes, landmarks = tracker.update(frame)
        faces = editor.inputs.pipeline.faces_from_landmarks(frame, boxes[:1], landmarks[:1])
        if not faces:
            yield frame, None
            continue
        from facefactors.faces.align import alignment_matrix

        m = alignment_matrix(faces[0].landmarks5, s)
        yield frame, AlignedFace(faces[0].aligned, m, frame, str(frames.path))


def animate_frames(
    editor: FaceEditor,
    template: Any,
    video: str | os.PathLike,
    *,
    side_by_side: bool = False,
    aligned: bool | None = None,
    batch: int = 16,
    detect_every: int = 15,
    stats: AnimateStats | None = None,
) -> Iterator[np.ndarray]:
    """Output frames, (H, W, 3) uint8 RGB at the video's size (2W wide side by side).

    Args:
        editor: the tensorial model.
        template: the still face (any single-image input form).
        video: the driving video (OpenCV).
        side_by_side: put the video frame on the left of each output frame.
        aligned: the template is an aligned crop (see :meth:`FaceInputs.faces`); the
            video's frames are aligned crops when ``True``.
        batch: frames per model call.
        detect_every: full MTCNN every this many frames (tracking in between).
        stats: filled in as frames are written.

    Raises:
        DataError: the template holds no face or several; OpenCV cannot open the video.
    """
    stats = stats if stats is not None else AnimateStats()
    tpl = editor.encode_one(template, "template", aligned)
    frames = VideoFrames(video)
    last = tpl.expression
    pending: list[tuple[np.ndarray, AlignedFace | None]] = []

    def flush() -> Iterator[np.ndarray]:
        nonlocal last
        found = [f for _fr, f in pending if f is not None]
        drivers = iter(editor.encode_faces(found)) if found else iter(())
        edits: list[FaceCodes] = []
        for _frame, face in pending:
            if face is not None:
                last = next(drivers).expression
            else:
                stats.missed += 1
            edits.append(tpl.replace(expression=last))
        _crops, results = editor.render(edits)
        for (frame, _face), res in zip(pending, results):
            h, w = frame.shape[:2]
            out = letterbox(res.image, w, h)
            stats.frames += 1
            yield np.concatenate([frame, out], axis=1) if side_by_side else out
        pending.clear()

    for item in _driver_faces(editor, frames, bool(aligned), detect_every):
        pending.append(item)
        if len(pending) >= batch:
            yield from flush()
    if pending:
        yield from flush()


def _fps(path: str | os.PathLike) -> float:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS)) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return fps if fps > 0 else 25.0


def write_video(path: str | os.PathLike, frames: Iterator[np.ndarray], fps: float) -> int:
    """Write RGB frames to a video (``mp4v`` for .mp4/.mov, ``MJPG`` for .avi) atomically.

    The frames go to a hidden temporary file next to ``path``, renamed over it only
    when every frame is written; on any error the temporary file is removed.

    Returns:
        The number of frames written.

    Raises:
        DataError: an unsupported suffix, OpenCV cannot open the writer, or no frame.
    """
    import cv2

    path = Path(path)
    codecs = {".mp4": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
    suffix = path.suffix.lower()
    if suffix not in codecs:
        raise DataError(f"Video output {path} must end in {', '.join(codecs)}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    writer = None
    count = 0
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*codecs[suffix]),
                                         fps, (w, h))  # fmt: skip
                if not writer.isOpened():
                    raise DataError(f"OpenCV could not open a video writer for {path}.")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            count += 1
        if writer is None:
            raise DataError(f"No frame was produced for {path}.")
        writer.release()
        writer = None
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.release()
        tmp.unlink(missing_ok=True)
    return count


def animate_to_file(
    editor: FaceEditor,
    template: Any,
    video: str | os.PathLike,
    out: str | os.PathLike,
    *,
    side_by_side: bool = False,
    aligned: bool | None = None,
    progress: bool = True,
    batch: int = 16,
) -> AnimateStats:
    """:func:`animate_frames` written to ``out`` at the video's frame rate, with a tqdm bar."""
    import time

    from tqdm import tqdm

    from facefactors.inference.io import video_frame_count

    stats = AnimateStats()
    frames = animate_frames(editor, template, video, side_by_side=side_by_side,
                            aligned=aligned, batch=batch, stats=stats)  # fmt: skip
    bar = tqdm(frames, total=video_frame_count(video), unit="frame", disable=not progress,
               desc="animate")  # fmt: skip
    t0 = time.perf_counter()
    with torch.inference_mode():
        write_video(out, iter(bar), _fps(video))
    stats.fps = stats.frames / max(time.perf_counter() - t0, 1e-9)
    return stats
