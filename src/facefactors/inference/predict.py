"""The work behind ``facefactors predict``: files and videos in, one table row per face out.

Rows are streamed: each batch's rows are appended to the output and flushed as
soon as it is classified, and a rerun with the same ``--out`` continues where
an interrupted run stopped (:mod:`facefactors.inference.outputs` says how it
decides). ``--out`` is checked before any work starts.

Every input appears in the output metadata with its outcome: ``faces`` (and how
many), ``no face``, ``unreadable`` (and why: a text file, a truncated JPEG, a
video OpenCV cannot open), ``unreadable folder`` (a folder that could not be
listed), or ``video ended early`` (at frame N of the M its container declares).
None of these is fatal; when no input at all could be read the command exits 1.
Everything else a user can get wrong (a missing checkpoint, missing MTCNN
weights, a bad option) stops the run with one sentence before any work.

Memory: decoded images wait for their batch until ``--batch`` images or
``--batch`` x :data:`~facefactors.faces.mtcnn.DETECT_MAX_PIXELS` pixels (2048² each)
are pending, whichever comes first (a larger image goes alone), and MTCNN detects
on copies of at most 2048² pixels. So peak memory is about the model plus
``3 x max(batch x 4.2 MP, largest image)`` bytes of decoded pixels plus detector
work space for ``batch x 4.2 MP``, whatever the image sizes (measured: six
8000x6000 photos at the default batch of 16, see README). Video frames wait in
batches of ``--batch`` frames.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facefactors.devices import check_device
from facefactors.errors import ConfigError, DataError

if TYPE_CHECKING:
    from facefactors.inference import ExpressionRecognizer
    from facefactors.inference.io import InputFile
    from facefactors.inference.outputs import PredictionSink
    from facefactors.inference.predictions import FacePrediction

# Inputs that yielded something (the exit code is 1 when no input did).
READ_OUTCOMES = frozenset({"faces", "no face", "video ended early"})


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
        from facefactors.inference.outputs import output_files

        output_files(self.out)
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
        if self.annotate is not None and Path(self.annotate).is_file():
            raise ConfigError(f"Option --annotate {self.annotate} is a file, not a folder.")


@dataclass
class PredictSummary:
    """What a run processed (this run; ``earlier`` inputs were done before)."""

    images: int = 0
    videos: int = 0
    frames: int = 0
    faces: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    earlier: int = 0
    usable: int = 0  # inputs of the whole output that could be read

    def message(self) -> str:
        """One line for stderr, e.g. ``processed 3 images, 3 faces; skipped 1 unreadable file: x``."""
        parts = [f"{self.images} image{'s' * (self.images != 1)}"]
        if self.videos:
            parts.append(f"{self.videos} video{'s' * (self.videos != 1)} ({self.frames} frames)")
        text = f"processed {' and '.join(parts)}, {self.faces} face{'s' * (self.faces != 1)}"
        if self.no_face:
            text += f" ({len(self.no_face)} input{'s' * (len(self.no_face) != 1)} without a face)"
        if self.earlier:
            text += f"; {self.earlier} input{'s' * (self.earlier != 1)} done by an earlier run"
        if self.skipped:
            n = len(self.skipped)
            names = ", ".join(path for path, _reason in self.skipped)
            text += f"; skipped {n} unreadable input{'s' * (n != 1)}: {names}"
        return text


def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _header(opts: PredictOptions, rec: ExpressionRecognizer) -> dict[str, Any]:
    """What decides the rows: a rerun must match it to continue an output."""
    from facefactors.faces.mtcnn import DETECT_MAX_PIXELS
    from facefactors.inference.predictions import BASE_COLUMNS, probability_columns

    return {
        "model_sha256": _sha256(opts.checkpoint),
        "classes": rec.classes,
        "columns": [*BASE_COLUMNS, *probability_columns(rec.classes)],
        "every": opts.every,
        "min_face_size": float(opts.min_face),
        "max_faces": opts.max_faces,
        "batch": opts.batch,
        "track": opts.track,
        "detect_every": opts.detect_every,
        "device": opts.device,
        "detect_max_pixels": DETECT_MAX_PIXELS,
    }


def run_predict(opts: PredictOptions) -> PredictSummary:
    """Predict every face of every input, streaming rows to ``opts.out`` (see the module doc).

    Raises:
        FaceFactorsError: bad options or ``--out``, a missing input path, checkpoint or
            weights, or an output written with other settings.
    """
    from facefactors.inference import ExpressionRecognizer
    from facefactors.inference.io import expand_inputs
    from facefactors.inference.outputs import PredictionSink, check_output

    opts.validate()
    files_out = check_output(opts.out)
    inputs = expand_inputs(opts.inputs)
    rec = ExpressionRecognizer.from_checkpoint(
        opts.checkpoint,
        device=opts.device,
        weights_dir=opts.weights,
        min_face_size=opts.min_face,
        max_faces=opts.max_faces,
        batch_size=opts.batch,
    )
    summary = PredictSummary()
    with PredictionSink(files_out, _header(opts, rec)) as sink:
        summary.earlier = sink.earlier
        folders = [
            {"kind": "input", "path": str(Path(f).resolve()), "file": f, "type": "folder"}
            | {"outcome": "unreadable folder", "reason": why}
            for f, why in inputs.unreadable
            if str(Path(f).resolve()) not in sink.done
        ]
        sink.commit([], folders)
        summary.skipped += [(f["file"], f["reason"]) for f in folders]
        todo = [f for f in inputs.files if str(f.path.resolve()) not in sink.done]
        try:
            _process(opts, rec, sink, summary, todo)
        except KeyboardInterrupt:
            print(
                f"facefactors predict: {len(sink.done)} inputs are done in {files_out.rows}; "
                "run the same command again to continue.",
                file=sys.stderr,
            )
            raise
        entries = sink.entries()
        summary.usable = sum(e["outcome"] in READ_OUTCOMES for e in entries)
        summary.outputs = sink.finish(_metadata(opts, entries))
    return summary


def _metadata(opts: PredictOptions, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The run metadata over every input of the output (earlier runs included)."""
    images = [e for e in entries if e["type"] == "image" and e["outcome"] in READ_OUTCOMES]
    videos = [e for e in entries if e["type"] == "video" and e["outcome"] in READ_OUTCOMES]
    return {
        "checkpoint": str(opts.checkpoint),
        "inputs_given": [str(i) for i in opts.inputs],
        "images": len(images),
        "videos": len(videos),
        "frames": sum(e["frames"] for e in videos),
        "faces": sum(e.get("faces", 0) for e in entries),
        "skipped": [
            {"file": e["file"], "reason": e["reason"]}
            for e in entries
            if e["outcome"] not in READ_OUTCOMES
        ],
        "inputs": entries,
        "every": opts.every,
        "min_face_size": opts.min_face,
        "max_faces": opts.max_faces,
        "track": opts.track,
        "detect_every": opts.detect_every,
    }


def _process(
    opts: PredictOptions,
    rec: ExpressionRecognizer,
    sink: PredictionSink,
    summary: PredictSummary,
    todo: list[InputFile],
) -> None:
    """Every input not done yet, images in batches (bounded by count and pixels), in order."""
    from tqdm.auto import tqdm

    from facefactors.faces.mtcnn import DETECT_MAX_PIXELS

    show = sys.stderr.isatty() if opts.progress is None else opts.progress
    budget = opts.batch * DETECT_MAX_PIXELS
    pending: list[tuple[InputFile, np.ndarray | None, str]] = []  # (item, image, why unreadable)

    def flush() -> None:
        readable = [(f, a) for f, a, _ in pending if a is not None]
        preds = (
            rec.predict_arrays([a for _f, a in readable], [str(f.path) for f, _a in readable])
            if readable
            else []
        )
        by_item = {id(f): faces for (f, _a), faces in zip(readable, preds)}
        rows: list[FacePrediction] = []
        lines = []
        for item, image, why in pending:
            line = {"kind": "input", "path": str(item.path.resolve()), "file": str(item.path)}
            if image is None:
                lines.append(line | {"type": "image", "outcome": "unreadable", "reason": why})
                summary.skipped.append((str(item.path), why))
                continue
            faces = by_item[id(item)]
            _annotate(opts, rec, item, None, image, faces)
            rows += faces
            lines.append(line | {"type": "image", **_face_outcome(len(faces))})
            summary.images += 1
            summary.faces += len(faces)
            if not faces:
                summary.no_face.append(str(item.path))
        sink.commit(rows, lines)
        bar.set_postfix(faces=summary.faces)
        bar.update(len(pending))
        pending.clear()

    with tqdm(total=len(todo), unit="file", desc="predict", disable=not show) as bar:
        for item in todo:
            if item.is_video:
                if pending:
                    flush()  # keep the output in input order
                _run_video(opts, rec, sink, summary, item, show)
                bar.update(1)
                continue
            image, why = _read_image(item)
            pixels = sum(a.shape[0] * a.shape[1] for _f, a, _w in pending if a is not None)
            if image is not None and pending and pixels + image.shape[0] * image.shape[1] > budget:
                flush()
            pending.append((item, image, why))
            if sum(a is not None for _f, a, _w in pending) >= opts.batch:
                flush()
        if pending:
            flush()


def _face_outcome(n: int) -> dict[str, Any]:
    return {"outcome": "faces" if n else "no face", "faces": n}


def _read_image(item: InputFile) -> tuple[np.ndarray | None, str]:
    """The decoded image, or ``(None, why it could not be read)``."""
    from facefactors.data.io import load_image_rgb

    try:
        return load_image_rgb(item.path), ""
    except DataError as exc:
        return None, str(exc)


def _run_video(
    opts: PredictOptions,
    rec: ExpressionRecognizer,
    sink: PredictionSink,
    summary: PredictSummary,
    item: InputFile,
    show: bool,
) -> None:
    """Predict the frames of one video, one committed batch at a time (resumable)."""
    from tqdm.auto import tqdm

    from facefactors.inference.io import VideoFrames

    key = str(item.path.resolve())
    line = {"kind": "input", "path": key, "file": str(item.path), "type": "video"}
    before = sink.progress.get(key)
    tracker = rec.tracker(opts.detect_every) if opts.track else None
    if before is not None and tracker is not None:
        tracker.restore(before["tracker"])
    frames = VideoFrames(item.path, opts.every, start=before["next"] if before else 0)
    done_frames = before["frames"] if before else 0
    done_faces = before["faces"] if before else 0
    total = None if frames.declared is None else -(-frames.declared // opts.every)
    bar = tqdm(total=total, initial=done_frames, unit="frame", desc=item.name, leave=False,
               disable=not show)  # fmt: skip
    try:
        with bar:
            for batch in rec.video_batches(frames, tracker):
                rows = []
                for index, frame, faces in batch:
                    _annotate(opts, rec, item, index, frame, faces)
                    rows += faces
                done_frames += len(batch)
                done_faces += len(rows)
                summary.frames += len(batch)
                summary.faces += len(rows)
                progress = {"kind": "video", "path": key, "next": batch[-1][0] + 1}
                progress |= {"frames": done_frames, "faces": done_faces}
                progress["tracker"] = tracker.state() if tracker is not None else None
                sink.commit(rows, [progress])
                bar.update(len(batch))
    except DataError as exc:
        sink.commit([], [line | {"outcome": "unreadable", "reason": str(exc)}])
        summary.skipped.append((str(item.path), str(exc)))
        return
    summary.videos += 1
    outcome = _face_outcome(done_faces) | {"frames": done_frames}
    if frames.ended_early:
        outcome["outcome"] = "video ended early"
        outcome["reason"] = f"ended at frame {frames.position} of {frames.declared}"
        print(
            f"facefactors predict: warning: video {item.path} ended at frame {frames.position} "
            f"of the {frames.declared} it declares (truncated?); its frames up to there are kept.",
            file=sys.stderr,
        )
    elif not done_faces:
        summary.no_face.append(str(item.path))
    sink.commit([], [line | outcome])


def _annotate(
    opts: PredictOptions,
    rec: ExpressionRecognizer,
    item: InputFile,
    frame: int | None,
    image: np.ndarray,
    faces: list[FacePrediction],
) -> None:
    """Write the annotated copy of one image or frame (``--annotate``)."""
    from facefactors.inference.io import annotation_path, draw_predictions, save_image_rgb

    if opts.annotate:
        drawn = draw_predictions(image, faces, rec.classes)
        save_image_rgb(annotation_path(opts.annotate, item, frame), drawn)
