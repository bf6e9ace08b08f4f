"""CK+ (Extended Cohn-Kanade) with the paper's protocol (DESIGN.md §4).

Layout: ``cohn-kanade-images/S005/001/S005_001_00000011.png`` and, for the 327
labelled sequences, ``Emotion/S005/001/S005_001_00000011_emotion.txt`` holding one
float code (0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness,
7 surprise) for the labelled (last) frame. Optional ``Landmarks/.../*_landmarks.txt``
files (68 ``x y`` lines) are attached to the frames.

Protocol: the last 3 frames up to the labelled one carry the label; the first frame
is neutral; subjects are split into 10 folds so no person is in train and test.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facefactors.data.labels import CKPLUS6, CKPLUS7, CKPLUS_CODES, canonical_order, decode_code
from facefactors.data.parsing import first_existing, require_dir
from facefactors.data.records import DatasetIndex, Sample, count_drop, fold_split, line_error
from facefactors.data.subjects import subject_folds
from facefactors.errors import DataError
from facefactors.textfile import read_text

# Folder names as the release's zips unpack them, with and without the zip's own folder.
IMAGES = ("cohn-kanade-images", "extended-cohn-kanade-images/cohn-kanade-images")
EMOTION = ("Emotion", "Emotion_labels/Emotion")
LANDMARKS = ("Landmarks", "Landmarks/Landmarks")
PEAK_FRAMES = 3
NEUTRAL_MODES = ("reference", "class", "none")


def ckplus_folds(subjects: list[str], k: int = 10, seed: int = 0) -> dict[str, int]:
    """Deterministic subject -> fold map (:func:`facefactors.data.subjects.subject_folds`).

    Raises:
        DataError: Fewer subjects than folds.
    """
    return subject_folds(subjects, k, seed, "CK+")


def _read_code(path: Path) -> int:
    text = read_text(path, "CK+ label file")
    lines = [(n, t) for n, t in enumerate(text.splitlines(), start=1) if t.strip()]
    if len(lines) != 1:
        raise DataError(
            f"CK+ label file {path} must hold exactly one code, found {len(lines)} lines."
        )
    lineno, text = lines[0]
    return decode_code(text, CKPLUS_CODES, f"{path} line {lineno}")


def _read_landmarks(path: Path) -> np.ndarray | None:
    """(68, 2) float32 from a CK+ ``*_landmarks.txt``; None when the file is absent."""
    if not path.is_file():
        return None
    rows = []
    for lineno, text in enumerate(read_text(path, "CK+ landmark file").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            xy = [float(v) for v in text.split()]
        except ValueError:
            raise line_error(
                path, lineno, f"expected two numbers but got {text.strip()!r}"
            ) from None
        if len(xy) != 2:
            raise line_error(path, lineno, f"expected two numbers but got {len(xy)}")
        rows.append(xy)
    return np.asarray(rows, dtype=np.float32).reshape(-1, 2)


def _sequences(root: Path, image_root: Path) -> list[tuple[str, str, Path, Path]]:
    """Labelled sequences as ``(subject, sequence, image folder, emotion file)``, sorted."""
    out = []
    emotion_root = first_existing(root, EMOTION, "CK+ Emotion label folder")
    for subj in sorted(p for p in emotion_root.iterdir() if p.is_dir()):
        for seq in sorted(p for p in subj.iterdir() if p.is_dir()):
            files = sorted(seq.glob("*_emotion.txt"))
            if not files:
                continue  # CK+ labels only 327 of its 593 sequences
            if len(files) > 1:
                raise DataError(
                    f"CK+ sequence folder {seq} holds {len(files)} emotion files, not one."
                )
            out.append((subj.name, seq.name, image_root / subj.name / seq.name, files[0]))
    if not out:
        raise DataError(f"CK+ folder {emotion_root} holds no *_emotion.txt label files.")
    return out


def load_ckplus(
    root: str | os.PathLike,
    *,
    num_classes: int = 7,
    neutral: str = "reference",
    folds: int = 10,
    fold_seed: int = 0,
) -> DatasetIndex:
    """Index CK+ under the paper's protocol.

    Args:
        root: Folder holding ``cohn-kanade-images/`` and ``Emotion/`` (and optionally
            ``Landmarks/``).
        num_classes: 7 = the 6 basic expressions and contempt (the paper's setting),
            6 = without contempt (contempt sequences are dropped and counted).
        neutral: What the first frames become. ``"reference"`` (default): neutral
            samples outside the class set, ``label == len(classes)`` and
            ``extra_neutral=True`` (IPD-FER uses them for reconstruction);
            ``"class"``: neutral is added as a class ("6 expressions and neutral");
            ``"none"``: first frames are left out.
        folds: Number of subject-disjoint folds.
        fold_seed: Seed of the subject permutation.

    Returns:
        Index with split ``"all"``; every sample has ``subject`` and ``fold``; use
        :func:`ckplus_fold_split` for the train/test sets of one fold.

    Raises:
        DataError: Missing folders or images, malformed label files, unknown codes.
    """
    if num_classes not in (6, 7):
        raise DataError(f"CK+ num_classes must be 6 or 7, not {num_classes}.")
    if neutral not in NEUTRAL_MODES:
        raise DataError(
            f"CK+ option neutral={neutral!r} must be one of {', '.join(NEUTRAL_MODES)}."
        )
    root = require_dir(Path(root), "CK+")
    image_root = first_existing(root, IMAGES, "CK+ image folder")
    lm_root = next((root / d for d in LANDMARKS if (root / d).is_dir()), root / LANDMARKS[0])
    base = CKPLUS7 if num_classes == 7 else CKPLUS6
    classes = canonical_order((*base, "neutral")) if neutral == "class" else base
    extra = neutral == "reference"
    neutral_label = classes.index("neutral") if neutral == "class" else len(classes)
    seqs = _sequences(root, image_root)
    fold_of = ckplus_folds([s[0] for s in seqs], folds, fold_seed)
    dropped: dict[str, int] = {}
    samples: list[Sample] = []
    for subject, seq, image_dir, emotion_file in seqs:
        name = CKPLUS_CODES[_read_code(emotion_file)]
        if name not in classes:
            count_drop(dropped, f"{name} sequence")
            continue
        peak = image_dir / emotion_file.name.replace("_emotion.txt", ".png")
        if not peak.is_file():
            raise DataError(f"Image {peak} labelled by {emotion_file} does not exist.")
        # The frame-name pattern skips stray files such as macOS "._" resource forks.
        pattern = f"{subject}_{seq}_*.png"
        frames = sorted(p for p in image_dir.glob(pattern) if p.name <= peak.name)
        if len(frames) < 2:
            raise DataError(
                f"CK+ sequence {image_dir} has fewer than 2 frames up to its labelled one."
            )
        chosen = [
            (f, "peak", classes.index(name)) for f in frames[max(1, len(frames) - PEAK_FRAMES) :]
        ]
        if neutral != "none":
            chosen.insert(0, (frames[0], "neutral", neutral_label))
        for frame, role, label in chosen:
            lm = _read_landmarks(lm_root / subject / seq / f"{frame.stem}_landmarks.txt")
            meta = {"sequence": f"{subject}/{seq}", "role": role}
            samples.append(
                Sample(str(frame), label, "all", subject, fold_of[subject], landmarks=lm, meta=meta)
            )
    name = f"ckplus{num_classes}"
    meta = {"dropped": dropped, "folds": folds, "fold_seed": fold_seed, "neutral": neutral}
    return DatasetIndex(name, classes, samples, str(root), extra_neutral=extra, meta=meta)


def ckplus_fold_split(index: DatasetIndex, k: int) -> tuple[DatasetIndex, DatasetIndex]:
    """Train/test indexes of CK+ fold ``k`` (test = subjects of fold ``k``).

    Returns:
        ``(train, test)`` with sample splits ``"train"`` / ``"test"``.
    """
    return fold_split(index, k)
