"""The append-only progress log that makes ``prepare`` resumable and shardable.

Every finished sample (prepared or failed) becomes one JSON line in
``DIR/progress.jsonl`` (``DIR/progress.shard-i-of-n.jsonl`` for ``--shard i/n``),
appended and flushed as soon as its aligned image is on disk. The first line is a
header holding the settings and a fingerprint of the dataset, so a rerun can check
that it continues the same job.

A run reads *every* progress file in ``DIR``: records written by any earlier run,
sharded or not, are reused, and the final ``annotations.csv`` is built from their
union once it covers every sample. A process killed mid-write leaves at most one
partial last line; it is ignored, and cut off before the next append.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from facefactors.errors import ConfigError, DataError
from facefactors.locking import lock_or_refuse

# Header keys that must agree between runs writing into one output folder.
COMPATIBLE_KEYS = (
    "dataset",
    "options",
    "num_samples",
    "fingerprint",
    "size",
    "format",
    "detect",
    "crop_landmarks",
    "min_face_size",
)
PROGRESS_GLOB = "progress*.jsonl"
_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the samples whose dataset position ``% count == index``."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Parse ``"i/n"`` (0 <= i < n).

        Raises:
            ConfigError: Malformed text or ``i`` out of range.
        """
        m = _SHARD_RE.match(text)
        if not m:
            raise ConfigError(f"Option --shard {text!r} must look like i/n, e.g. 0/4.")
        i, n = int(m.group(1)), int(m.group(2))
        if n < 1 or not 0 <= i < n:
            raise ConfigError(f"Option --shard {text!r} needs 0 <= i < n.")
        return cls(i, n)

    def selects(self, position: int) -> bool:
        """Whether the sample at ``position`` in the dataset belongs to this shard."""
        return position % self.count == self.index

    def suffix(self) -> str:
        """``""`` for a whole run, ``".shard-i-of-n"`` for a shard (used in file names)."""
        return "" if self.count == 1 else f".shard-{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def progress_path(out_dir: Path, shard: Shard) -> Path:
    """The progress file a run of ``shard`` appends to."""
    return out_dir / f"progress{shard.suffix()}.jsonl"


def read_progress(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]], int]:
    """Parse one progress file.

    Returns:
        ``(header, records, valid_bytes)``: the header (None for an empty file), the
        sample records in file order, and the byte length of the complete lines (a
        trailing partial line, left by a killed run, is excluded).

    Raises:
        DataError: A complete line that is not JSON, or a file without a header.
    """
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1  # lines after the last newline are partial
    header: dict[str, Any] | None = None
    records: list[dict[str, Any]] = []
    for lineno, raw in enumerate(data[:end].splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            raise DataError(
                f"{path} line {lineno}: not a JSON record; the progress file is damaged "
                f"(delete it to redo the samples it lists)."
            ) from None
        if lineno == 1:
            if obj.get("kind") != "header":
                raise DataError(f"{path} line 1: expected the prepare header record.")
            header = obj
        else:
            records.append(obj)
    return header, records, end


def check_compatible(path: Path, found: dict[str, Any], expected: dict[str, Any]) -> None:
    """Raise unless a progress file was written with the same settings and dataset.

    Raises:
        ConfigError: naming the first setting that differs.
    """
    for key in COMPATIBLE_KEYS:
        if found.get(key) != expected.get(key):
            what = (
                "a different dataset (its samples or labels changed)"
                if key in ("fingerprint", "num_samples")
                else f"{key}={found.get(key)!r} instead of {expected.get(key)!r}"
            )
            raise ConfigError(
                f"Progress file {path} was written for {what}; "
                f"use another --out folder or delete that file to start over."
            )


def load_all_progress(out_dir: Path, header: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Records of every progress file in ``out_dir``, by dataset position.

    Where files hold several records of one sample (a sample redone after its
    image was deleted, or a missing image that appeared), a prepared record wins
    over a failure; otherwise the last one read wins.

    Raises:
        ConfigError: A file was written with other settings (see :func:`check_compatible`).
        DataError: A damaged file.
    """
    done: dict[int, dict[str, Any]] = {}
    for path in sorted(out_dir.glob(PROGRESS_GLOB)):
        found, records, _ = read_progress(path)
        if found is None:
            continue
        check_compatible(path, found, header)
        for rec in records:
            i = int(rec["i"])
            if not (rec["status"] != "ok" and done.get(i, {}).get("status") == "ok"):
                done[i] = rec
    return done


def read_headers(out_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """``(path, header)`` of every non-empty progress file in ``out_dir``."""
    out = []
    for path in sorted(out_dir.glob(PROGRESS_GLOB)):
        header, _, _ = read_progress(path)
        if header is not None:
            out.append((path, header))
    return out


class ProgressLog:
    """Append-only writer of one progress file, exclusive to one process.

    Use as a context manager. Opening cuts off a partial last line, writes the
    header if the file is new, and takes an advisory lock so that two runs of the
    same shard cannot interleave their lines.

    Args:
        path: The progress file.
        header: The run's header record (written only to a new file).

    Raises:
        ConfigError: Another process holds the lock.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self._fh: IO[bytes] | None = None

    def __enter__(self) -> ProgressLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        valid = read_progress(self.path)[2] if self.path.exists() else 0
        fh = open(self.path, "ab")
        try:
            _lock(fh, self.path)
            fh.truncate(valid)
            if valid == 0:
                fh.write(_line(self.header))
                fh.flush()
        except BaseException:
            fh.close()
            raise
        self._fh = fh
        return self

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append records and flush them to the OS (they survive a killed process)."""
        assert self._fh is not None, "ProgressLog used outside its with-block"
        self._fh.write(b"".join(_line(r) for r in records))
        self._fh.flush()

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, sort_keys=True) + "\n").encode("utf-8")


def _lock(fh: IO[bytes], path: Path) -> None:
    """Exclusive lock on ``fh``, or one sentence saying who holds it."""
    lock_or_refuse(fh, f"Progress file {path} is in use by another `facefactors prepare` run.")
