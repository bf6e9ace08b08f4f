"""Real face photographs that ship inside our dependencies, for tests, docs and benchmarks.

- ``grace_hopper``: ``matplotlib.cbook.get_sample_data('grace_hopper.jpg')``, 600x512.
- ``astronaut``: ``skimage.data.astronaut()`` (Eileen Collins), 512x512; needs
  scikit-image (a dev dependency).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facefactors.errors import DataError


def grace_hopper() -> np.ndarray:
    """The Grace Hopper portrait shipped with matplotlib, (600, 512, 3) uint8 RGB."""
    import matplotlib.cbook as cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f, Image.open(f) as im:
        return np.asarray(im.convert("RGB")).copy()


def astronaut() -> np.ndarray:
    """The astronaut portrait shipped with scikit-image, (512, 512, 3) uint8 RGB."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


def canvas_640x480(photo: np.ndarray | None = None) -> np.ndarray:
    """A 640x480 RGB frame with a real portrait pasted in the middle of a gradient.

    The portrait (default: Grace Hopper) is scaled to 400 px high, which puts a
    face of roughly 150 px in a VGA frame, as in a webcam shot.

    Returns:
        (480, 640, 3) uint8.
    """
    import cv2

    photo = grace_hopper() if photo is None else photo
    h, w = photo.shape[:2]
    new_h = 400
    new_w = round(w * new_h / h)
    small = cv2.resize(photo, (new_w, new_h), interpolation=cv2.INTER_AREA)
    # A colour gradient rather than a flat colour, so the frame is not trivially blank.
    ramp = np.linspace(60, 200, 640, dtype=np.float32)
    canvas = np.empty((480, 640, 3), dtype=np.uint8)
    canvas[:] = np.stack([ramp, ramp[::-1], np.full_like(ramp, 128)], axis=1)[None].astype(np.uint8)
    y0, x0 = (480 - new_h) // 2, (640 - new_w) // 2
    canvas[y0 : y0 + new_h, x0 : x0 + new_w] = small
    return canvas


def write_aligned_examples(pipeline, out_dir: str | os.PathLike) -> list[Path]:
    """Save the aligned crop of each sample photo as ``aligned_<name>.png`` in ``out_dir``.

    This is how ``docs/aligned_grace_hopper.png`` and ``docs/aligned_astronaut.png``
    are made (``pipeline`` is a :class:`~facefactors.faces.pipeline.FacePipeline`).

    Raises:
        DataError: a photo does not give exactly one face.
    """
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, load in (("grace_hopper", grace_hopper), ("astronaut", astronaut)):
        faces = pipeline.process(load())
        if len(faces) != 1:
            raise DataError(f"Sample photo {name} gave {len(faces)} faces instead of 1.")
        path = out / f"aligned_{name}.png"
        Image.fromarray(faces[0].aligned).save(path)
        paths.append(path)
    return paths
