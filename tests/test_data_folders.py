"""SFEW 2.0, generic ``root/<split>/<class>/`` trees and CSV image lists."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facefactors.data.csvset import load_csv
from facefactors.data.generic import load_folder
from facefactors.data.labels import BASIC7
from facefactors.data.sfew import load_sfew
from facefactors.errors import DataError


def _img(path, value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 6, 3), value, np.uint8)).save(path)
    return path


def _sfew(root):
    for cls, n in {"Angry": 2, "Happy": 3, "Neutral": 1}.items():
        for i in range(n):
            _img(root / "Train" / "Train_Aligned_Faces" / cls / f"{cls}_{i:03d}.png")
    for cls, n in {"Sad": 1, "Surprise": 2}.items():
        for i in range(n):
            _img(root / "Val" / "Val_Aligned_Faces" / cls / f"v{cls}_{i:03d}.png")
    return root


def test_sfew(tmp_path):
    idx = load_sfew(_sfew(tmp_path))
    assert idx.classes == BASIC7 and idx.splits == ("train", "test")
    c = idx.counts()
    assert c["train"]["anger"] == 2 and c["train"]["happy"] == 3 and c["train"]["neutral"] == 1
    assert c["test"]["sad"] == 1 and c["test"]["surprise"] == 2 and sum(c["test"].values()) == 3


def test_sfew_errors(tmp_path):
    root = _sfew(tmp_path)
    _img(root / "Train" / "Train_Aligned_Faces" / "Contempt" / "x.png")
    with pytest.raises(DataError, match=r"Class folder .*Contempt is not an SFEW class"):
        load_sfew(root)
    (root / "Train" / "Train_Aligned_Faces" / "Contempt" / "x.png").unlink()
    (root / "Train" / "Train_Aligned_Faces" / "Contempt").rmdir()
    for p in (root / "Val" / "Val_Aligned_Faces").rglob("*.png"):
        p.unlink()
    with pytest.raises(DataError, match=r"Split folder .*Val_Aligned_Faces holds no images"):
        load_sfew(root)
    with pytest.raises(DataError, match=r"SFEW train folder .*Train_Aligned_Faces does not exist"):
        load_sfew(tmp_path / "Val")


def test_generic_tree_with_aliases(tmp_path):
    _img(tmp_path / "train" / "Angry" / "a.jpg")
    _img(tmp_path / "train" / "happiness" / "b.png")
    _img(tmp_path / "train" / "happiness" / "sub" / "c.png")  # nested images count too
    (tmp_path / "train" / "happiness" / "notes.txt").write_text("x")
    (tmp_path / "train" / "happiness" / "._b.png").write_bytes(b"\0\5")
    _img(tmp_path / "validation" / "Fearful" / "d.jpg")
    idx = load_folder(tmp_path)
    assert idx.classes == ("happy", "fear", "anger")  # found classes, canonical order
    assert idx.splits == ("train", "val")
    assert idx.counts() == {
        "train": {"happy": 2, "fear": 0, "anger": 1},
        "val": {"happy": 0, "fear": 1, "anger": 0},
    }
    assert idx.meta["dropped"] == {"not an image": 1, "hidden file": 1}
    fixed = load_folder(tmp_path, classes=BASIC7)
    assert fixed.classes == BASIC7 and fixed.samples[0].label == 6


def test_generic_errors(tmp_path):
    _img(tmp_path / "train" / "joyful" / "a.jpg")
    with pytest.raises(DataError, match=r"Class folder .*joyful: 'joyful' is not an expression"):
        load_folder(tmp_path)
    (tmp_path / "train" / "joyful").rename(tmp_path / "train" / "happy")
    with pytest.raises(DataError, match="class 'happy' is not one of the classes sad, anger"):
        load_folder(tmp_path, classes=["sad", "angry"])
    (tmp_path / "test" / "sad").mkdir(parents=True)
    with pytest.raises(DataError, match=r"Split folder .*test holds no images"):
        load_folder(tmp_path)
    with pytest.raises(DataError, match="has no <split>/<class>/ or <class>/ subfolders"):
        load_folder(tmp_path / "test" / "sad")


def test_csv_list(tmp_path):
    _img(tmp_path / "imgs" / "a.jpg")
    _img(tmp_path / "imgs" / "b.jpg")
    _img(tmp_path / "imgs" / "c.jpg")
    (tmp_path / "list.csv").write_text(
        "path,label,split,subject,fold,yaw,pose_bin,note\n"
        "imgs/a.jpg,Happiness,train,p1,0,-12.5,1,x\n"
        "imgs/b.jpg,angry,test,p2,1,,,\n"
        "imgs/c.jpg,neutral,,,,,,\n"
    )
    idx = load_csv(tmp_path / "list.csv", default_split="val")
    assert idx.classes == ("neutral", "happy", "anger")
    a, b, c = idx.samples
    assert (a.split, a.subject, a.fold, idx.classes[a.label]) == ("train", "p1", 0, "happy")
    assert a.meta["yaw"] == -12.5 and a.meta["pose_bin"] == 1 and a.meta["note"] == "x"
    assert (
        "yaw" not in b.meta and b.fold == 1 and c.fold is None and idx.classes[b.label] == "anger"
    )
    assert c.split == "val" and c.subject is None
    assert a.path == str(tmp_path / "imgs" / "a.jpg")
    assert idx.subjects == ("p1", "p2")


def test_csv_without_split_column(tmp_path):
    _img(tmp_path / "a.png")
    (tmp_path / "annotations.csv").write_text("path,label\na.png,sad\n")
    idx = load_csv(tmp_path)  # a folder means <folder>/annotations.csv
    assert idx.splits == ("train",) and idx.classes == ("sad",)


def test_csv_errors(tmp_path):
    _img(tmp_path / "a.png")
    f = tmp_path / "l.csv"
    f.write_text("path,label\na.png,sad\na.png,bored\n")
    with pytest.raises(DataError, match=r"l\.csv line 3: 'bored' is not an expression class"):
        load_csv(f)
    f.write_text("path,label\na.png,sad\nb.png,sad\n")
    with pytest.raises(DataError, match=r"b\.png listed at .*l\.csv line 3 does not exist"):
        load_csv(f)
    assert load_csv(f, missing="skip").meta["dropped"] == {"missing image": 1}
    f.write_text("file,label\na.png,sad\n")
    with pytest.raises(DataError, match=r"l\.csv line 1: the header lacks column\(s\) path"):
        load_csv(f)
    f.write_text("path,label,fold\na.png,sad,first\n")
    with pytest.raises(DataError, match=r"l\.csv line 2: column fold value 'first'"):
        load_csv(f)
    f.write_text("path,label\n")
    with pytest.raises(DataError, match="lists no images"):
        load_csv(f)


def test_flat_tree_with_numbered_and_mapped_classes_and_subjects(tmp_path):
    _img(tmp_path / "1 - Happy" / "S01_a.png")
    _img(tmp_path / "02_sad" / "S02_b.png")
    _img(tmp_path / "Joy!" / "S01_c.png")
    with pytest.raises(DataError, match=r"Class folder .*Joy!.*--class-map 'Joy!=CLASS'"):
        load_folder(tmp_path)
    idx = load_folder(tmp_path, class_map="joy!=surprised", subject_regex=r"^(?P<subject>S\d+)_")
    assert idx.classes == ("happy", "sad", "surprise") and idx.splits == ("all",)
    assert sorted((s.subject, idx.classes[s.label]) for s in idx.samples) == [
        ("S01", "happy"),
        ("S01", "surprise"),
        ("S02", "sad"),
    ]
    with pytest.raises(
        DataError, match=r"S02_b\.png: subject pattern .* does not match the file name"
    ):
        load_folder(tmp_path, class_map={"Joy!": "happy"}, subject_regex=r"^(P\d+)_")
    with pytest.raises(DataError, match="subject_regex .* not a valid regular expression"):
        load_folder(tmp_path, subject_regex="(")
    _img(tmp_path / "train" / "happy" / "x.png")  # split folders beside class folders
    with pytest.raises(DataError, match=r"mixes split folders \(train\) with class folders"):
        load_folder(tmp_path, class_map="joy!=happy")


def test_csv_subjects_from_a_column_or_the_file_name(tmp_path):
    _img(tmp_path / "S07_001.png")
    _img(tmp_path / "S08_001.png")
    f = tmp_path / "l.csv"
    f.write_text("path,label,person\nS07_001.png,1 - Joy,p7\nS08_001.png,anger,p8\n")
    idx = load_csv(f, class_map="1 - Joy=happy", subject_column="person")
    assert [(s.subject, idx.classes[s.label]) for s in idx.samples] == [
        ("p7", "happy"),
        ("p8", "anger"),
    ]
    idx = load_csv(f, class_map="1 - joy=happy", subject_regex=r"^(S\d+)_")
    assert [s.subject for s in idx.samples] == ["S07", "S08"]
    with pytest.raises(DataError, match=r"l\.csv line 1: the header lacks column\(s\) who"):
        load_csv(f, class_map="1 - Joy=happy", subject_column="who")
    with pytest.raises(DataError, match=r"entry 'joy' must look like NAME=CLASS"):
        load_csv(f, class_map="joy")
