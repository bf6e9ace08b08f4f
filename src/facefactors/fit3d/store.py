"""The fitted pseudo ground truth on disk: ``PREPARED/fit3d/``, beside ``annotations.csv``.

- ``part-NNNNN.npz``: the fits of rows ``[N * chunk, (N + 1) * chunk)`` of
  ``annotations.csv``, each written atomically once its chunk is done, so an
  interrupted run loses at most the chunk in flight and a rerun continues. Arrays:
  ``path`` (the annotation paths fitted), ``rotation`` (M, 3, 3), ``id_coeffs``
  (M, 47), ``exp_coeffs`` (M, 36), ``vertices`` (M, 522, 3) mm, ``sh`` (M, 3, 9),
  ``yaw`` (M,), ``normals`` (M, 3, S, S) float16, ``mask`` (M, 1, S, S) uint8 × 1/255,
  ``photometric``, ``landmark_px`` (M,); ``skipped_path``, ``skipped_reason`` for rows
  that were not fitted (counted, never silent).
- ``fit3d.json``: the manifest: format, the fit's settings (every part must agree),
  the landmark source, and the counts once the run has finished.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facefactors.errors import DataError
from facefactors.fit3d.fitter import Fit3dConfig, FitResult

FOLDER = "fit3d"
MANIFEST = "fit3d.json"
FORMAT = "facefactors-fit3d"
FLOAT_KEYS = ("rotation", "id_coeffs", "exp_coeffs", "vertices", "sh", "yaw")
EXTRA_KEYS = ("photometric", "landmark_px")


def part_path(folder: Path, index: int) -> Path:
    return folder / FOLDER / f"part-{index:05d}.npz"


def settings_key(cfg: Fit3dConfig, landmarks: str, annotations: bytes) -> str:
    """A fingerprint of what decides a part's content (settings + the annotation rows)."""
    text = json.dumps({"cfg": asdict(cfg), "landmarks": landmarks}, sort_keys=True)
    return hashlib.sha256(text.encode() + hashlib.sha256(annotations).digest()).hexdigest()[:16]


def write_part(
    path: Path,
    key: str,
    paths: list[str],
    fit: FitResult | None,
    skipped: list[tuple[str, str]],
) -> None:
    """Write one chunk's fits and skips atomically."""
    from facefactors.checkpoint import atomic_write_bytes

    arrays: dict[str, np.ndarray] = {
        "key": np.array(key),
        "path": np.array(paths, dtype=str),
        "skipped_path": np.array([p for p, _ in skipped], dtype=str),
        "skipped_reason": np.array([r for _, r in skipped], dtype=str),
    }
    if fit is not None:
        for k in (*FLOAT_KEYS, *EXTRA_KEYS):
            arrays[k] = getattr(fit, k).float().numpy()
        arrays["normals"] = fit.normals.numpy().astype(np.float16)
        arrays["mask"] = np.round(fit.mask.clamp(0, 1).numpy() * 255).astype(np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def read_part(path: Path) -> dict[str, np.ndarray]:
    """One part's arrays.

    Raises:
        DataError: naming the file when it is not a readable fit3d part.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"Fit file {path} is not a readable fit3d part ({exc}).") from None
    if "key" not in data or "path" not in data:
        raise DataError(f"Fit file {path} is not a fit3d part (no 'key' or 'path' array).")
    return data


def write_manifest(folder: Path, info: dict[str, Any]) -> None:
    from facefactors.checkpoint import atomic_write_text

    doc = {"format": FORMAT, "version": 1, **info}
    atomic_write_text(folder / FOLDER / MANIFEST, json.dumps(doc, indent=2) + "\n")


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a finished fit.

    Raises:
        DataError: no fit in ``folder`` (naming the file to create and how), or a bad file.
    """
    path = Path(folder) / FOLDER / MANIFEST
    if not path.is_file():
        raise DataError(
            f"Prepared folder {folder} has no fitted pseudo ground truth ({path} is missing); "
            f"run `facefactors fit3d {folder}` first."
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"Fit manifest {path} is not readable JSON ({exc}).") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or "parts" not in doc:
        raise DataError(f"File {path} is not a facefactors fit3d manifest.")
    return doc


def load_fits(folder: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Every fitted face of a prepared folder, by annotation path.

    Returns:
        ``({path: {field: tensor}}, manifest)``; fields are those of
        :data:`facefactors.tensorial.batch.PSEUDO_GT` (float32; ``mask`` in [0, 1]).
    """
    doc = read_manifest(folder)
    out: dict[str, dict[str, torch.Tensor]] = {}
    for name in doc["parts"]:
        data = read_part(Path(folder) / FOLDER / name)
        if "rotation" not in data:
            continue
        normals = torch.from_numpy(data["normals"].astype(np.float32))
        mask = torch.from_numpy(data["mask"].astype(np.float32) / 255.0)
        for j, p in enumerate(data["path"].tolist()):
            row = {k: torch.from_numpy(np.array(data[k][j])) for k in FLOAT_KEYS}
            out[p] = {**row, "normals": normals[j], "mask": mask[j]}
    return out, doc
