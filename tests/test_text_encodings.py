"""User text files in the encodings spreadsheet programs write: loaded, or one sentence."""

from __future__ import annotations

import codecs

import numpy as np
import pytest
from PIL import Image

from facefactors.config import read_yaml
from facefactors.data.csvset import load_csv
from facefactors.data.rafdb import load_rafdb
from facefactors.errors import ConfigError, DataError
from facefactors.textfile import csv_rows, decode_text

CSV = "path,label,note\nb.png,sad,café\na.png,happy,crème\n"


def _images(folder, names) -> None:
    for n in names:
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / n)


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: t.encode("utf-8"),
        lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),  # Excel's "CSV UTF-8"
        lambda t: t.encode("utf-16"),  # a byte-order mark, then UTF-16-LE
        lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be"),
        lambda t: t.replace("\n", "\r\n").encode("utf-8-sig"),
    ],
    ids=["utf8", "utf8-bom", "utf16", "utf16-be", "crlf-bom"],
)
def test_csv_in_utf8_or_marked_utf16_loads(tmp_path, encode) -> None:
    _images(tmp_path, ["a.png", "b.png"])
    (tmp_path / "list.csv").write_bytes(encode(CSV))
    idx = load_csv(tmp_path / "list.csv")
    assert [s.meta["note"] for s in idx.samples] == ["café", "crème"]
    assert [idx.classes[s.label] for s in idx.samples] == ["sad", "happy"]


def test_latin1_csv_is_one_sentence_naming_file_and_line(tmp_path) -> None:
    _images(tmp_path, ["a.png", "b.png"])
    path = tmp_path / "list.csv"
    path.write_bytes(CSV.encode("latin-1"))
    with pytest.raises(DataError) as err:
        load_csv(path)
    assert str(err.value) == (
        f"CSV file {path} is not UTF-8 text: line 2 holds byte 0xe9, which UTF-8 cannot decode "
        "(Latin-1 or Windows-1252?); save it as UTF-8 (spreadsheet programs call it 'CSV UTF-8')."
    )


def test_utf16_without_a_mark_and_nul_bytes_are_named(tmp_path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(CSV.encode("utf-16-le"))
    with pytest.raises(DataError, match=r"list\.csv holds a NUL byte on line 1 \(UTF-16 without"):
        load_csv(path)


def test_a_mark_that_lies_is_named(tmp_path) -> None:
    with pytest.raises(DataError, match=r"x\.csv starts with a UTF-16 byte-order mark but line 1"):
        decode_text(codecs.BOM_UTF16_LE + b"\x00\xd8", "x.csv")  # a lone surrogate


def test_csv_module_errors_become_one_sentence(tmp_path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('path,label\n"a.png,sad\n' + "x" * 200_000)  # a quote never closed
    with pytest.raises(DataError, match=r"q\.csv line \d+: field larger than field limit"):
        list(csv_rows(path))


def test_rafdb_label_file_encodings(tmp_path) -> None:
    root = tmp_path / "basic"
    (root / "EmoLabel").mkdir(parents=True)
    (root / "Image" / "aligned").mkdir(parents=True)
    names = ["train_00001.jpg", "test_0001.jpg"]
    _images(root / "Image" / "aligned", [n.replace(".jpg", "_aligned.jpg") for n in names])
    label = root / "EmoLabel" / "list_patition_label.txt"
    label.write_bytes("train_00001.jpg 4\r\ntest_0001.jpg 1\r\n".encode("utf-16"))
    assert len(load_rafdb(root)) == 2
    label.write_bytes(b"train_00001.jpg 4\ntest_0001.jpg \xb11\n")
    with pytest.raises(DataError, match=r"RAF-DB label file .*list_patition_label\.txt is not "
                       r"UTF-8 text: line 2 holds byte 0xb1"):  # fmt: skip
        load_rafdb(root)


def test_config_yaml_encodings(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(codecs.BOM_UTF8 + "train:\n  lr: 0.5 # réglé\n".encode())
    assert read_yaml(path) == {"train": {"lr": 0.5}}
    path.write_bytes("train:\n  lr: 0.5 # réglé\n".encode("cp1252"))
    with pytest.raises(ConfigError, match=r"Config file .*c\.yaml is not UTF-8 text: line 2"):
        read_yaml(path)
