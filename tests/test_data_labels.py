"""Canonical classes, aliases and code decoding (facefactors.data.labels)."""

from __future__ import annotations

import pytest

from facefactors.data.labels import (
    AFFECTNET_CODES,
    ALL8,
    BASIC7,
    CKPLUS6,
    CKPLUS7,
    CKPLUS_CODES,
    FERPLUS_VOTE_COLUMNS,
    RAFDB_CODES,
    SFEW_FOLDERS,
    canonical_order,
    class_index,
    decode_code,
    resolve_class,
)
from facefactors.errors import DataError


def test_class_sets():
    assert BASIC7 == ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
    assert ALL8 == (*BASIC7, "contempt")
    assert CKPLUS6 == ("happy", "sad", "surprise", "fear", "disgust", "anger")
    assert CKPLUS7 == (*CKPLUS6, "contempt")


def test_dataset_code_maps_cover_their_class_sets():
    assert sorted(RAFDB_CODES) == list(range(1, 8)) and set(RAFDB_CODES.values()) == set(BASIC7)
    assert RAFDB_CODES[1] == "surprise" and RAFDB_CODES[7] == "neutral"
    assert AFFECTNET_CODES[6] == "anger" and AFFECTNET_CODES[7] == "contempt"
    assert CKPLUS_CODES[2] == "contempt" and CKPLUS_CODES[6] == "sad"
    assert set(SFEW_FOLDERS.values()) == set(BASIC7)
    kept = [c for _, c in FERPLUS_VOTE_COLUMNS if c is not None]
    assert sorted(kept) == sorted(ALL8)
    assert [c for c, k in FERPLUS_VOTE_COLUMNS if k is None] == ["unknown", "NF"]


@pytest.mark.parametrize(
    "text,name",
    [
        ("Angry", "anger"),
        ("happiness", "happy"),
        ("SADNESS", "sad"),
        ("surprised", "surprise"),
        ("disgusted", "disgust"),
        ("Fearful", "fear"),
        ("neutral", "neutral"),
        (" contempt ", "contempt"),
    ],
)
def test_resolve_class_aliases(text, name):
    assert resolve_class(text, "x") == name


def test_resolve_class_unknown_names_the_place():
    with pytest.raises(DataError, match=r"labels\.csv line 4.*'joy'"):
        resolve_class("joy", "labels.csv line 4")


def test_class_index():
    assert class_index("anger", BASIC7) == 6
    assert class_index("contempt", CKPLUS7) == 6
    with pytest.raises(DataError, match="contempt"):
        class_index("contempt", BASIC7)


def test_canonical_order():
    assert canonical_order(["anger", "neutral", "anger", "happy"]) == ("neutral", "happy", "anger")
    with pytest.raises(DataError):
        canonical_order(["Angry"])


def test_decode_code():
    assert decode_code("3", CKPLUS_CODES, "f line 1") == 3
    assert decode_code("   3.0000000e+00", CKPLUS_CODES, "f line 1") == 3
    with pytest.raises(DataError, match=r"e\.txt line 1: label '2\.5' is not a whole-number"):
        decode_code("2.5", CKPLUS_CODES, "e.txt line 1")
    with pytest.raises(DataError, match=r"list\.txt line 9: unknown label code 8"):
        decode_code("8", RAFDB_CODES, "list.txt line 9")
    with pytest.raises(DataError, match="not a number"):
        decode_code("happy", RAFDB_CODES, "list.txt line 9")
