"""RAF-DB basic loader on a tiny tree in the real layout."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facefactors.data.labels import BASIC7
from facefactors.data.rafdb import load_rafdb
from facefactors.data.writers import write_rafdb
from facefactors.errors import DataError

# name, RAF-DB code (1 surprise 2 fear 3 disgust 4 happy 5 sad 6 anger 7 neutral)
LINES = [
    ("train_00001.jpg", 5),
    ("train_00002.jpg", 4),
    ("train_00003.jpg", 4),
    ("train_00004.jpg", 7),
    ("test_0001.jpg", 1),
    ("test_0002.jpg", 6),
]


def _tree(root, lines=LINES, extra_text=""):
    (root / "EmoLabel").mkdir(parents=True)
    text = "".join(f"{n} {c}\n" for n, c in lines) + extra_text
    (root / "EmoLabel" / "list_patition_label.txt").write_text(text)
    aligned = root / "Image" / "aligned"
    aligned.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for n, _ in lines:
        img = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        Image.fromarray(img).save(aligned / n.replace(".jpg", "_aligned.jpg"))
    return root


def test_counts_labels_splits(tmp_path):
    idx = load_rafdb(_tree(tmp_path))
    assert idx.classes == BASIC7 and idx.name == "rafdb"
    assert idx.splits == ("train", "test")
    assert len(idx.split("train")) == 4 and len(idx.split("test")) == 2
    c = idx.counts()
    assert c["train"] == {
        "neutral": 1, "happy": 2, "sad": 1, "surprise": 0, "fear": 0, "disgust": 0, "anger": 0
    }  # fmt: skip
    assert c["test"]["surprise"] == 1 and c["test"]["anger"] == 1 and sum(c["test"].values()) == 2
    first = idx.samples[0]
    assert first.path.endswith("Image/aligned/train_00001_aligned.jpg")
    assert idx.classes[first.label] == "sad" and first.subject is None
    assert idx.subjects == ()
    assert idx.meta["dropped"] == {}


def test_blank_lines_are_ignored(tmp_path):
    idx = load_rafdb(_tree(tmp_path, extra_text="\n  \n"))
    assert len(idx) == 6


def test_malformed_line_names_file_and_line(tmp_path):
    root = _tree(tmp_path, extra_text="test_0003.jpg\n")
    with pytest.raises(
        DataError, match=r"list_patition_label\.txt line 7: expected '<name> <label>'"
    ):
        load_rafdb(root)


def test_unknown_code(tmp_path):
    root = _tree(tmp_path, lines=[*LINES[:2], ("test_0009.jpg", 8)])
    with pytest.raises(DataError, match=r"list_patition_label\.txt line 3: unknown label code 8"):
        load_rafdb(root)


def test_bad_prefix(tmp_path):
    root = _tree(tmp_path, lines=[*LINES, ("val_0001.jpg", 1)])
    with pytest.raises(DataError, match=r"line 7: image name 'val_0001\.jpg' starts with neither"):
        load_rafdb(root)


def test_missing_image_error_and_skip(tmp_path):
    root = _tree(tmp_path)
    gone = root / "Image" / "aligned" / "train_00003_aligned.jpg"
    gone.unlink()
    with pytest.raises(
        DataError, match=r"train_00003_aligned\.jpg listed at .*line 3 does not exist"
    ):
        load_rafdb(root)
    idx = load_rafdb(root, missing="skip")
    assert len(idx) == 5 and idx.meta["dropped"] == {"missing image": 1}


def test_empty_split_and_missing_label_file(tmp_path):
    root = _tree(tmp_path / "a", lines=LINES[:4])
    with pytest.raises(DataError, match="lists no images of the test split"):
        load_rafdb(root)
    with pytest.raises(DataError, match=r"list_patition_label\.txt does not exist"):
        load_rafdb(tmp_path)


def test_split_request_for_absent_split(tmp_path):
    idx = load_rafdb(_tree(tmp_path))
    with pytest.raises(DataError, match="no samples in split 'val'; its splits are: train, test"):
        idx.split("val")


def test_writer_produces_the_real_format(tmp_path):
    img = np.zeros((10, 10, 3), np.uint8)
    lf = write_rafdb(
        tmp_path, [("train_00001.jpg", "happy", img), ("test_0001.jpg", "neutral", img)]
    )
    assert lf.read_text() == "train_00001.jpg 4\ntest_0001.jpg 7\n"
    assert (tmp_path / "Image/aligned/test_0001_aligned.jpg").is_file()
    idx = load_rafdb(tmp_path)
    assert [idx.classes[s.label] for s in idx.samples] == ["happy", "neutral"]
