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
from pathlib import Path

import numpy as np
import torch

from facefactors.checkpoint import atomic_write_bytes
from facefactors.errors import ConfigError
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
    """

    def __init__(self, path: Path | None, resume_step: int | None) -> None:
        self.path = path
        self.sums: dict[str, float] = {}
        self.count = 0
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        keep: list[str] = []
        if resume_step is not None and path.exists():
            for ln in path.read_text().splitlines():
                try:
                    record = json.loads(ln)
                except json.JSONDecodeError:  # a partial line from a kill mid-write
                    continue
                if record.get("step", 0) <= resume_step:
                    keep.append(ln)
        path.write_text("".join(ln + "\n" for ln in keep))

    def window(self) -> dict[str, object]:
        """The open averaging window, for the checkpoint (a resumed run's first line
        then averages the same steps as an uninterrupted run's)."""
        return {"sums": dict(self.sums), "count": self.count}

    def restore_window(self, window: dict[str, object] | None) -> None:
        """Reopen a window saved by :meth:`window` (None: nothing was open)."""
        if window:
            self.sums = {str(k): float(v) for k, v in dict(window["sums"]).items()}
            self.count = int(window["count"])

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
