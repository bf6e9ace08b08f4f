"""Files around inference: expanding inputs, reading video frames, drawing and writing results.

Inputs are files or folders (searched recursively, in sorted order). A file
with a video suffix is read frame by frame with OpenCV; every other file is
tried as an image, so a stray text file is reported as unreadable rather than
skipped unseen.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facefactors.errors import ConfigError, DataError

if TYPE_CHECKING:
    from facefactors.inference.predictions import FacePrediction

VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm"})
# Suffixes cv2.imwrite can encode; annotated copies of other files are written as PNG.
_WRITABLE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def is_video_name(name: str | os.PathLike) -> bool:
    """Whether a file name has a video suffix (case-insensitive)."""
    return Path(name).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class InputFile:
    """One file to process.

    Attributes:
        path: where it is.
        name: its path relative to the folder given on the command line, prefixed
            with that folder's name (``photos/a/b.jpg``); for a file given
            directly, its file name. Annotated outputs use it; it is unique.
    """

    path: Path
    name: str

    @property
    def is_video(self) -> bool:
        return is_video_name(self.path)


@dataclass
class InputList:
    """What the command-line inputs expand to.

    Attributes:
        files: the files to process, in order.
        unreadable: ``(folder, reason)`` of every folder that could not be listed
            (its files cannot be processed, and must not be skipped unseen).
    """

    files: list[InputFile]
    unreadable: list[tuple[str, str]]


def _walk(root: Path, unreadable: list[tuple[str, str]]) -> list[Path]:
    """Every file under ``root`` (symlinked folders not followed), recording unlistable folders."""
    found: list[Path] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            unreadable.append((str(folder), exc.strerror or type(exc).__name__))
            continue
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
            elif e.is_file():
                found.append(Path(e.path))
    return sorted(found)


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> InputList:
    """Files to process, in argument order, folders expanded recursively and sorted.

    A file reached twice (given twice, or inside two given folders) is kept once.
    A folder that cannot be listed (permissions, I/O error) is returned in
    ``unreadable`` with the reason.

    Raises:
        DataError: an input path does not exist, or nothing is left to process.
    """
    out: list[InputFile] = []
    unreadable: list[tuple[str, str]] = []
    seen_paths: set[Path] = set()
    seen_names: set[str] = set()
    for arg in inputs:
        root = Path(arg)
        if not root.exists():
            raise DataError(f"Input {root} does not exist.")
        if root.is_dir():
            base = root.resolve().name or "input"
            found = [
                (p, f"{base}/{p.relative_to(root).as_posix()}") for p in _walk(root, unreadable)
            ]
        else:
            found = [(root, root.name)]
        for path, name in found:
            if path.resolve() in seen_paths:
                continue
            seen_paths.add(path.resolve())
            unique, k = name, 2
            while unique in seen_names:  # two inputs with the same file name
                stem, dot, suffix = name.rpartition(".")
                unique = f"{stem}_{k}.{suffix}" if dot else f"{name}_{k}"
                k += 1
            seen_names.add(unique)
            out.append(InputFile(path, unique))
    if not out and unreadable:
        folders = "; ".join(f"{f} ({why})" for f, why in unreadable)
        raise DataError(f"No file to process: these folders could not be read: {folders}.")
    if not out:
        raise DataError(f"No files found in {', '.join(str(a) for a in inputs)}.")
    return InputList(out, unreadable)


def video_frame_count(path: str | os.PathLike) -> int | None:
    """The frame count the container declares (``None`` if it declares none)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()
    return n if n > 0 else None


class VideoFrames:
    """Every ``every``-th frame (0, every, 2·every, ...) of a video, from frame ``start`` on.

    Frames in between (and the ``start`` frames before) are only grabbed, not
    decoded into images, which is cheaper (and exact, unlike seeking). After the
    iteration :attr:`position` is where the stream ended and :attr:`declared` the
    frame count the container declares, so a truncated file is seen
    (:attr:`ended_early`).

    Args:
        path: the video file.
        every: frame step (at least 1).
        start: first frame index to consider (a resumed run continues there).

    Raises (when iterated):
        DataError: OpenCV cannot open the file, or it holds no frame.
    """

    def __init__(self, path: str | os.PathLike, every: int = 1, start: int = 0) -> None:
        if every < 1:
            raise ConfigError(f"Frame step --every must be at least 1, got {every}.")
        self.path, self.every, self.start = path, every, start
        self.declared = video_frame_count(path)
        self.position = 0

    @property
    def ended_early(self) -> bool:
        """Whether the stream ended before the frame count the container declares."""
        return self.declared is not None and self.position < self.declared

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yields ``(frame_index, frame)`` with frame (H, W, 3) uint8 RGB."""
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise DataError(f"Video {self.path} could not be opened by OpenCV.")
        index = decoded = 0
        try:
            while True:
                if index >= self.start and index % self.every == 0:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    decoded += 1
                    self.position = index + 1
                    yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                elif not cap.grab():
                    break
                else:
                    self.position = index + 1
                index += 1
        finally:
            cap.release()
        if decoded == 0 and self.start == 0:
            raise DataError(f"Video {self.path} holds no readable frame.")


def read_video_frames(path: str | os.PathLike, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Decode every ``every``-th frame of a video (see :class:`VideoFrames`).

    Yields:
        ``(frame_index, frame)`` with frame (H, W, 3) uint8 RGB.

    Raises:
        DataError: OpenCV cannot open the file, or it holds no frame.
    """
    yield from VideoFrames(path, every)


def _class_colour(label: str, classes: Sequence[str]) -> tuple[int, int, int]:
    """A fixed, distinct RGB colour per class."""
    import colorsys

    k = classes.index(label) if label in classes else 0
    r, g, b = colorsys.hsv_to_rgb(k / max(len(classes), 1), 0.85, 1.0)
    return int(255 * r), int(255 * g), int(255 * b)


def draw_predictions(
    image: np.ndarray, faces: Sequence[FacePrediction], classes: Sequence[str]
) -> np.ndarray:
    """A copy of an RGB image with each face's box, landmarks and ``label score`` drawn.

    Args:
        image: (H, W, 3) uint8 RGB.
        faces: predictions with boxes (faces without a box are not drawn).
        classes: the model's classes (fixes each label's colour).

    Returns:
        (H, W, 3) uint8 RGB.
    """
    import cv2

    out = np.ascontiguousarray(image).copy()
    thick = max(1, round(min(out.shape[:2]) / 300))
    for f in faces:
        if f.box is None:
            continue
        colour = _class_colour(f.label, classes)
        x1, y1, x2, y2 = (round(v) for v in f.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick)
        if f.landmarks is not None:
            for x, y in f.landmarks:
                cv2.circle(out, (round(x), round(y)), thick + 1, colour, -1)
        text = f"{f.label} {f.score:.2f}"
        scale = max(0.4, min(1.5, (x2 - x1) / 200))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y1 - base - 2 if y1 - th - base - 2 >= 0 else y2 + th + 2
        cv2.rectangle(out, (x1, ty - th - 2), (x1 + tw + 2, ty + base), colour, -1)
        cv2.putText(out, text, (x1 + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick)
    return out


def annotation_path(folder: str | os.PathLike, item: InputFile, frame: int | None) -> Path:
    """Where the annotated copy of an image (or of one video frame) goes."""
    folder = Path(folder)
    if frame is not None:
        return folder / f"{item.name}_frames" / f"frame_{frame:06d}.jpg"
    rel = Path(item.name)
    if rel.suffix.lower() not in _WRITABLE_SUFFIXES:
        rel = rel.with_name(rel.name + ".png")
    return folder / rel


def save_image_rgb(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB uint8 image (format from the suffix), creating folders.

    Raises:
        DataError: OpenCV could not encode or write it.
    """
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise DataError(f"Annotated image {path} could not be written.")
    return path
