"""CK+ protocol: last 3 frames + first-frame neutral, subject-disjoint deterministic folds."""

from __future__ import annotations

import numpy as np
import pytest

from facefactors.data.ckplus import ckplus_fold_split, ckplus_folds, load_ckplus
from facefactors.data.labels import CKPLUS6, CKPLUS7
from facefactors.data.writers import write_ckplus_sequence
from facefactors.errors import DataError

# 12 subjects; (subject, sequence, number of frames, class or None for unlabelled)
SEQS = [(f"S{100 + i:03d}", "001", 5, c) for i, c in enumerate(CKPLUS6 * 2)]
SEQS += [("S100", "002", 4, "contempt"), ("S101", "003", 6, None), ("S102", "004", 4, "contempt")]


def _frames(n, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckplus")
    for i, (subj, seq, n, cls) in enumerate(SEQS):
        write_ckplus_sequence(root, subj, seq, _frames(n, i), cls)
    return root


def test_writer_format(tree):
    txt = tree / "Emotion" / "S100" / "002" / "S100_002_00000004_emotion.txt"
    assert txt.read_text() == "   2.0000000e+00\n"  # contempt = 2, as CK+ writes it
    assert (tree / "cohn-kanade-images" / "S100" / "002" / "S100_002_00000001.png").is_file()
    assert not list((tree / "Emotion" / "S101" / "003").iterdir())  # unlabelled sequence


def test_seven_class_protocol(tree):
    idx = load_ckplus(tree)
    assert idx.name == "ckplus7" and idx.classes == CKPLUS7 and idx.extra_neutral
    assert idx.label_names == (*CKPLUS7, "neutral") and idx.neutral_label == 7
    # 14 labelled sequences (the unlabelled one is ignored): 3 peak frames + 1 neutral each.
    assert len(idx) == 14 * 4
    c = idx.counts()["all"]
    assert c == {"happy": 6, "sad": 6, "surprise": 6, "fear": 6, "disgust": 6, "anger": 6,
                 "contempt": 6, "neutral": 14}  # fmt: skip
    seq = [s for s in idx.samples if s.meta["sequence"] == "S100/002"]
    names = [s.path.rsplit("/", 1)[1] for s in seq]
    assert names == [f"S100_002_{i:08d}.png" for i in (1, 2, 3, 4)]
    assert [s.meta["role"] for s in seq] == ["neutral", "peak", "peak", "peak"]
    assert [s.label for s in seq] == [7, 6, 6, 6]
    assert all(s.subject == "S100" for s in seq)
    assert len(idx.subjects) == 12 and idx.splits == ("all",)


def test_six_class_drops_contempt(tree):
    idx = load_ckplus(tree, num_classes=6)
    assert idx.classes == CKPLUS6 and len(idx) == 12 * 4
    assert idx.meta["dropped"] == {"contempt sequence": 2}


def test_neutral_modes(tree):
    with_class = load_ckplus(tree, num_classes=6, neutral="class")
    assert with_class.classes == ("neutral", *CKPLUS6) and not with_class.extra_neutral
    assert with_class.counts()["all"]["neutral"] == 12
    none = load_ckplus(tree, num_classes=6, neutral="none")
    assert len(none) == 12 * 3 and none.neutral_label is None


def test_labelled_frame_bounds_the_peak(tmp_path):
    write_ckplus_sequence(tmp_path, "S001", "001", _frames(6, 0), "happy")
    (tmp_path / "Emotion/S001/001/S001_001_00000006_emotion.txt").rename(
        tmp_path / "Emotion/S001/001/S001_001_00000004_emotion.txt"
    )
    (tmp_path / "cohn-kanade-images/S001/001/._S001_001_00000001.png").write_bytes(b"\0")
    idx = load_ckplus(tmp_path, folds=1)
    frames = [s.path[-6:-4] for s in idx.samples]
    assert frames == ["01", "02", "03", "04"]  # frames 5 and 6 come after the label


def test_folds_are_subject_disjoint_and_deterministic(tree):
    idx = load_ckplus(tree)
    again = load_ckplus(tree)
    assert [s.fold for s in idx.samples] == [s.fold for s in again.samples]
    by_subject = {}
    for s in idx.samples:
        by_subject.setdefault(s.subject, set()).add(s.fold)
    assert all(len(f) == 1 for f in by_subject.values())
    assert {s.fold for s in idx.samples} == set(range(10))
    for k in range(10):
        train, test = ckplus_fold_split(idx, k)
        tr, te = {s.subject for s in train.samples}, {s.subject for s in test.samples}
        assert not tr & te and tr | te == set(idx.subjects)
        assert len(train) + len(test) == len(idx)
        assert train.splits == ("train",) and test.splits == ("test",)
        assert all(s.fold == k for s in test.samples)
    with pytest.raises(DataError, match="Fold 10 is out of range"):
        ckplus_fold_split(idx, 10)


def test_fold_map_is_order_free_and_balanced():
    subjects = [f"S{i:03d}" for i in range(23)]
    a = ckplus_folds(subjects, 10, seed=0)
    b = ckplus_folds(list(reversed(subjects)), 10, seed=0)
    assert a == b
    sizes = sorted(np.bincount(list(a.values()), minlength=10))
    assert sizes == [2] * 7 + [3] * 3
    assert ckplus_folds(subjects, 10, seed=1) != a
    with pytest.raises(DataError, match="fewer than the 10 folds"):
        ckplus_folds(subjects[:9], 10)


def test_landmarks_are_attached(tmp_path):
    write_ckplus_sequence(tmp_path, "S001", "001", _frames(4, 0), "sad")
    lm = tmp_path / "Landmarks/S001/001"
    lm.mkdir(parents=True)
    (lm / "S001_001_00000004_landmarks.txt").write_text(
        "   1.5000000e+01   2.0000000e+01\n   3.0000000e+01   4.0000000e+01\n"
    )
    idx = load_ckplus(tmp_path, folds=1)
    np.testing.assert_array_equal(idx.samples[-1].landmarks, [[15, 20], [30, 40]])
    assert idx.samples[0].landmarks is None
    (lm / "S001_001_00000004_landmarks.txt").write_text("   1.5e+01   2.0e+01\n   3.0e+01\n")
    with pytest.raises(DataError, match=r"00000004_landmarks\.txt line 2: expected two numbers"):
        load_ckplus(tmp_path, folds=1)


def test_label_file_errors(tmp_path):
    write_ckplus_sequence(tmp_path, "S001", "001", _frames(4, 0), "sad")
    label = tmp_path / "Emotion/S001/001/S001_001_00000004_emotion.txt"
    label.write_text("   9.0000000e+00\n")
    with pytest.raises(DataError, match=r"00000004_emotion\.txt line 1: unknown label code 9"):
        load_ckplus(tmp_path, folds=1)
    label.write_text("\n   sad\n")
    with pytest.raises(
        DataError, match=r"00000004_emotion\.txt line 2: label 'sad' is not a number"
    ):
        load_ckplus(tmp_path, folds=1)
    label.write_text("   6.0000000e+00\n")
    (tmp_path / "cohn-kanade-images/S001/001/S001_001_00000004.png").unlink()
    with pytest.raises(DataError, match=r"S001_001_00000004\.png labelled by .* does not exist"):
        load_ckplus(tmp_path, folds=1)


def test_missing_folders(tmp_path):
    with pytest.raises(
        DataError, match="No CK\\+ image folder found under .*looked for .*cohn-kanade-images"
    ):
        load_ckplus(tmp_path)
    (tmp_path / "cohn-kanade-images").mkdir()
    (tmp_path / "Emotion").mkdir()
    with pytest.raises(DataError, match="holds no \\*_emotion.txt label files"):
        load_ckplus(tmp_path)


def test_release_zip_nesting(tmp_path):
    write_ckplus_sequence(tmp_path, "S001", "001", _frames(4, 0), "fear")
    (tmp_path / "extended-cohn-kanade-images").mkdir()
    (tmp_path / "cohn-kanade-images").rename(
        tmp_path / "extended-cohn-kanade-images/cohn-kanade-images"
    )
    (tmp_path / "Emotion_labels").mkdir()
    (tmp_path / "Emotion").rename(tmp_path / "Emotion_labels/Emotion")
    idx = load_ckplus(tmp_path, folds=1)
    assert len(idx) == 4 and "extended-cohn-kanade-images" in idx.samples[0].path
