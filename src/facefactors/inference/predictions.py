"""Per-face expression predictions and their table, CSV and JSON forms.

A :class:`FacePrediction` is one face of one image or video frame; a
:class:`Predictions` is a list of them with the model's class list, so that
the table has one ``p_<class>`` column per class even when it is empty.

Columns of :meth:`Predictions.to_dataframe` (and of the CSV):
``file, frame, face, x1, y1, x2, y2, det_score, yaw, pitch, roll, pose_bin,
label, score, p_<class>...``. ``frame`` is empty for still images; box, pose
and ``det_score`` are empty for faces passed in already aligned.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from facefactors.faces.pipeline import Face

BASE_COLUMNS: tuple[str, ...] = (
    "file",
    "frame",
    "face",
    "x1",
    "y1",
    "x2",
    "y2",
    "det_score",
    "yaw",
    "pitch",
    "roll",
    "pose_bin",
    "label",
    "score",
)


def probability_columns(classes: Sequence[str]) -> list[str]:
    """``p_<class>`` column names in class order."""
    return [f"p_{c}" for c in classes]


@dataclass
class FacePrediction:
    """The expression of one face.

    Attributes:
        source: the file it came from, or ``input[i]`` for in-memory inputs.
        frame: video frame index (``None`` for still images).
        face_index: rank of the face in its image (0 = highest detection score).
        box: ``(x1, y1, x2, y2)`` in pixels, or ``None`` for aligned inputs.
        landmarks: (5, 2) float32 eyes, nose, mouth corners, or ``None``.
        det_score: MTCNN face probability, or ``None``.
        yaw, pitch, roll: head pose in degrees, or ``None``.
        pose_bin: |yaw| bin 0..4, or ``None``.
        label: the most probable class name.
        score: its probability.
        probabilities: class name -> probability (sums to 1).
    """

    source: str
    frame: int | None
    face_index: int
    box: tuple[float, float, float, float] | None
    landmarks: np.ndarray | None
    det_score: float | None
    yaw: float | None
    pitch: float | None
    roll: float | None
    pose_bin: int | None
    label: str
    score: float
    probabilities: dict[str, float]

    @classmethod
    def from_probabilities(
        cls,
        probs: np.ndarray,
        classes: Sequence[str],
        source: str,
        frame: int | None,
        face_index: int,
        detection: Face | None = None,
    ) -> FacePrediction:
        """Build from a (K,) probability row and, for detected faces, the ``Face``."""
        best = int(np.argmax(probs))
        d = detection
        return cls(
            source=source,
            frame=frame,
            face_index=face_index,
            box=None if d is None else tuple(float(v) for v in d.box[:4]),
            landmarks=None if d is None else np.asarray(d.landmarks5, np.float32),
            det_score=None if d is None else float(d.score),
            yaw=None if d is None else float(d.yaw),
            pitch=None if d is None else float(d.pitch),
            roll=None if d is None else float(d.roll),
            pose_bin=None if d is None else int(d.pose_bin),
            label=classes[best],
            score=float(probs[best]),
            probabilities={c: float(p) for c, p in zip(classes, probs)},
        )

    def to_row(self) -> dict[str, Any]:
        """A flat dict with the table columns (``None`` where a value does not apply)."""
        box = self.box if self.box is not None else (None,) * 4
        head, tail = self._fields()
        row = {**head, **dict(zip(("x1", "y1", "x2", "y2"), box)), **tail}
        row.update({f"p_{c}": p for c, p in self.probabilities.items()})
        return row

    def _fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Scalar columns shared by the table row and the JSON record: (where, what)."""
        where = {"file": self.source, "frame": self.frame, "face": self.face_index}
        what = {
            "det_score": self.det_score,
            "yaw": self.yaw,
            "pitch": self.pitch,
            "roll": self.roll,
            "pose_bin": self.pose_bin,
            "label": self.label,
            "score": self.score,
        }
        return where, what

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict: box, landmarks and probabilities nested."""
        where, what = self._fields()
        return {
            **where,
            "box": None if self.box is None else list(self.box),
            "landmarks": None if self.landmarks is None else self.landmarks.tolist(),
            **what,
            "probabilities": dict(self.probabilities),
        }


class Predictions(Sequence[FacePrediction]):
    """The faces predicted over a set of inputs, in input order.

    Args:
        faces: the predictions.
        classes: class names of the model (the ``p_<class>`` columns).
        metadata: free-form run information stored in the JSON output.
    """

    def __init__(
        self,
        faces: Sequence[FacePrediction],
        classes: Sequence[str],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.faces = list(faces)
        self.classes = list(classes)
        self.metadata = dict(metadata or {})

    def __iter__(self) -> Iterator[FacePrediction]:
        return iter(self.faces)

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i):  # type: ignore[override]
        return self.faces[i]

    def __repr__(self) -> str:
        return f"Predictions({len(self)} faces, classes={self.classes})"

    @property
    def columns(self) -> list[str]:
        """Table columns in order."""
        return [*BASE_COLUMNS, *probability_columns(self.classes)]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per face with :attr:`columns`; integer columns that can be empty are Int64."""
        import pandas as pd

        df = pd.DataFrame([f.to_row() for f in self.faces], columns=self.columns)
        for col in ("frame", "face", "pose_bin"):
            df[col] = df[col].astype("Int64")
        for col in ("x1", "y1", "x2", "y2", "det_score", "yaw", "pitch", "roll"):
            df[col] = df[col].astype("float64")
        return df

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the table as CSV (empty cells where a value does not apply).

        The lines are those ``facefactors predict`` streams (:func:`csv_line`).
        """
        from facefactors.checkpoint import atomic_write_text

        text = csv_line(self.columns) + "".join(csv_line(row_values(f, self.classes)) for f in self)
        atomic_write_text(path, text)
        return Path(path)

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write ``{"metadata": ..., "classes": [...], "faces": [record, ...]}``."""
        from facefactors.checkpoint import atomic_write_text

        doc = {
            "metadata": self.metadata,
            "classes": self.classes,
            "faces": [_finite(f.to_record()) for f in self.faces],
        }
        atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
        return Path(path)


def row_values(face: FacePrediction, classes: Sequence[str]) -> list[Any]:
    """The table row of a face, in column order (``BASE_COLUMNS``, then ``p_<class>``)."""
    row = face.to_row()
    return [row.get(c) for c in (*BASE_COLUMNS, *probability_columns(classes))]


def _cell(value: Any) -> str:
    """A CSV cell: empty for None/NaN, floats to 6 significant digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else ""
    return str(value)


def csv_line(values: Sequence[Any]) -> str:
    """One CSV line (quoted where needed, ``\\n``-terminated) of the prediction table."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([_cell(v) for v in values])
    return buf.getvalue()


def json_line(face: FacePrediction) -> str:
    """One JSON Lines record of a face (:meth:`FacePrediction.to_record`, NaN as null)."""
    return json.dumps(_finite(face.to_record())) + "\n"


def _finite(value: Any) -> Any:
    """Replace NaN/inf floats by ``None`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
