"""``facefactors bench video``: end-to-end video fps (decode + detect/track + align + predict).

The video is synthetic but the face is real: the Grace Hopper portrait on a
640x480 gradient (:func:`facefactors.faces.samples.canvas_640x480`), moved by a
few pixels per frame along a closed path, encoded with OpenCV (MP4 ``mp4v``,
or MJPG in an AVI where that codec is missing). The expression model is a
freshly initialised E_exp + C_exp of the requested width: its weights do not
change its speed.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from facefactors.errors import DataError

# (fourcc, suffix) tried in order: MP4 is what users have; MJPG/AVI is always built in.
_CODECS = (("mp4v", ".mp4"), ("MJPG", ".avi"))


def moving_frames(n: int, frame_size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """``n`` RGB frames of a real portrait moving along a closed path (max 12 px, 6 px).

    Args:
        n: number of frames; frame ``n`` would equal frame 0, so the clip loops smoothly.
        frame_size: ``(width, height)``; the 640x480 canvas is resized to it.

    Returns:
        List of (height, width, 3) uint8 frames.
    """
    import cv2

    from facefactors.faces.samples import canvas_640x480

    base = canvas_640x480()
    w, h = frame_size
    if (w, h) != (640, 480):
        base = cv2.resize(base, (w, h), interpolation=cv2.INTER_AREA)
    frames = []
    for t in range(n):
        phase = 2 * math.pi * t / n
        shift = np.float32([[1, 0, 12 * math.sin(phase)], [0, 1, 6 * math.sin(2 * phase)]])
        frames.append(cv2.warpAffine(base, shift, (w, h), borderMode=cv2.BORDER_REPLICATE))
    return frames


def write_video(
    frames: list[np.ndarray], folder: str | os.PathLike, stem: str = "synthetic", fps: float = 30
) -> Path:
    """Encode RGB frames with the first OpenCV codec that works (mp4v .mp4, else MJPG .avi).

    A codec counts as working when the written file reads back with every frame.

    Raises:
        DataError: no codec could write a readable video.
    """
    import cv2

    h, w = frames[0].shape[:2]
    for fourcc, suffix in _CODECS:
        path = Path(folder) / f"{stem}{suffix}"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
        if not writer.isOpened():
            writer.release()
            continue
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        cap = cv2.VideoCapture(str(path))
        count = 0
        while cap.read()[0]:
            count += 1
        cap.release()
        if count == len(frames):
            return path
    raise DataError(f"OpenCV could not write a readable video in {folder} with mp4v or MJPG.")


def _fps_run(rec, path: Path, seconds: float, track: bool, detect_every: int) -> dict:
    """Loop over the video until ``seconds`` have passed; frames, faces and time."""
    frames = faces = full = refine = 0
    t0 = time.perf_counter()
    while True:
        tracker = rec.tracker(detect_every) if track else None
        for _index, _frame, preds in rec.iter_video(path, track=track, tracker=tracker):
            frames += 1
            faces += len(preds)
        if tracker is not None:
            full += tracker.full_detections
            refine += tracker.refinements
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    out = {"fps": frames / elapsed, "frames": frames, "faces_per_frame": faces / frames}
    if track:
        out.update(full_detections=full, onet_refinements=refine)
    return out


def _component_ms(rec, frame: np.ndarray, repeats: int = 5) -> dict:
    """Milliseconds of each stage on one frame, to show where the time goes."""
    from facefactors.inference.tracking import refine_with_onet

    mtcnn = rec.pipeline.mtcnn
    boxes, landmarks = mtcnn.detect(frame)[0]
    faces = rec.pipeline.faces_from_landmarks(frame, boxes, landmarks)
    crops = np.stack([f.aligned for f in faces] * rec.batch_size)
    stages = {
        "detect_ms": lambda: mtcnn.detect(frame),
        "onet_track_ms": lambda: refine_with_onet(mtcnn, frame, boxes),
        "align_pose_ms": lambda: rec.pipeline.faces_from_landmarks(frame, boxes, landmarks),
        # Per face, at the benchmark's batch size.
        "classify_ms_per_face": lambda: rec.probabilities(crops),
    }
    out = {}
    for name, fn in stages.items():
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        ms = 1000 * (time.perf_counter() - t0) / repeats
        out[name] = round(ms / len(crops) if name == "classify_ms_per_face" else ms, 2)
    return out


def bench_video(
    seconds: float = 5.0,
    threads: int | None = None,
    size: int = 112,
    min_face_size: float = 20,
    detect_every: int = 15,
    width: int = 64,
    batch: int = 8,
    compare: bool = True,
    weights_dir: str | os.PathLike | None = None,
) -> dict:
    """Frames per second of ``predict`` on a synthetic 640x480 video with one real face.

    Each frame is decoded (OpenCV), its face found (full MTCNN on key frames and
    O-Net tracking in between, as ``facefactors predict`` does on videos by
    default), aligned, pose-labelled and classified (aligned faces of ``batch``
    frames per classifier call).

    Args:
        seconds: minimum measuring time per mode (after a warm-up pass).
        threads: torch intra-op threads (``None``: torch's default).
        size: aligned face side S (the classifier's input).
        min_face_size: MTCNN's smallest face in pixels.
        detect_every: full detection every K frames when tracking.
        width: E_exp width (64 = the paper's ResNet-18).
        batch: frames per classifier call.
        compare: also measure full detection on every frame (``fps_detect_every_frame``).
        weights_dir: MTCNN weight folder (``None``: the cache folder).

    Returns:
        A flat dict: ``fps`` (tracking), ``ms_per_frame``, ``frames``,
        ``faces_per_frame``, ``full_detections``, ``onet_refinements``,
        ``fps_detect_every_frame`` (with ``compare``), per-stage milliseconds
        (``detect_ms``, ``onet_track_ms``, ``align_pose_ms``, ``classify_ms_per_face``),
        the model, the settings and the 1-minute load average.
    """
    import torch

    from facefactors.export.classifier import ExpressionClassifier
    from facefactors.inference import ExpressionRecognizer
    from facefactors.ipd.config import IPDConfig
    from facefactors.ipd.export import inference_state
    from facefactors.ipd.model import build_model

    if threads is not None:
        torch.set_num_threads(int(threads))
    cfg = IPDConfig()
    cfg.model.variant = "baseline"
    cfg.model.width = width
    cfg.data.size = size
    torch.manual_seed(0)
    classifier = ExpressionClassifier.from_state(inference_state(build_model(cfg), cfg))
    params = sum(p.numel() for p in classifier.parameters())
    rec = ExpressionRecognizer(
        classifier, weights_dir=weights_dir, min_face_size=min_face_size, batch_size=batch
    )
    with tempfile.TemporaryDirectory(prefix="facefactors-bench-video-") as tmp:
        frames = moving_frames(90)
        path = write_video(frames, tmp)
        rec.predict_arrays(frames[:1], ["warm-up"])  # first calls allocate and pick kernels
        tracked = _fps_run(rec, path, seconds, True, detect_every)
        result = {
            "fps": round(tracked["fps"], 2),
            "ms_per_frame": round(1000 / tracked["fps"], 2),
            "frames": tracked["frames"],
            "faces_per_frame": round(tracked["faces_per_frame"], 3),
            "full_detections": tracked["full_detections"],
            "onet_refinements": tracked["onet_refinements"],
        }
        if compare:
            full = _fps_run(rec, path, seconds, False, detect_every)
            result["fps_detect_every_frame"] = round(full["fps"], 2)
            result["faces_per_frame_detect_every_frame"] = round(full["faces_per_frame"], 3)
        result.update(_component_ms(rec, frames[0]))
        result.update(
            video=f"640x480 {path.suffix[1:]}, 90 frames looped",
            model=f"{cfg.model.backbone} width {width} at {size} px (E_exp + C_exp)",
            params_millions=round(params / 1e6, 2),
            min_face_size=min_face_size,
            detect_every=detect_every,
            batch=batch,
            threads=torch.get_num_threads(),
            # Other processes competing for the cores make every number above lower.
            load_average_1min=round(os.getloadavg()[0], 2),
        )
    return result
