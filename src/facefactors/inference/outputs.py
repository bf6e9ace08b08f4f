"""Where ``facefactors predict`` writes, row by row, and how a rerun continues.

Files for ``--out results.csv`` (or ``results.jsonl``):

- ``results.csv``: the header line, then one line per face, appended and flushed
  as each batch finishes (``results.jsonl``: one JSON object per face).
- ``results.inputs.jsonl``: the journal. Its first line holds what decides the
  rows (the model file's SHA-256, its classes, and every option that changes a
  row: ``--every``, ``--min-face``, ``--max-faces``, ``--batch``, tracking and
  device). Then one line per finished input with its outcome, and for a video
  one line per classifier batch saying where to continue and the tracker's state.
  Every line records ``end``, the size of the rows file once the rows it covers
  were flushed: the journal line is written after them, so it is the commit.
- ``results.meta.json``: the run's metadata (counts, options, every input with its
  outcome), written when the run ends.

``--out results.json`` streams its faces to ``results.faces.jsonl`` and writes the
single JSON document (metadata inside) when the run ends.

A rerun with the same ``--out`` reads the journal: a header that differs from
this run's is refused (another model or options would mix two kinds of rows); a
torn last line (a kill mid-write) is dropped, and the rows file is cut back to
the last committed ``end``. Inputs whose resolved path has a journal line are
skipped; a video with only batch lines continues from its next frame. So a kill
loses at most the batch in flight, and the rows of an interrupted and resumed
run are byte for byte those of an uninterrupted one. An ``flock`` on the journal
keeps two runs from writing the same output at once.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from facefactors.errors import ConfigError, DataError
from facefactors.inference.predictions import FacePrediction, csv_line, json_line, row_values
from facefactors.locking import lock_or_refuse

SUFFIXES = (".csv", ".jsonl", ".json")
JOURNAL_VERSION = 1


@dataclass(frozen=True)
class OutputFiles:
    """The files of one ``--out``: rows (streamed), journal, and metadata or document."""

    out: Path
    rows: Path
    journal: Path
    meta: Path | None
    document: Path | None

    @property
    def csv(self) -> bool:
        return self.rows.suffix.lower() == ".csv"


def output_files(out: str | os.PathLike) -> OutputFiles:
    """The files ``--out`` stands for (see the module docstring).

    Raises:
        ConfigError: ``out`` does not end in .csv, .jsonl or .json.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"Option --out {out} must end in .csv, .jsonl or .json.")
    journal = out.with_name(out.stem + ".inputs.jsonl")
    if suffix == ".json":
        return OutputFiles(out, out.with_name(out.stem + ".faces.jsonl"), journal, None, out)
    return OutputFiles(out, out, journal, out.with_name(out.stem + ".meta.json"), None)


def check_output(out: str | os.PathLike) -> OutputFiles:
    """Check before any work that ``--out`` can be written (creating its folder).

    Raises:
        ConfigError: a bad suffix, an existing folder of that name, or a place where
            no file can be created (one sentence with the reason).
    """
    files = output_files(out)
    for path in (files.out, files.rows, files.journal):
        if path.is_dir():
            raise ConfigError(f"Option --out {files.out}: {path} is a folder, not a file.")
    parent = files.out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".facefactors-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"Option --out {files.out} cannot be written: {parent} "
            f"{'is not a folder' if isinstance(exc, (NotADirectoryError, FileExistsError)) else 'refuses new files'} "
            f"({exc.strerror or type(exc).__name__})."
        ) from None
    return files


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, sort_keys=True) + "\n").encode("utf-8")


class PredictionSink:
    """Appends rows and journal lines (see the module docstring); a context manager.

    Args:
        files: from :func:`check_output`.
        header: what decides the rows (options, model hash, classes); JSON-ready.

    Attributes:
        done: resolved input path -> its journal line, for inputs finished earlier.
        progress: resolved video path -> its latest batch line (a video in progress).
        earlier: how many inputs were finished by earlier runs.

    Raises (on entering):
        ConfigError: another run is writing this output, or it was written with
            other options or another model.
        DataError: the rows file is shorter than its journal says.
    """

    def __init__(self, files: OutputFiles, header: dict[str, Any]) -> None:
        self.files = files
        self.header = {"kind": "header", "version": JOURNAL_VERSION, **header}
        self.classes: list[str] = list(header["classes"])
        self.done: dict[str, dict[str, Any]] = {}
        self.progress: dict[str, dict[str, Any]] = {}
        self._entries: list[dict[str, Any]] = []
        self._journal: IO[bytes] | None = None
        self._rows: IO[bytes] | None = None
        self.earlier = 0

    def __enter__(self) -> PredictionSink:
        journal = open(self.files.journal, "a+b")
        try:
            _lock(journal, self.files)
            journal.seek(0)
            lines, valid = _parse_journal(journal.read())
            end = self._open_rows(lines)
            journal.truncate(valid if lines else 0)
            if not lines:
                journal.write(_line({**self.header, "end": end}))
                journal.flush()
        except BaseException:
            journal.close()
            if self._rows is not None:
                self._rows.close()
            raise
        self._journal = journal
        return self

    def _open_rows(self, lines: list[dict[str, Any]]) -> int:
        """Open the rows file, cut back to the last commit (or started afresh); its size."""
        if lines:
            found = {k: v for k, v in lines[0].items() if k != "end"}
            if found != self.header:
                raise ConfigError(_mismatch(self.files, found, self.header))
            for rec in lines[1:]:
                if rec.get("kind") == "input":
                    self.done[rec["path"]] = rec
                    self._entries.append(rec)
                    self.progress.pop(rec["path"], None)
                elif rec.get("kind") == "video":
                    self.progress[rec["path"]] = rec
            self.earlier = len(self.done)
            end = int(lines[-1]["end"])
            size = self.files.rows.stat().st_size if self.files.rows.is_file() else -1
            if size < end:
                raise DataError(
                    f"Output {self.files.rows} is shorter than its journal "
                    f"{self.files.journal} records; delete both to start over."
                )
            self._rows = open(self.files.rows, "r+b")
            self._rows.truncate(end)
            self._rows.seek(end)
            return end
        self._rows = open(self.files.rows, "wb")
        if self.files.csv:
            self._rows.write(csv_line(self.header["columns"]).encode("utf-8"))
            self._rows.flush()
        return self._rows.tell()

    def commit(self, faces: list[FacePrediction], lines: list[dict[str, Any]]) -> None:
        """Append the rows of ``faces``, make them durable, then the journal ``lines``."""
        assert self._rows is not None and self._journal is not None, "used outside its with-block"
        if faces:
            if self.files.csv:
                text = "".join(_csv_row(f, self.classes) for f in faces)
            else:
                text = "".join(json_line(f) for f in faces)
            self._rows.write(text.encode("utf-8"))
            self._rows.flush()
            os.fsync(self._rows.fileno())
        end = self._rows.tell()
        for rec in lines:
            if rec["kind"] == "input":
                self._entries.append(rec)
                self.done[rec["path"]] = rec
        self._journal.write(b"".join(_line({**rec, "end": end}) for rec in lines))
        self._journal.flush()

    def entries(self) -> list[dict[str, Any]]:
        """Every finished input's journal line (earlier runs first), without ``end``."""
        return [{k: v for k, v in e.items() if k not in ("end", "kind")} for e in self._entries]

    def finish(self, metadata: dict[str, Any]) -> list[Path]:
        """Write the metadata (or the ``.json`` document); return the output files."""
        from facefactors.checkpoint import atomic_write_text

        assert self._rows is not None
        self._rows.flush()
        os.fsync(self._rows.fileno())
        if self.files.document is not None:
            faces = [json.loads(ln) for ln in self.files.rows.read_text().splitlines() if ln]
            doc = {"metadata": metadata, "classes": self.classes, "faces": faces}
            atomic_write_text(self.files.document, json.dumps(doc, indent=1) + "\n")
            return [self.files.document, self.files.rows, self.files.journal]
        assert self.files.meta is not None
        doc = {"classes": self.classes, **metadata}
        atomic_write_text(self.files.meta, json.dumps(doc, indent=1) + "\n")
        return [self.files.rows, self.files.meta, self.files.journal]

    def __exit__(self, *exc: object) -> None:
        for fh in (self._rows, self._journal):
            if fh is not None:
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
        self._rows = self._journal = None


def _csv_row(face: FacePrediction, classes: list[str]) -> str:
    return csv_line(row_values(face, classes))


def _parse_journal(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The journal's whole lines up to the first that does not parse, and their byte size.

    A line is only valid when complete (newline-terminated) and a JSON object with an
    ``end``; the first line must be a header. Anything after a bad line is dropped.
    """
    lines: list[dict[str, Any]] = []
    valid = 0
    for raw in data.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break
        try:
            rec = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            break
        if not isinstance(rec, dict) or not isinstance(rec.get("end"), int):
            break
        if not lines and rec.get("kind") != "header":
            break
        lines.append(rec)
        valid += len(raw)
    return lines, valid


def _mismatch(files: OutputFiles, found: dict[str, Any], wanted: dict[str, Any]) -> str:
    """The sentence for a rerun whose options or model differ from the output's."""
    keys = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
    what = ", ".join(f"{k} ({found.get(k)!r} there, {wanted.get(k)!r} now)" for k in keys[:3])
    return (
        f"Output {files.out} was written with other settings: {what}; pass another --out, "
        f"or delete {files.rows.name} and {files.journal.name} to start over."
    )


def _lock(fh: IO[bytes], files: OutputFiles) -> None:
    """Exclusive lock on ``fh``, or one sentence saying who holds it."""
    lock_or_refuse(fh, f"Output {files.out} is being written by another `facefactors predict` run.")
