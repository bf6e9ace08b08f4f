"""The work behind ``facefactors predict``: files and videos in, one table row per face out.

Unreadable inputs (a text file, a truncated JPEG, a video OpenCV cannot open)
are not fatal: each is counted, listed with its reason in the output metadata
and named in the summary. Everything else a user can get wrong (a missing
checkpoint, missing MTCNN weights, a bad option) stops the run with one sentence.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facefactors.devices import check_device
from facefactors.errors import ConfigError, DataError

if TYPE_CHECKING:
    from facefactors.inference import ExpressionRecognizer
    from facefactors.inference.io import InputFile
    from facefactors.inference.predictions import FacePrediction


@dataclass
class PredictOptions:
    """Options of ``facefactors predict`` (see its ``--help``)."""

    inputs: list[str]
    checkpoint: str
    out: str
    every: int = 1
    annotate: str | None = None
    weights: str | None = None
    min_face: float = 20.0
    batch: int = 16
    device: str = "cpu"
    track: bool = True
    detect_every: int = 15
    max_faces: int | None = None
    progress: bool | None = None  # None: only when stderr is a terminal

    def validate(self) -> None:
        """Raises ConfigError naming the first bad option."""
        if Path(self.out).suffix.lower() not in (".csv", ".json"):
            raise ConfigError(f"Option --out {self.out} must end in .csv or .json.")
        for name, value in (
            ("--every", self.every),
            ("--batch", self.batch),
            ("--detect-every", self.detect_every),
        ):
            if value < 1:
                raise ConfigError(f"Option {name} must be at least 1, got {value}.")
        if not self.min_face >= 12:  # also refuses NaN
            # P-Net's window is 12 px: smaller faces cannot be searched for.
            raise ConfigError(f"Option --min-face must be at least 12 pixels, got {self.min_face}.")
        if self.max_faces is not None and (
            isinstance(self.max_faces, bool)
            or not isinstance(self.max_faces, int)
            or self.max_faces < 1
        ):
            raise ConfigError(
                f"Option --max-faces must be a positive integer or 'all', got {self.max_faces!r}."
            )
        check_device(self.device, "Option --device", allow_auto=False)


@dataclass
class PredictSummary:
    """What a run processed."""

    images: int = 0
    videos: int = 0
    frames: int = 0
    faces: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)

    def message(self) -> str:
        """One line for stderr, e.g. ``processed 3 images, 3 faces; skipped 1 unreadable file: x``."""
        parts = [f"{self.images} image{'s' * (self.images != 1)}"]
        if self.videos:
            parts.append(f"{self.videos} video{'s' * (self.videos != 1)} ({self.frames} frames)")
        text = f"processed {' and '.join(parts)}, {self.faces} face{'s' * (self.faces != 1)}"
        if self.skipped:
            n = len(self.skipped)
            names = ", ".join(path for path, _reason in self.skipped)
            text += f"; skipped {n} unreadable file{'s' * (n != 1)}: {names}"
        return text


def run_predict(opts: PredictOptions) -> PredictSummary:
    """Predict every face of every input and write ``opts.out`` (and annotated images).

    Raises:
        FaceFactorsError: bad options, a missing input path, checkpoint or weights.
    """
    from tqdm.auto import tqdm

    from facefactors.inference import ExpressionRecognizer
    from facefactors.inference.io import expand_inputs, write_predictions
    from facefactors.inference.predictions import Predictions

    opts.validate()
    rec = ExpressionRecognizer.from_checkpoint(
        opts.checkpoint,
        device=opts.device,
        weights_dir=opts.weights,
        min_face_size=opts.min_face,
        max_faces=opts.max_faces,
        batch_size=opts.batch,
    )
    files = expand_inputs(opts.inputs)
    summary = PredictSummary()
    rows: list[FacePrediction] = []
    pending: list[tuple[InputFile, np.ndarray]] = []
    show = sys.stderr.isatty() if opts.progress is None else opts.progress
    bar = tqdm(total=len(files), unit="file", desc="predict", disable=not show)

    def flush() -> None:
        if not pending:
            return
        preds = rec.predict_arrays([a for _f, a in pending], [str(f.path) for f, _a in pending])
        for (item, image), faces in zip(pending, preds):
            _record(opts, rec, summary, rows, item, None, image, faces)
        summary.images += len(pending)
        bar.set_postfix(faces=summary.faces)
        pending.clear()

    with bar:
        for item in files:
            if item.is_video:
                flush()  # keep the output in input order
                _run_video(opts, rec, summary, rows, item, show)
            else:
                image = _read_image(item, summary)
                if image is not None:
                    pending.append((item, image))
                if len(pending) >= opts.batch:
                    flush()
            bar.update(1)
        flush()

    meta = {
        "checkpoint": str(opts.checkpoint),
        "inputs": [str(i) for i in opts.inputs],
        "images": summary.images,
        "videos": summary.videos,
        "frames": summary.frames,
        "faces": summary.faces,
        "skipped": [{"file": path, "reason": reason} for path, reason in summary.skipped],
        "every": opts.every,
        "min_face_size": opts.min_face,
        "track": opts.track,
        "detect_every": opts.detect_every,
    }
    summary.outputs = write_predictions(Predictions(rows, rec.classes, meta), opts.out)
    return summary


def _read_image(item: InputFile, summary: PredictSummary) -> np.ndarray | None:
    """The decoded image, or ``None`` after recording why it could not be read."""
    from facefactors.data.io import load_image_rgb

    try:
        return load_image_rgb(item.path)
    except DataError as exc:
        summary.skipped.append((str(item.path), str(exc)))
        return None


def _run_video(
    opts: PredictOptions,
    rec: ExpressionRecognizer,
    summary: PredictSummary,
    rows: list[FacePrediction],
    item: InputFile,
    show: bool,
) -> None:
    """Predict the frames of one video; an unreadable video is recorded as skipped."""
    from tqdm.auto import tqdm

    from facefactors.inference.io import video_frame_count

    total = video_frame_count(item.path)
    frames = tqdm(
        total=None if total is None else -(-total // opts.every),
        unit="frame",
        desc=item.name,
        leave=False,
        disable=not show,
    )
    try:
        with frames:
            for index, frame, faces in rec.iter_video(
                item.path, every=opts.every, track=opts.track, detect_every=opts.detect_every
            ):
                _record(opts, rec, summary, rows, item, index, frame, faces)
                summary.frames += 1
                frames.update(1)
    except DataError as exc:
        summary.skipped.append((str(item.path), str(exc)))
        return
    summary.videos += 1


def _record(
    opts: PredictOptions,
    rec: ExpressionRecognizer,
    summary: PredictSummary,
    rows: list[FacePrediction],
    item: InputFile,
    frame: int | None,
    image: np.ndarray,
    faces: list[FacePrediction],
) -> None:
    """Keep the predictions of one image or frame and write its annotated copy."""
    from facefactors.inference.io import annotation_path, draw_predictions, save_image_rgb

    rows.extend(faces)
    summary.faces += len(faces)
    if opts.annotate:
        drawn = draw_predictions(image, faces, rec.classes)
        save_image_rgb(annotation_path(opts.annotate, item, frame), drawn)
