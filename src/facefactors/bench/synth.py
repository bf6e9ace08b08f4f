"""``facefactors bench synth``: how fast SynthFaces renders.

A *face* is one dataset sample: image + neutral + frontal_neutral + the
mask/normals/albedo/shading maps + factors. Faces are measured on batches of
consecutive samples (``per_identity`` of them share an identity, whose
frontal face is then rendered once per batch) and on shuffled batches (every
sample a different identity). An *image* is one render of an expressive
posed face without maps (what the RAF-DB export does). Rates are reported per
wall-clock second and per CPU second of this process: on a shared machine the
CPU rate is the better estimate of the speed of one uncontended core at
``threads=1``.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

BATCH = 32
PER_IDENTITY = 8


def _measure(fn, seconds: float) -> tuple[int, float, float]:
    """Call ``fn`` (returning an item count) until ``seconds`` of wall time pass."""
    count, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    while True:
        count += fn()
        wall = time.perf_counter() - wall0
        if wall >= seconds:
            return count, wall, time.process_time() - cpu0


def bench_synth(size: int = 112, seconds: float = 5.0, threads: int | None = None) -> dict:
    """Render batches of SynthFaces for ``seconds`` and report the rates.

    Args:
        size: image size.
        seconds: minimum measuring time per quantity (three quantities are measured).
        threads: torch threads (default: all cores).

    Returns:
        ``faces_per_s``, ``faces_per_cpu_s`` (consecutive samples),
        ``shuffled_faces_per_s``, ``shuffled_faces_per_cpu_s``, ``images_per_s``,
        ``images_per_cpu_s``,
        ``threads``, ``size``, ``batch``, ``per_identity``, ``samples`` (rendered
        surface samples), ``model_build_s``, ``load_avg`` (1-minute load
        average, a measure of contention) and ``per_face``.
    """
    from facefactors.synth.dataset import SynthFaces
    from facefactors.synth.facemodel import face_model
    from facefactors.synth.scene import render_batch

    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    model = face_model(size)
    build = time.perf_counter() - t0
    ds = SynthFaces("train", identities=10_000, per_identity=PER_IDENTITY, size=size, seed=0)
    state = {"next": 0}

    def next_indices() -> list[int]:
        start = state["next"]
        state["next"] = (start + BATCH) % (len(ds) - BATCH)
        return list(range(start, start + BATCH))

    def faces() -> int:
        ds.batch(next_indices())
        return BATCH

    rng = np.random.default_rng(0)

    def shuffled() -> int:
        ds.batch(rng.choice(len(ds), size=BATCH, replace=False).tolist())
        return BATCH

    def images() -> int:
        render_batch(ds.factors(next_indices()), size, neutral=False, frontal=False, maps=False)
        return BATCH

    faces()  # warm-up (allocator, caches)
    n_f, wall_f, cpu_f = _measure(faces, seconds)
    n_s, wall_s, cpu_s = _measure(shuffled, seconds)
    n_i, wall_i, cpu_i = _measure(images, seconds)
    return {
        "faces_per_s": n_f / wall_f,
        "faces_per_cpu_s": n_f / max(cpu_f, 1e-9),
        "shuffled_faces_per_s": n_s / wall_s,
        "shuffled_faces_per_cpu_s": n_s / max(cpu_s, 1e-9),
        "images_per_s": n_i / wall_i,
        "images_per_cpu_s": n_i / max(cpu_i, 1e-9),
        "threads": threads,
        "size": size,
        "batch": BATCH,
        "per_identity": PER_IDENTITY,
        "samples": model.num_render,
        "model_build_s": build,
        "load_avg": os.getloadavg()[0],
        "per_face": "image+neutral+frontal_neutral+maps+factors",
        "per_image": "expressive posed image, no maps",
    }
