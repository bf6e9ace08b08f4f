r"""Writing a synthetic split to disk in the RAF-DB basic layout, with a factor sidecar.

Layout under ``out``::

    Image/aligned/{split}_{i:05d}_aligned.jpg     (i from 1, as in RAF-DB)
    EmoLabel/list_patition_label.txt              "{split}_{i:05d}.jpg <code>", codes 1..7
    factors.npz                                   every factor, rows in label-file order
    contact_sheets/{expressions,yaw_sweep,lighting}.png

RAF-DB has no contempt, so the export draws only the 7 RAF-DB classes.
Exporting the other split into the same folder merges both into one label
file and one ``factors.npz`` (train rows first), like the real dataset.

:func:`export_folder` writes the other common way datasets are handed out: plain
PNG images in numbered class folders with the person in the file name,
``out/<k> - <Class>/S<identity>_<n>.png`` (no split folders), for ``facefactors
prepare folder ... --subject-regex '^(S\d+)_'``.
"""

from __future__ import annotations

import dataclasses
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from facefactors.checkpoint import atomic_write_bytes, atomic_write_text
from facefactors.constants import CANONICAL_CLASSES, RAFDB_CODES, pose_bin
from facefactors.errors import DataError, FaceFactorsError
from facefactors.synth import expression as E
from facefactors.synth import identity as ID
from facefactors.synth import sampling as SM
from facefactors.synth.dataset import SynthFaces
from facefactors.synth.scene import Factors, render_batch, rotation_matrix
from facefactors.synth.sheets import write_contact_sheets

LABEL_FILE = Path("EmoLabel") / "list_patition_label.txt"
IMAGE_DIR = Path("Image") / "aligned"
FACTORS_FILE = "factors.npz"
CODE_OF = {name: code for code, name in RAFDB_CODES.items()}


def image_name(split: str, i: int) -> str:
    """RAF-DB style name of sample ``i`` (0-based) of a split, e.g. ``train_00001.jpg``."""
    return f"{split}_{i + 1:05d}.jpg"


def ensure_writable(out: Path) -> None:
    """Create ``out`` and check that files can be written there (one-sentence error if not)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".facefactors_write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise FaceFactorsError(f"Cannot write to output folder {out}: {reason.lower()}.") from None


# Per-sample arrays of factors.npz (everything else is metadata).
ROW_KEYS = (
    "name", "split", "index", "label", "expression", "identity", "id_coeffs", "exp_coeffs",
    "au", "yaw", "pitch", "roll", "rotation", "pose_bin", "sh", "background", "landmarks5",
)  # fmt: skip


def _load_other_split(out: Path, split: str) -> dict[str, np.ndarray] | None:
    """Rows of an existing factors.npz that belong to the other split, if any."""
    path = out / FACTORS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            old = {k: z[k] for k in ROW_KEYS}
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"Existing {path} is not a facefactors factors file ({exc}).") from None
    keep = old["split"] != split
    return {k: v[keep] for k, v in old.items()}


def _merge(new: dict[str, np.ndarray], old: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """Rows of both splits, train first; metadata from ``new``."""
    if old is None or not len(old["split"]):
        return new
    for k in ROW_KEYS:
        if old[k].shape[1:] != new[k].shape[1:]:
            raise DataError(
                f"Cannot merge into {FACTORS_FILE}: '{k}' has shape {old[k].shape[1:]} there but "
                f"{new[k].shape[1:]} now; export both splits with the same settings."
            )
    train_first = new["split"][0] != "train"
    merged = dict(new)
    for k in ROW_KEYS:
        merged[k] = np.concatenate([old[k], new[k]] if train_first else [new[k], old[k]])
    return merged


def export_rafdb(
    out: str | Path,
    split: str = "train",
    identities: int = 100,
    per_identity: int = 8,
    size: int = 112,
    seed: int = 0,
    config: SM.SynthConfig | None = None,
    batch_size: int = 32,
    contact_sheets: bool = True,
    progress: bool | None = None,
    jpeg_quality: int = 95,
) -> dict:
    """Render a split and write it in the RAF-DB layout.

    Returns:
        A summary: ``{"out", "split", "count", "class_counts", "label_file", "factors"}``.
    """
    out = Path(out)
    cfg = config or SM.SynthConfig()
    raf_classes = tuple(c for c in cfg.classes if c in CODE_OF)
    if not raf_classes:
        raise FaceFactorsError("None of the configured classes exists in RAF-DB (codes 1..7).")
    cfg = dataclasses.replace(cfg, classes=raf_classes)
    ds = SynthFaces(split, identities, per_identity, size, seed, config=cfg, maps=False)
    ensure_writable(out)
    (out / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    (out / LABEL_FILE).parent.mkdir(parents=True, exist_ok=True)
    old = _load_other_split(out, split)

    landmarks, factors = [], []
    for idx, imgs, r, f in _render_chunks(ds, batch_size, progress):
        for j, i in enumerate(idx):
            stem = image_name(split, i)[:-4]
            Image.fromarray(imgs[j]).save(
                out / IMAGE_DIR / f"{stem}_aligned.jpg", quality=jpeg_quality
            )
        landmarks.append(r["landmarks5"].numpy())
        factors.append(f)

    table = _factor_table(Factors.stack(factors), np.concatenate(landmarks), split, size, seed)
    merged = _merge(table, old)
    lines = [f"{nm} {code}" for nm, code in zip(merged["name"], merged["label"])]
    atomic_write_text(out / LABEL_FILE, "\n".join(lines) + "\n")
    buf = io.BytesIO()
    np.savez_compressed(buf, **merged)
    atomic_write_bytes(out / FACTORS_FILE, buf.getvalue())
    if contact_sheets:
        first = SM.TEST_IDENTITY_OFFSET if split == "test" else 0
        write_contact_sheets(out / "contact_sheets", size, seed, first_identity=first)
    names, counts = np.unique(table["label"], return_counts=True)
    return {
        "out": str(out),
        "split": split,
        "count": len(ds),
        "class_counts": {RAFDB_CODES[int(c)]: int(k) for c, k in zip(names, counts)},
        "label_file": str(out / LABEL_FILE),
        "factors": str(out / FACTORS_FILE),
    }


def _render_chunks(
    ds: SynthFaces, batch_size: int, progress: bool | None
) -> Iterator[tuple[list[int], np.ndarray, dict, Factors]]:
    """Render ``ds`` in chunks: (indices, (B, H, W, 3) uint8 images, renders, factors)."""
    n = len(ds)
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=n, desc=f"synth {ds.split}", unit="face", disable=not show) as bar:
        for start in range(0, n, batch_size):
            idx = list(range(start, min(n, start + batch_size)))
            f = ds.factors(idx)
            r = render_batch(f, ds.size, neutral=False, frontal=False, maps=False)
            imgs = np.clip(np.rint((r["image"].permute(0, 2, 3, 1).numpy() + 1) * 127.5), 0, 255)
            yield idx, imgs.astype(np.uint8), r, f
            bar.update(len(idx))


def class_folder(classes: tuple[str, ...], name: str) -> str:
    """A numbered class folder as datasets often name them: ``"2 - Happy"``."""
    return f"{classes.index(name) + 1} - {name.capitalize()}"


def export_folder(
    out: str | Path,
    split: str = "train",
    identities: int = 12,
    per_identity: int = 8,
    size: int = 112,
    seed: int = 0,
    config: SM.SynthConfig | None = None,
    batch_size: int = 32,
    progress: bool | None = None,
) -> dict:
    """Render a split as plain PNGs in numbered class folders, the person in each name.

    Layout: ``out/<k> - <Class>/S<identity:03d>_<n:02d>.png`` (``k`` counts the
    configured classes from 1; ``n`` numbers a person's faces).

    Returns:
        ``{"out", "split", "count", "class_counts", "subjects"}``.
    """
    out = Path(out)
    cfg = config or SM.SynthConfig(classes=tuple(CANONICAL_CLASSES[:7]))
    ds = SynthFaces(split, identities, per_identity, size, seed, config=cfg, maps=False)
    ensure_writable(out)
    counts: dict[str, int] = {}
    for idx, imgs, _r, f in _render_chunks(ds, batch_size, progress):
        for j, i in enumerate(idx):
            name = CANONICAL_CLASSES[int(f.expression[j])]
            folder = out / class_folder(tuple(cfg.classes), name)
            folder.mkdir(exist_ok=True)
            n = i % per_identity
            Image.fromarray(imgs[j]).save(folder / f"S{int(f.identity[j]):03d}_{n:02d}.png")
            counts[name] = counts.get(name, 0) + 1
    return {"out": str(out), "split": split, "count": len(ds), "class_counts": counts,
            "subjects": identities}  # fmt: skip


def _factor_table(
    f: Factors, landmarks: np.ndarray, split: str, size: int, seed: int
) -> dict[str, np.ndarray]:
    n = len(f)
    return {
        "name": np.asarray([image_name(split, i) for i in range(n)]),
        "split": np.asarray([split] * n),
        "index": np.arange(n),
        "label": np.asarray([CODE_OF[CANONICAL_CLASSES[c]] for c in f.expression]),
        "expression": f.expression.astype(np.int64),
        "identity": f.identity.astype(np.int64),
        "id_coeffs": f.id_coeffs.astype(np.float32),
        "exp_coeffs": f.exp_coeffs.astype(np.float32),
        "au": SM.au_intensity(f.exp_coeffs).astype(np.float32),
        "yaw": f.yaw.astype(np.float32),
        "pitch": f.pitch.astype(np.float32),
        "roll": f.roll.astype(np.float32),
        "rotation": rotation_matrix(f.yaw, f.pitch, f.roll).astype(np.float32),
        "pose_bin": np.asarray([pose_bin(y) for y in f.yaw], dtype=np.int64),
        "sh": f.sh.astype(np.float32),
        "background": f.background.astype(np.float32),
        "landmarks5": landmarks.astype(np.float32),
        "class_names": np.asarray(CANONICAL_CLASSES),
        "id_coeff_names": np.asarray(ID.ID_COEFF_NAMES),
        "exp_coeff_names": np.asarray(E.EXP_COEFF_NAMES),
        "au_ids": np.asarray(E.AU_IDS),
        "size": np.asarray(size),
        "seed": np.asarray(seed),
    }
