"""FERPlus majority protocol and FER2013 CSV parsing on hand-made rows."""

from __future__ import annotations

import numpy as np
import pytest

from facefactors.data.ferplus import ferplus_majority, load_fer2013, load_ferplus
from facefactors.data.labels import ALL8, BASIC7
from facefactors.errors import DataError

NEW_HEADER = (
    "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
)

# (Usage, image name, votes in column order, expected canonical class or drop reason)
ROWS = [
    ("Training", "fer0000000.png", [10, 0, 0, 0, 0, 0, 0, 0, 0, 0], "neutral"),
    ("Training", "fer0000001.png", [0, 6, 4, 0, 0, 0, 0, 0, 0, 0], "happy"),
    ("Training", "fer0000002.png", [0, 5, 5, 0, 0, 0, 0, 0, 0, 0], "no majority"),  # tie
    ("Training", "fer0000003.png", [1, 4, 1, 1, 1, 1, 1, 0, 0, 0], "happy"),  # 1s zeroed: 4 of 4
    ("Training", "fer0000004.png", [0, 0, 0, 0, 0, 0, 0, 0, 7, 3], "unknown"),
    ("PublicTest", "fer0000005.png", [0, 0, 0, 0, 0, 0, 0, 0, 2, 8], "NF"),
    ("PublicTest", "", [10, 0, 0, 0, 0, 0, 0, 0, 0, 0], "empty image name"),
    ("PublicTest", "fer0000007.png", [0, 0, 0, 0, 0, 0, 0, 6, 2, 2], "contempt"),
    ("PrivateTest", "fer0000008.png", [4, 3, 3, 0, 0, 0, 0, 0, 0, 0], "no majority"),  # 4 of 10
    ("PrivateTest", "fer0000009.png", [0, 0, 0, 3, 0, 0, 2, 0, 0, 0], "sad"),  # 3 of 5
    ("PrivateTest", "fer0000010.png", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], "no majority"),  # all zeroed
]
FER_EMOTION = [6, 3, 3, 3, 0, 1, 6, 2, 6, 4, 5]


def _pixels(i):
    return (np.arange(48 * 48) * (i + 1)) % 256


def _write(root, rows=ROWS, old_override=None):
    root.mkdir(parents=True, exist_ok=True)
    old = ["emotion,pixels,Usage"]  # old[i] is line i + 1
    for i, (usage, *_rest) in enumerate(rows):
        px = " ".join(str(v) for v in _pixels(i))
        old.append(f"{FER_EMOTION[i % len(FER_EMOTION)]},{px},{usage}")
    if old_override:
        old[old_override[0]] = old_override[1]
    (root / "fer2013.csv").write_text("\n".join(old) + "\n")
    new = [NEW_HEADER] + [f"{u},{n}," + ",".join(map(str, v)) for u, n, v, _ in rows]
    (root / "fer2013new.csv").write_text("\n".join(new) + "\n")
    return root


@pytest.mark.parametrize("usage,name,votes,expected", ROWS)
def test_majority_rule(usage, name, votes, expected):
    col = ["neutral", "happy", "surprise", "sad", "anger", "disgust", "fear", "contempt"]
    col += ["unknown", "NF"]
    winner = ferplus_majority(votes)
    if expected == "no majority":
        assert winner is None
    elif expected != "empty image name":
        assert col[winner] == expected


def test_loader_applies_protocol(tmp_path):
    idx = load_ferplus(_write(tmp_path))
    assert idx.classes == ALL8
    got = [(s.split, idx.classes[s.label], s.meta["image_name"]) for s in idx.samples]
    assert got == [
        ("train", "neutral", "fer0000000.png"),
        ("train", "happy", "fer0000001.png"),
        ("train", "happy", "fer0000003.png"),
        ("val", "contempt", "fer0000007.png"),
        ("test", "sad", "fer0000009.png"),
    ]
    assert idx.meta["dropped"] == {"no majority": 3, "unknown": 1, "NF": 1, "empty image name": 1}
    assert idx.counts()["train"]["happy"] == 2
    # Pixels come from the matching fer2013.csv row (row 3 -> _pixels(3)).
    px = idx.samples[2].pixels
    assert px.dtype == np.uint8 and px.shape == (48, 48) and idx.samples[2].path is None
    np.testing.assert_array_equal(px.ravel(), _pixels(3))


def test_fer2013_original_labels(tmp_path):
    idx = load_fer2013(_write(tmp_path))
    assert idx.classes == BASIC7 and len(idx) == len(ROWS)
    # emotion codes: 0 angry 1 disgust 2 fear 3 happy 4 sad 5 surprise 6 neutral
    names = [idx.classes[s.label] for s in idx.samples[:6]]
    assert names == ["neutral", "happy", "happy", "happy", "anger", "disgust"]
    assert idx.splits == ("train", "val", "test")


def test_short_pixel_row_names_file_and_line(tmp_path):
    short = "3," + " ".join(["7"] * 2303) + ",Training"
    root = _write(tmp_path, old_override=(3, short))
    with pytest.raises(DataError, match=r"fer2013\.csv line 4: the pixels field holds 2303 values"):
        load_ferplus(root)


def test_bad_pixel_value_and_bad_usage(tmp_path):
    root = _write(tmp_path / "a", old_override=(2, "3," + " ".join(["300"] * 2304) + ",Training"))
    with pytest.raises(DataError, match=r"fer2013\.csv line 3: a pixel value lies outside"):
        load_ferplus(root)
    root = _write(tmp_path / "b", old_override=(2, "3," + " ".join(["1"] * 2304) + ",Train"))
    with pytest.raises(DataError, match=r"fer2013\.csv line 3: Usage 'Train' is not one of"):
        load_ferplus(root)


def test_bad_vote_and_missing_column(tmp_path):
    root = _write(tmp_path)
    text = (root / "fer2013new.csv").read_text().replace("fer0000001.png,0,6", "fer0000001.png,0,x")
    (root / "fer2013new.csv").write_text(text)
    with pytest.raises(DataError, match=r"fer2013new\.csv line 3: column happiness value 'x'"):
        load_ferplus(root)
    (root / "fer2013new.csv").write_text(text.replace(",NF", ",nf", 1))
    with pytest.raises(DataError, match=r"fer2013new\.csv line 1: the header lacks column\(s\) NF"):
        load_ferplus(root)


def test_row_count_mismatch(tmp_path):
    root = _write(tmp_path)
    lines = (root / "fer2013new.csv").read_text().splitlines()
    (root / "fer2013new.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match="has 10 rows but .*fer2013.csv has 11"):
        load_ferplus(root)


def test_missing_files(tmp_path):
    with pytest.raises(DataError, match="No fer2013.csv found"):
        load_ferplus(tmp_path)
