"""Contact sheets: identities x expressions, a yaw sweep, and a lighting sweep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from facefactors.constants import CANONICAL_CLASSES
from facefactors.imaging import to_hwc_uint8
from facefactors.synth import expression as E
from facefactors.synth import sampling as SM
from facefactors.synth.dataset import default_light, exp_from_au, identity_coeffs
from facefactors.synth.scene import Factors, render_batch

SHEET_INTENSITY = 0.9
YAW_SWEEP = tuple(range(-60, 61, 15))
# (name, ambient, [(azimuth, elevation, rgb)]) of the lighting sheet.
LIGHTINGS = (
    ("front", 0.45, [(0.0, 15.0, (0.7, 0.7, 0.7))]),
    ("left", 0.3, [(-70.0, 20.0, (0.9, 0.9, 0.9))]),
    ("right", 0.3, [(70.0, 20.0, (0.9, 0.9, 0.9))]),
    ("top", 0.35, [(0.0, 70.0, (0.85, 0.85, 0.85))]),
    ("below", 0.35, [(0.0, -35.0, (0.8, 0.8, 0.8))]),
    ("warm+cool", 0.3, [(-50.0, 25.0, (0.85, 0.6, 0.35)), (60.0, 10.0, (0.25, 0.4, 0.75))]),
)


def _tile(tiles: np.ndarray, cols: int, labels: list[str] | None = None) -> np.ndarray:
    """Arrange (N, H, W, 3) tiles on a grid, with optional column labels on top."""
    n, h, w, _ = tiles.shape
    rows = -(-n // cols)
    grid = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = tiles[i]
    if not labels:
        return grid
    head = Image.new("RGB", (cols * w, 14), (255, 255, 255))
    draw = ImageDraw.Draw(head)
    for c, text in enumerate(labels[:cols]):
        draw.text((c * w + 3, 1), text, fill=(0, 0, 0))
    return np.concatenate([np.asarray(head), grid], axis=0)


def _factors(idc, exp, yaw, sh, bg) -> Factors:
    n = len(exp)
    return Factors(
        id_coeffs=np.broadcast_to(idc, (n, idc.shape[-1])) if idc.ndim == 1 else idc,
        exp_coeffs=np.asarray(exp),
        yaw=np.asarray(yaw, dtype=np.float64),
        pitch=np.zeros(n),
        roll=np.zeros(n),
        sh=np.broadcast_to(sh, (n, 3, 9)) if sh.ndim == 2 else sh,
        background=np.broadcast_to(bg, (n, 3, SM.BACKGROUND_GRID, SM.BACKGROUND_GRID)),
        expression=np.full(n, -1),
        identity=np.full(n, -1),
    )


def _background() -> np.ndarray:
    return np.broadcast_to(np.array([0.62, 0.64, 0.68])[:, None, None], (3, 4, 4))


def expressions_sheet(identities: list[int], size: int, seed: int) -> np.ndarray:
    """Rows: identities; columns: the 8 canonical expressions at a strong intensity."""
    exps = [
        exp_from_au({au: SHEET_INTENSITY * w for au, w in E.AU_PROTOTYPES[c].items()})
        for c in CANONICAL_CLASSES
    ]
    for j, c in enumerate(CANONICAL_CLASSES):  # unilateral classes act on the right side
        if c in E.UNILATERAL_CLASSES:
            exps[j].reshape(E.NUM_AUS, 2)[:, 1] = 0.0
    k = len(exps)
    idc = np.repeat(np.stack([identity_coeffs(seed, i) for i in identities]), k, axis=0)
    f = _factors(idc, np.tile(np.stack(exps), (len(identities), 1)), np.zeros(len(idc)),
                 default_light(), _background())  # fmt: skip
    images = render_batch(f, size, neutral=False, frontal=False, maps=False)["image"]
    return _tile(to_hwc_uint8(images), k, list(CANONICAL_CLASSES))


def yaw_sheet(identity: int, size: int, seed: int) -> np.ndarray:
    """One neutral face from -60 to +60 degrees of yaw."""
    n = len(YAW_SWEEP)
    f = _factors(identity_coeffs(seed, identity), np.zeros((n, 2 * E.NUM_AUS)), YAW_SWEEP,
                 default_light(), _background())  # fmt: skip
    images = render_batch(f, size, neutral=False, frontal=False, maps=False)["image"]
    return _tile(to_hwc_uint8(images), n, [f"yaw {y:+d}" for y in YAW_SWEEP])


def lighting_sheet(identity: int, size: int, seed: int) -> np.ndarray:
    """One face (slight smile) under the six lightings of :data:`LIGHTINGS`."""
    sh = np.stack(
        [
            SM.lights_to_sh(
                np.full(3, amb),
                [(SM.light_direction(a, e), np.asarray(rgb)) for a, e, rgb in lights],
            )
            for _, amb, lights in LIGHTINGS
        ]
    )
    n = len(LIGHTINGS)
    exp = np.tile(exp_from_au({6: 0.4, 12: 0.5}), (n, 1))
    f = _factors(identity_coeffs(seed, identity), exp, np.zeros(n), sh, _background())
    images = render_batch(f, size, neutral=False, frontal=False, maps=False)["image"]
    return _tile(to_hwc_uint8(images), n, [name for name, _, _ in LIGHTINGS])


def write_contact_sheets(
    out_dir: str | Path, size: int, seed: int, first_identity: int = 0, rows: int = 4
) -> list[Path]:
    """Write ``expressions.png``, ``yaw_sweep.png`` and ``lighting.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = list(range(first_identity, first_identity + rows))
    sheets = {
        "expressions.png": expressions_sheet(ids, size, seed),
        "yaw_sweep.png": yaw_sheet(ids[0], size, seed),
        "lighting.png": lighting_sheet(ids[min(1, rows - 1)], size, seed),
    }
    paths = []
    for name, arr in sheets.items():
        path = out / name
        Image.fromarray(arr).save(path, optimize=True)
        paths.append(path)
    return paths
