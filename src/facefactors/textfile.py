"""Reading the text files users hand us: label files, CSVs, YAML configs, JSON manifests.

Every such file goes through :func:`read_text`: UTF-8, with or without a
byte-order mark (spreadsheet programs write one), or UTF-16 when a byte-order
mark says so (Excel's "Unicode text"). Anything else (Latin-1, Windows-1252,
UTF-16 without a mark) ends in one sentence naming the file, the line and what
to do, never a ``UnicodeDecodeError`` traceback. :func:`csv_rows` turns the
``csv`` module's own errors (a NUL byte, a runaway quoted field) into the same.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path

from facefactors.errors import DataError

# Longest BOM first: UTF-32-LE's starts with UTF-16-LE's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SAVE_AS = "save it as UTF-8 (spreadsheet programs call it 'CSV UTF-8')"


def decode_text(
    data: bytes, path: str | os.PathLike, what: str = "File", error: type = DataError
) -> str:
    """Decode a user's text file (see the module docstring).

    Args:
        data: the file's bytes.
        path: the file, for the message.
        what: the file's role in words (``"RAF-DB label file"``).
        error: the :class:`~facefactors.errors.FaceFactorsError` subclass to raise.

    Raises:
        error: bytes that are not UTF-8 (nor UTF-16/32 with a byte-order mark), or NUL bytes.
    """
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    if encoding == "utf-8" and b"\x00" in data:  # checked first: UTF-16 text has NULs
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise error(
            f"{what} {path} holds a NUL byte on line {line} (UTF-16 without a byte-order mark, "
            f"or not a text file?); {_SAVE_AS}."
        )
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        if encoding != "utf-8":
            raise error(
                f"{what} {path} starts with a {encoding.upper()} byte-order mark but line {line} "
                f"is not {encoding.upper()}; {_SAVE_AS}."
            ) from None
        raise error(
            f"{what} {path} is not UTF-8 text: line {line} holds byte 0x{data[exc.start]:02x}, "
            f"which UTF-8 cannot decode (Latin-1 or Windows-1252?); {_SAVE_AS}."
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise error(f"{what} {path} holds a NUL character on line {line}; {_SAVE_AS}.")
    return text


def read_text(path: str | os.PathLike, what: str = "File", error: type = DataError) -> str:
    """The decoded text of a user's file (:func:`decode_text`).

    Raises:
        error: the file cannot be read, or is not text in a known encoding.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist.") from None
    except OSError as exc:
        raise error(f"{what} {path} could not be read ({exc.strerror or exc}).") from None
    return decode_text(data, path, what, error)


def csv_rows(path: str | os.PathLike, what: str = "CSV file") -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of every row of a user's CSV, blank rows included.

    Raises:
        DataError: an undecodable file (:func:`read_text`) or a row the ``csv``
            module cannot parse (naming the line).
    """
    text = read_text(path, what)
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{what} {path} line {reader.line_num}: {exc}.") from None
        yield reader.line_num, fields
