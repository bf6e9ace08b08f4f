"""Small file-reading helpers shared by the dataset parsers.

They all fail with one sentence naming the file (and line), which is what a user
needs when a download is incomplete or a label file was edited by hand.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from facefactors.data.records import count_drop, line_error
from facefactors.errors import DataError
from facefactors.textfile import csv_rows

MISSING_POLICIES = ("error", "skip")


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder, else raise naming it and what it should hold."""
    if not path.is_dir():
        raise DataError(f"{what} folder {path} does not exist.")
    return path


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a file, else raise naming it and what it should hold."""
    if not path.is_file():
        raise DataError(f"{what} file {path} does not exist.")
    return path


def first_existing(root: Path, candidates: Sequence[str], what: str) -> Path:
    """The first ``root / c`` that exists, else a DataError listing every place tried."""
    for c in candidates:
        p = root / c
        if p.exists():
            return p
    tried = ", ".join(str(root / c) for c in candidates)
    raise DataError(f"No {what} found under {root} (looked for {tried}).")


def check_missing_policy(missing: str) -> None:
    """Validate the ``missing=`` loader option."""
    if missing not in MISSING_POLICIES:
        raise DataError(f"Option missing={missing!r} must be one of {', '.join(MISSING_POLICIES)}.")


def image_present(
    image: Path, where: str, missing: str, dropped: dict[str, int], check: bool = True
) -> bool:
    """Check that a listed image exists.

    Args:
        image: The image path the label file points to.
        where: ``"<label file> line <n>"`` that listed it.
        missing: ``"error"`` raises; ``"skip"`` counts it under ``dropped['missing image']``.
        dropped: The index's dropped-row counter.
        check: False trusts the label file (fast loading of huge lists).

    Returns:
        True if the sample should be kept.
    """
    if not check or image.is_file():
        return True
    if missing == "skip":
        count_drop(dropped, "missing image")
        return False
    raise DataError(f"Image {image} listed at {where} does not exist.")


def iter_csv(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV with a header line, as ``(line_number, {column: text})``.

    The file is read as :func:`facefactors.textfile.read_text` reads it (UTF-8,
    a byte-order mark allowed).

    Raises:
        DataError: The file is undecodable or empty, a required column is missing,
            or a row has the wrong number of fields (naming the line).
    """
    rows = csv_rows(path)
    first = next(rows, None)
    if first is None:
        raise DataError(f"CSV file {path} is empty.")
    header = [h.strip() for h in first[1]]
    absent = [c for c in required if c not in header]
    if absent:
        raise line_error(
            path,
            first[0],
            f"the header lacks column(s) {', '.join(absent)} (found {', '.join(header)})",
        )
    for line_num, fields in rows:
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise line_error(
                path,
                line_num,
                f"expected {len(header)} comma-separated fields but found {len(fields)}",
            )
        yield line_num, dict(zip(header, fields))


def parse_float(text: str, path: Path, lineno: int, column: str) -> float:
    """A float field, or a DataError naming the file, line and column."""
    try:
        return float(text)
    except ValueError:
        raise line_error(path, lineno, f"column {column} value {text!r} is not a number") from None


def parse_int(text: str, path: Path, lineno: int, column: str) -> int:
    """An integer field, or a DataError naming the file, line and column."""
    try:
        return int(text.strip())
    except ValueError:
        raise line_error(
            path, lineno, f"column {column} value {text!r} is not an integer"
        ) from None
