"""Where the five landmarks of an aligned crop come from, for the fit.

In this order:

1. ``records``: the landmarks ``facefactors prepare`` found (its ``progress*.jsonl``),
   mapped into the crop by the same alignment transform that cut it;
2. ``net``: a :class:`~facefactors.faces.landmark_net.LandmarkNet` checkpoint run on
   the crop (``--landmark-net``; for low-resolution crops like our renders);
3. ``mtcnn``: MTCNN run on the crop with a margin, as ``prepare --no-detect`` does.

``"auto"`` takes the first source that has the face's landmarks (records, then the
net if one is given, else MTCNN when its weights are installed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facefactors.errors import ConfigError, DataError

LANDMARK_SOURCES = ("auto", "records", "net", "mtcnn")


def prepared_size(folder: Path) -> int | None:
    """The crop size the manifest of ``prepare`` records (None without one)."""
    path = folder / "prepared.json"
    if not path.is_file():
        return None
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"Prepared-dataset manifest {path} has no readable size ({exc}).") from None


def record_landmarks(folder: Path, size: int | None) -> dict[str, np.ndarray]:
    """Crop-pixel landmarks (5, 2) by annotation path, from prepare's progress logs."""
    from facefactors.faces.align import alignment_matrix, transform_points
    from facefactors.prepare.progress import PROGRESS_GLOB, read_progress

    out: dict[str, np.ndarray] = {}
    for log in sorted(folder.glob(PROGRESS_GLOB)):
        _header, records, _ = read_progress(log)
        for rec in records:
            lm = rec.get("landmarks5")
            if rec.get("status") != "ok" or lm is None or size is None:
                continue
            lm = np.asarray(lm, dtype=np.float64)
            if rec.get("landmarks_from") != "crop":  # original-image pixels
                lm = transform_points(alignment_matrix(lm, size), lm)
            out[rec["path"]] = lm
    return out


class LandmarkFinder:
    """Landmarks of aligned crops from the configured sources (module docstring)."""

    def __init__(
        self,
        folder: Path,
        source: str,
        net_path: str | None = None,
        weights_dir: str | None = None,
    ) -> None:
        if source not in LANDMARK_SOURCES:
            raise ConfigError(
                f"Option --landmarks must be one of {', '.join(LANDMARK_SOURCES)}, got {source!r}."
            )
        if source == "net" and net_path is None:
            raise ConfigError("Option --landmarks net needs --landmark-net PATH.")
        self.source = source
        self.records = (
            record_landmarks(folder, prepared_size(folder)) if source in ("auto", "records") else {}
        )
        self.net = None
        if net_path is not None and source in ("auto", "net"):
            from facefactors.faces.landmark_net import load_landmark_net

            self.net = load_landmark_net(net_path)[0]
        self.pipeline = None
        if source == "mtcnn" or (source == "auto" and self.net is None):
            self.pipeline = _mtcnn_or_none(weights_dir, required=source == "mtcnn")

    def find(self, key: str, crop: np.ndarray) -> tuple[np.ndarray | None, str]:
        """``(landmarks (5, 2) in crop pixels or None, source or skip reason)``."""
        if key in self.records:
            return self.records[key], "records"
        if self.net is not None:
            from facefactors.data.io import to_tensor

            lm = net_landmarks(self.net, to_tensor(crop)[None])[0]
            return lm.double().numpy(), "net"
        if self.pipeline is not None:
            from facefactors.prepare.process import _crop_pose

            fields = _crop_pose(crop, self.pipeline)
            if "landmarks5" in fields:
                return np.asarray(fields["landmarks5"], dtype=np.float64), "mtcnn"
            return None, "no face found by MTCNN on the crop"
        return (
            None,
            "no landmarks (none in prepare's records; give --landmark-net or MTCNN weights)",
        )


def _mtcnn_or_none(weights_dir: str | None, required: bool):
    from facefactors.faces import weights as W

    try:
        from facefactors.faces.mtcnn import MTCNN
        from facefactors.faces.pipeline import FacePipeline

        return FacePipeline(MTCNN(weights_dir=weights_dir), size=112)
    except W.WeightsError:
        if required:
            raise
        return None


def net_landmarks(net: Any, images: torch.Tensor) -> torch.Tensor:
    """(N, 5, 2) landmarks of (N, 3, S, S) crops in [-1, 1] from a :class:`LandmarkNet`.

    The crops are area-resized to the net's input size and the landmarks scaled back
    to ``S`` pixels.
    """
    import torch.nn.functional as F

    from facefactors.faces.landmark_net import predict_landmarks

    size = images.shape[-1]
    small = images if size == net.size else F.interpolate(images, size=net.size, mode="area")
    return predict_landmarks(net, small) * (size / net.size)
