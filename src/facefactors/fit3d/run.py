"""``facefactors fit3d PREPARED``: fit every face of a prepared folder, resumably.

Rows of ``annotations.csv`` are fitted in chunks; each chunk's part file
(:mod:`facefactors.fit3d.store`) is written atomically when it is done and kept by a
rerun with the same settings, so an interrupted run continues where it stopped.

The landmarks come from :mod:`facefactors.fit3d.landmarks`. A face without
landmarks, or whose image cannot be read, is skipped and counted by reason (listed
in each part file and summed in ``fit3d.json``).
"""

from __future__ import annotations

import csv
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facefactors.errors import DataError
from facefactors.fit3d import store
from facefactors.fit3d.fitter import Fit3dConfig, fit_faces
from facefactors.fit3d.landmarks import LandmarkFinder


def annotation_paths(folder: Path) -> tuple[list[str], bytes]:
    """The ``path`` column of a prepared folder's ``annotations.csv`` and the file's bytes."""
    path = folder / "annotations.csv"
    if not path.is_file():
        raise DataError(f"{folder} is not a prepared folder: {path} does not exist.")
    data = path.read_bytes()
    try:
        rows = list(csv.DictReader(data.decode("utf-8").splitlines()))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"Annotations file {path} is not readable CSV ({exc}).") from None
    if rows and "path" not in rows[0]:
        raise DataError(f"Annotations file {path} has no 'path' column.")
    return [r["path"] for r in rows], data


def _load_crop(folder: Path, rel: str) -> np.ndarray:
    """A prepared crop at its own size (square, as ``prepare`` writes them)."""
    from facefactors.data.io import load_image_rgb

    path = folder / rel
    img = load_image_rgb(path)
    if img.shape[0] != img.shape[1]:
        raise DataError(
            f"Image {path} is {img.shape[1]}x{img.shape[0]}, not a square aligned crop."
        )
    return img


def _fit_chunk(
    folder: Path, paths: list[str], finder: LandmarkFinder, cfg: Fit3dConfig, counts: dict
) -> tuple[list[str], Any, list[tuple[str, str]]]:
    """Fit one chunk: ``(fitted paths, FitResult or None, [(path, skip reason)])``."""
    from facefactors.data.io import to_tensor

    images, lms, kept, skipped = [], [], [], []
    for rel in paths:
        try:
            crop = _load_crop(folder, rel)
        except DataError as exc:
            skipped.append((rel, f"unreadable: {exc}"))
            continue
        lm, source = finder.find(rel, crop)
        if lm is None:
            skipped.append((rel, source))
            continue
        counts[source] = counts.get(source, 0) + 1
        scale = cfg.size / crop.shape[0]
        images.append(to_tensor(crop, cfg.size))
        lms.append(torch.as_tensor(lm * scale, dtype=torch.float32))
        kept.append(rel)
    fit = fit_faces(torch.stack(images), torch.stack(lms), cfg) if kept else None
    return kept, fit, skipped


def fit_prepared(
    folder: str | Path,
    cfg: Fit3dConfig,
    landmarks: str = "auto",
    landmark_net: str | None = None,
    weights_dir: str | None = None,
    chunk: int = 256,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Fit every face of a prepared folder and write ``folder/fit3d/``.

    Returns:
        The manifest written: ``fitted``, ``skipped`` (by reason), ``resumed_parts``,
        ``landmarks_used`` (faces per source), ``config``, ``parts``.

    Raises:
        DataError: not a prepared folder (naming the file), or no face could be fitted.
        ConfigError: a bad landmark option.
    """
    from tqdm.auto import tqdm

    folder = Path(folder)
    paths, raw = annotation_paths(folder)
    if chunk < 1:
        raise DataError(f"fit3d chunk must be at least 1, got {chunk}.")
    finder = LandmarkFinder(folder, landmarks, landmark_net, weights_dir)
    key = store.settings_key(cfg, landmarks, raw)
    starts = range(0, len(paths), chunk)
    parts, resumed, fitted = [], 0, 0
    skipped: dict[str, int] = {}
    used: dict[str, int] = {}
    show = sys.stderr.isatty() if progress is None else progress
    for n, start in enumerate(tqdm(starts, desc="fit3d", unit="chunk", disable=not show)):
        part = store.part_path(folder, n)
        rows = paths[start : start + chunk]
        data = store.read_part(part) if part.is_file() else None
        if data is not None and str(data["key"]) == key:
            resumed += 1
        else:
            kept, fit, skips = _fit_chunk(folder, rows, finder, cfg, used)
            store.write_part(part, key, kept, fit, skips)
            data = store.read_part(part)
        fitted += len(data["path"])
        for reason in data["skipped_reason"].tolist():
            label = reason.split(":")[0]
            skipped[label] = skipped.get(label, 0) + 1
        parts.append(part.name)
    info = {
        "key": key,
        "config": asdict(cfg),
        "landmarks": landmarks,
        "landmarks_used": used,
        "faces": len(paths),
        "fitted": fitted,
        "skipped": skipped,
        "resumed_parts": resumed,
        "parts": parts,
    }
    store.write_manifest(folder, info)
    if fitted == 0:
        raise DataError(
            f"No face of {folder / 'annotations.csv'} could be fitted "
            f"(skipped: {', '.join(f'{k} {v}' for k, v in skipped.items()) or 'none'})."
        )
    return info
