"""``facefactors bench prepare``: detect + align + pose throughput on 640x480 frames."""

from __future__ import annotations

import os
import time


def bench_prepare(
    seconds: float = 5.0,
    threads: int | None = None,
    weights_dir: str | os.PathLike | None = None,
    size: int = 112,
    min_face_size: float = 20,
) -> dict:
    """Faces per second of the full preprocessing on a 640x480 frame with one real face.

    The frame is :func:`facefactors.faces.samples.canvas_640x480` (the Grace Hopper
    portrait on a gradient). Each iteration runs MTCNN, the 5-point alignment and
    the landmark pose estimate on one frame, as ``prepare`` does per image.

    Args:
        seconds: minimum measuring time (after one warm-up call).
        threads: torch intra-op threads (``None``: leave torch's default).
        weights_dir: MTCNN weight folder (``None``: the cache folder).
        size: aligned crop side.
        min_face_size: MTCNN's smallest face in pixels (20 is the standard).

    Returns:
        A flat dict: ``faces_per_s``, ``frames_per_s``, ``ms_per_frame``,
        ``detect_ms`` (MTCNN alone), ``faces_per_frame``, and the settings.
    """
    import torch

    from facefactors.faces.mtcnn import MTCNN
    from facefactors.faces.pipeline import FacePipeline
    from facefactors.faces.samples import canvas_640x480

    if threads is not None:
        torch.set_num_threads(int(threads))
    frame = canvas_640x480()
    mtcnn = MTCNN(weights_dir=weights_dir, min_face_size=min_face_size)
    pipe = FacePipeline(mtcnn, size=size)
    pipe.process(frame)  # warm-up: first calls allocate and pick kernels

    frames = faces = 0
    t0 = time.perf_counter()
    while True:
        faces += len(pipe.process(frame))
        frames += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break

    # Detection alone, to show where the time goes.
    n_det = max(1, frames // 2)
    t1 = time.perf_counter()
    for _ in range(n_det):
        mtcnn.detect(frame)
    detect_s = (time.perf_counter() - t1) / n_det

    return {
        "faces_per_s": round(faces / elapsed, 2),
        "frames_per_s": round(frames / elapsed, 2),
        "ms_per_frame": round(1000 * elapsed / frames, 2),
        "detect_ms": round(1000 * detect_s, 2),
        "faces_per_frame": round(faces / frames, 3),
        "frames": frames,
        "image": "640x480",
        "min_face_size": min_face_size,
        "aligned_size": size,
        "threads": torch.get_num_threads(),
    }
