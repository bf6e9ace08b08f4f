"""AffectNet loader (7- and 8-class) on a tiny tree with the real CSV columns."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facefactors.data.affectnet import load_affectnet
from facefactors.data.labels import ALL8, BASIC7
from facefactors.errors import DataError

HEADER = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
    "expression,valence,arousal"
)
LM = "10.5;20.25;30;40;50;60"  # three (x, y) points
TRAIN = [  # (file, expression code)
    ("1/a.jpg", 0),
    ("1/b.jpg", 1),
    ("2/c.jpg", 1),
    ("2/d.jpg", 7),  # contempt: kept only in the 8-class setting
    ("3/e.jpg", 8),  # none
    ("3/f.jpg", 9),  # uncertain
    ("3/g.jpg", 10),  # non-face
    ("4/h.jpg", 6),
]
VAL = [("5/i.jpg", 3), ("5/j.jpg", 7), ("5/k.jpg", 4)]


def _row(f, code):
    return f'{f},11,12,33,34,"{LM}",{code},0.25,-0.5'


def _tree(root, train=TRAIN, val=VAL, val_header=True, skip_images=()):
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True)
    (lists / "training.csv").write_text("\n".join([HEADER] + [_row(*r) for r in train]) + "\n")
    head = [HEADER] if val_header else []
    (lists / "validation.csv").write_text("\n".join(head + [_row(*r) for r in val]) + "\n")
    images = root / "Manually_Annotated_Images"
    for f, _ in train + val:
        if f in skip_images:
            continue
        (images / f).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(images / f)
    return root


def test_seven_class(tmp_path):
    idx = load_affectnet(_tree(tmp_path), num_classes=7)
    assert idx.name == "affectnet7" and idx.classes == BASIC7
    assert [idx.classes[s.label] for s in idx.split("train")] == [
        "neutral",
        "happy",
        "happy",
        "anger",
    ]
    assert [idx.classes[s.label] for s in idx.split("test")] == ["surprise", "fear"]
    assert idx.meta["dropped"] == {"contempt": 2, "none": 1, "uncertain": 1, "non-face": 1}
    s = idx.samples[0]
    assert s.path.endswith("Manually_Annotated_Images/1/a.jpg")
    assert s.box == (11.0, 12.0, 33.0, 34.0)
    np.testing.assert_array_equal(s.landmarks, [[10.5, 20.25], [30, 40], [50, 60]])
    assert s.meta["valence"] == 0.25 and s.meta["arousal"] == -0.5


def test_eight_class_and_headerless_validation(tmp_path):
    idx = load_affectnet(_tree(tmp_path, val_header=False), num_classes=8)
    assert idx.classes == ALL8
    assert idx.counts()["train"]["contempt"] == 1 and idx.counts()["test"]["contempt"] == 1
    assert len(idx.split("train")) == 5 and len(idx.split("test")) == 3
    assert idx.meta["dropped"] == {"none": 1, "uncertain": 1, "non-face": 1}


def test_unknown_code_names_file_and_line(tmp_path):
    root = _tree(tmp_path, train=[*TRAIN, ("4/z.jpg", 11)])
    with pytest.raises(DataError, match=r"training\.csv line 10: unknown label code 11"):
        load_affectnet(root)


def test_malformed_landmarks_and_box(tmp_path):
    root = _tree(tmp_path)
    path = root / "Manually_Annotated_file_lists" / "training.csv"
    text = path.read_text()
    path.write_text(text.replace(f'1/b.jpg,11,12,33,34,"{LM}"', '1/b.jpg,11,12,33,34,"1;2;3"'))
    with pytest.raises(DataError, match=r"training\.csv line 3: facial_landmarks holds 3 numbers"):
        load_affectnet(root)
    path.write_text(text.replace("1/b.jpg,11", "1/b.jpg,abc"))
    with pytest.raises(DataError, match=r"training\.csv line 3: column face_x value 'abc'"):
        load_affectnet(root)
    path.write_text(text.replace(",0.25,-0.5\n2/c", ",0.25\n2/c"))
    with pytest.raises(DataError, match=r"training\.csv line 3: expected 9 fields but found 8"):
        load_affectnet(root)


def test_missing_image(tmp_path):
    root = _tree(tmp_path, skip_images=("5/k.jpg",))
    with pytest.raises(
        DataError, match=r"5/k\.jpg listed at .*validation\.csv line 4 does not exist"
    ):
        load_affectnet(root)
    idx = load_affectnet(root, missing="skip")
    assert len(idx.split("test")) == 1 and idx.meta["dropped"]["missing image"] == 1


def test_empty_split(tmp_path):
    root = _tree(tmp_path, val=[("5/j.jpg", 7)])
    with pytest.raises(DataError, match=r"validation\.csv yields no 7-class samples"):
        load_affectnet(root)


def test_bad_num_classes(tmp_path):
    with pytest.raises(DataError, match="7 or 8"):
        load_affectnet(tmp_path, num_classes=6)
