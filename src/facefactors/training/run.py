"""The run folder every trainer writes, and its two logs: metrics and sample grids.

RUN/config.yaml              the full typed config
RUN/metrics.jsonl            one JSON object per log step, hierarchical names
                             (``loss/g/recon``, ``loss/d/real``, ``acc/c/exp`` ...)
RUN/samples/step_NNNNNN.png  image grids, one sample per row
RUN/checkpoints/last.pt      the resumable state (:mod:`facefactors.training.state`)
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import torch

from facefactors.checkpoint import atomic_write_bytes
from facefactors.errors import CheckpointError, ConfigError
from facefactors.imaging import to_hwc_uint8
from facefactors.training.distributed import DistInfo, all_reduce_mean


def last_checkpoint(out: Path) -> Path:
    """Where a run folder keeps its resumable state."""
    return out / "checkpoints" / "last.pt"


def check_fresh_or_resume(out: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from, or None for a fresh run.

    Raises:
        ConfigError: a fresh run was asked for in a folder that holds a checkpoint.
    """
    ckpt = last_checkpoint(out)
    if resume:
        return ckpt
    if ckpt.exists():
        raise ConfigError(
            f"Run folder {out} already holds a checkpoint; pass --resume to continue it "
            "or choose another --out."
        )
    return None


class MetricsLog:
    """Averages logged scalars over each log interval and appends them to metrics.jsonl.

    Args:
        path: the JSONL file (None: keep nothing, as on non-main ranks).
        resume_step: the step of the checkpoint a resumed run starts from. Lines
            logged after it are about to be redone and are dropped; a fresh run
            (None) starts the file empty, so a dead run's lines never mix in.
            A line that does not parse (the last one, cut off by a kill
            mid-write) is dropped. Each drop is said on stderr.
    """

    def __init__(self, path: Path | None, resume_step: int | None) -> None:
        self.path = path
        self.sums: dict[str, float] = {}
        self.count = 0
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        keep: list[str] = []
        if path.exists():
            keep, later = _kept_lines(path, resume_step)
            if later and resume_step is None:
                _note(
                    f"note: {path} held {later} line(s) of a run that stopped before its first "
                    "checkpoint; they are dropped and the log starts afresh."
                )
            elif later:
                _note(
                    f"note: dropped {later} line(s) of {path} logged after the checkpoint's "
                    f"step {resume_step}; those steps are redone."
                )
        path.write_text("".join(ln + "\n" for ln in keep))

    def window(self) -> dict[str, object]:
        """The open averaging window, for the checkpoint (a resumed run's first line
        then averages the same steps as an uninterrupted run's)."""
        return {"sums": dict(self.sums), "count": self.count}

    def restore_window(self, window: object, where: str | Path = "the checkpoint") -> None:
        """Reopen a window saved by :meth:`window` (None: nothing was open).

        Raises:
            CheckpointError: ``window`` is not what :meth:`window` writes.
        """
        if not window:
            return
        try:
            sums = {str(k): float(v) for k, v in dict(window["sums"]).items()}  # type: ignore[index]
            count = int(window["count"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(
                f"Checkpoint {where} entry 'metrics_window' is not a saved averaging window."
            ) from None
        self.sums, self.count = sums, count

    def add(self, logs: dict[str, torch.Tensor | float]) -> None:
        for k, v in logs.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.count += 1

    def flush(self, info: DistInfo, **fields: float) -> dict[str, float]:
        """Write the interval's means (averaged over processes) with ``fields`` first."""
        means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        means = all_reduce_mean(means, info)
        self.sums, self.count = {}, 0
        return self.write(fields | means)

    def write(self, record: dict[str, float]) -> dict[str, float]:
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        return record


def _kept_lines(path: Path, resume_step: int | None) -> tuple[list[str], int]:
    """The lines of ``path`` a run keeps, and how many whole lines it drops as redone.

    Lines that do not parse as a JSON object with a ``step`` are dropped with a
    warning on stderr (the last one: cut off by a kill mid-write).
    """
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    keep, later = [], 0
    for lineno, ln in enumerate(lines, start=1):
        try:
            record = json.loads(ln)
            step = record["step"]
            if not isinstance(step, (int, float)):
                raise TypeError
        except (json.JSONDecodeError, KeyError, TypeError):
            what = "was cut off (a kill mid-write?)" if lineno == len(lines) else "does not parse"
            _note(f"warning: {path} line {lineno} {what}; dropped it.")
            continue
        if resume_step is not None and step <= resume_step:
            keep.append(ln)
        else:
            later += 1
    return keep, later


def _note(message: str) -> None:
    """A one-line note or warning of the main process, on stderr."""
    print(message, file=sys.stderr)


def tile(columns: list[torch.Tensor], pad: int = 2) -> np.ndarray:
    """Tile equally shaped (N, 3, H, W) batches in [-1, 1] into an (N·H', C·W', 3) uint8 grid.

    Row r holds sample r of every column, with ``pad`` white pixels between cells.
    """
    cols = [to_hwc_uint8(c) for c in columns]
    n, h, w, _ = cols[0].shape
    grid = np.full((n * (h + pad) + pad, len(cols) * (w + pad) + pad, 3), 255, np.uint8)
    for j, col in enumerate(cols):
        for i in range(n):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            grid[top : top + h, left : left + w] = col[i]
    return grid


LABEL_BAND = 12  # pixels of the column-label band above a grid


def label_columns(grid: np.ndarray, names: list[str], pad: int = 2) -> np.ndarray:
    """A :func:`tile` grid with a white band on top naming each column.

    Args:
        grid: (H, W, 3) uint8 grid of ``len(names)`` equal columns.
        names: one label per column, left to right; each is drawn in the largest
            font size (at most 10 px) at which every label fits its column.

    Returns:
        (LABEL_BAND + H, W, 3) uint8.
    """
    from PIL import Image, ImageDraw, ImageFont

    cell = (grid.shape[1] - pad) // max(len(names), 1) - pad
    band = Image.new("RGB", (grid.shape[1], LABEL_BAND), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    font = ImageFont.load_default(size=4)
    for size in range(10, 3, -1):  # the largest size at which the longest label fits
        font = ImageFont.load_default(size=size)
        if all(draw.textlength(n, font=font) <= cell for n in names):
            break
    for j, name in enumerate(names):
        left = pad + j * (cell + pad) + (cell - draw.textlength(name, font=font)) / 2
        draw.text((max(left, 0), 1), name, fill=(0, 0, 0), font=font)
    return np.concatenate([np.asarray(band), grid], 0)


def save_png(path: str | Path, grid: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 array as PNG atomically."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def sample_path(out: Path, step: int) -> Path:
    """``RUN/samples/step_NNNNNN.png``."""
    return out / "samples" / f"step_{step:06d}.png"
