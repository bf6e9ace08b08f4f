"""Advisory file locks that the OS releases when the process ends (no stale lock files)."""

from __future__ import annotations

from typing import IO

from facefactors.errors import ConfigError


def lock_or_refuse(fh: IO[bytes], busy: str) -> None:
    """Take a non-blocking exclusive ``flock`` on ``fh``; raise ``ConfigError(busy)`` if held.

    Where the OS has no ``fcntl`` (Windows) nothing is locked: run one process at a time.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise ConfigError(busy) from None
