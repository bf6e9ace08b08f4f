"""``facefactors bench edit``: the speed of face editing with the tensorial model on CPU.

Three figures, each on the preset's model with its initial weights (speed does not
depend on what the weights learned):

- ``encode_decode_faces_per_s``: aligned crops through E and D, ``batch`` at a time;
- ``transfer_expression_per_s``: one full :meth:`FaceEditor.transfer_expression` on
  640x480 photos (MTCNN on both, align, encode, decode, paste back);
- ``animate_fps``: ``edit animate`` on a 640x480 video of a moving portrait
  (tracking, batched encode/decode, paste back, MP4 encoding) with the Grace Hopper
  photo as the template.

The last two need the MTCNN weights; without them they are ``null`` with the reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from facefactors.bench.timing import setup, timeit


def _editor(preset: str, weights_dir: str | None, batch: int):
    from facefactors.inference.editor import FaceEditor
    from facefactors.tensorial.config import preset as load
    from facefactors.tensorial.model import TensorialModel

    torch.manual_seed(0)
    cfg = load(preset, ["train.device=cpu"])
    return FaceEditor(TensorialModel(cfg.model), weights_dir=weights_dir, batch_size=batch)


def _encode_decode(editor, batch: int, seconds: float) -> float:
    from facefactors.inference.faceinput import AlignedFace

    s = editor.input_size
    g = torch.Generator().manual_seed(0)
    crops = torch.randint(0, 256, (batch, s, s, 3), generator=g, dtype=torch.uint8).numpy()
    faces = [AlignedFace(c, np.eye(2, 3), c, "bench") for c in crops]

    def step() -> None:
        editor.render(editor.encode_faces(faces), paste=False)

    return batch / timeit(step, seconds, min_runs=2, warmup=1)


def _photo_figures(editor, seconds: float, batch: int) -> dict:
    from facefactors.bench.video import moving_frames, write_video
    from facefactors.faces import samples
    from facefactors.inference.animate import animate_to_file

    target = samples.canvas_640x480()
    try:
        driver = samples.canvas_640x480(samples.astronaut())
    except ImportError:  # scikit-image missing: the same photo drives itself
        driver = target
    editor.transfer_expression(target, driver)  # warm-up: MTCNN, kernels
    per = timeit(lambda: editor.transfer_expression(target, driver), seconds, min_runs=2)
    with tempfile.TemporaryDirectory(prefix="facefactors-bench-edit-") as tmp:
        video = write_video(moving_frames(60), tmp)
        out = Path(tmp) / "anim.mp4"
        stats = animate_to_file(editor, target, video, out, progress=False, batch=batch)
    return {
        "transfer_expression_per_s": round(1.0 / per, 2),
        "transfer_expression_ms": round(1000 * per, 1),
        "animate_fps": round(stats.fps, 2),
        "animate_frames": stats.frames,
        "animate_frames_without_face": stats.missed,
    }


def bench_edit(
    seconds: float = 5.0,
    threads: int | None = None,
    batch: int = 32,
    preset: str = "tensorial_synth_quick",
    weights_dir: str | None = None,
) -> dict:
    """The three editing speeds (see the module docstring), with the settings."""
    from facefactors.faces import weights as W

    setup(threads, "cpu")
    editor = _editor(preset, weights_dir, batch)
    result: dict = {
        "preset": preset,
        "image_size": editor.input_size,
        "encode_decode_faces_per_s": round(_encode_decode(editor, batch, seconds), 1),
    }
    have = all(status == "ok" for _n, _p, status in W.weights_status(weights_dir))
    if have:
        with torch.inference_mode():
            result.update(_photo_figures(editor, seconds, min(batch, 16)))
    else:
        reason = "MTCNN weights missing (facefactors weights fetch mtcnn)"
        result.update(transfer_expression_per_s=None, animate_fps=None, skipped=reason)
    result.update(
        batch=batch,
        threads=torch.get_num_threads(),
        load_average_1min=round(os.getloadavg()[0], 2),
    )
    return result
