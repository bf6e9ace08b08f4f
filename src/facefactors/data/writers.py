"""Write images and label files in a dataset's own on-disk layout.

Used to export synthetic faces so that the real loaders read them, and to build
small trees for demos and integration tests. The layouts are those that
:mod:`facefactors.data.rafdb` and :mod:`facefactors.data.ckplus` read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from facefactors.data.labels import CKPLUS_CODES, RAFDB_CODES
from facefactors.data.rafdb import LABEL_FILE, rafdb_image_path
from facefactors.errors import DataError


def write_image(path: str | os.PathLike, img: np.ndarray) -> Path:
    """Save a (H, W, 3) or (H, W) uint8 array; the format follows the suffix."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(img)).save(path, quality=95)
    return path


def write_rafdb(root: str | os.PathLike, entries: Iterable[tuple[str, str, np.ndarray]]) -> Path:
    """Write a RAF-DB basic tree.

    Args:
        root: Output folder (gets ``EmoLabel/`` and ``Image/aligned/``).
        entries: ``(name, class_name, image)`` with names like ``train_00001.jpg`` and
            canonical class names; images (H, W, 3) uint8.

    Returns:
        The label file path.
    """
    root = Path(root)
    code_of = {name: code for code, name in RAFDB_CODES.items()}
    lines = []
    for name, cls, img in entries:
        if cls not in code_of:
            raise DataError(f"RAF-DB has no class {cls!r}; its classes are {', '.join(code_of)}.")
        write_image(rafdb_image_path(root, name), img)
        lines.append(f"{name} {code_of[cls]}\n")
    label_file = root / LABEL_FILE
    label_file.parent.mkdir(parents=True, exist_ok=True)
    label_file.write_text("".join(lines))
    return label_file


def write_ckplus_sequence(
    root: str | os.PathLike,
    subject: str,
    sequence: str,
    frames: Sequence[np.ndarray],
    class_name: str | None,
) -> list[Path]:
    """Write one CK+ sequence: PNG frames, and an emotion file for the last frame.

    Args:
        root: CK+ folder (gets ``cohn-kanade-images/`` and ``Emotion/``).
        subject: e.g. ``"S005"``.
        sequence: e.g. ``"001"``.
        frames: (H, W) or (H, W, 3) uint8 frames, neutral first, peak last.
        class_name: Canonical class of the peak, or None for an unlabelled sequence.

    Returns:
        The frame paths, in order.
    """
    root = Path(root)
    code_of = {name: code for code, name in CKPLUS_CODES.items()}
    paths = [
        write_image(
            root / "cohn-kanade-images" / subject / sequence / f"{subject}_{sequence}_{i:08d}.png",
            frame,
        )
        for i, frame in enumerate(frames, start=1)
    ]
    emotion_dir = root / "Emotion" / subject / sequence
    emotion_dir.mkdir(parents=True, exist_ok=True)
    if class_name is not None:
        if class_name not in code_of:
            raise DataError(f"CK+ has no class {class_name!r}.")
        # CK+ writes the code as a float in scientific notation.
        text = f"   {float(code_of[class_name]):.7e}\n"
        (emotion_dir / f"{paths[-1].stem}_emotion.txt").write_text(text)
    return paths
