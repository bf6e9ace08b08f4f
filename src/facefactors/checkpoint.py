"""Atomic checkpoint writes and safe loads.

Checkpoints are plain dicts of tensors, numbers, strings, lists and dicts (a
model ``state_dict`` plus the config as a dict), so they load with
``torch.load(..., weights_only=True)``: no pickled code is ever executed, and a
file that holds Python objects is refused with one sentence.

A write goes to a temporary ``.NAME.*.tmp`` file beside the destination, is
fsynced, then renamed over it. A kill mid-write leaves that temporary file; the
next save (or a resume, :func:`clean_orphans`) removes it.

Readers of a loaded dict use :func:`entry` for every key they need and
:func:`load_weights` for every state dict, so a half-formed dict or weights of
another model end in one :class:`CheckpointError` naming the key (or every
missing, unexpected and mis-shaped key), never a ``KeyError`` or torch's
"Error(s) in loading state_dict".
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facefactors.errors import CheckpointError


def _default_mode() -> int:
    """The permissions ``open()`` would give a new file (0o666 minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    The file gets ordinary permissions (not mkstemp's 0600); on any error the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    _atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a UTF-8 text file atomically (temporary file, then rename)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Save ``state`` with ``torch.save`` atomically: a crash never leaves a half file.

    Args:
        path: destination file (``.pt``).
        state: a dict of tensors, state dicts, numbers, strings, lists and dicts.

    Returns:
        The destination path.
    """
    clean_orphans(path)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())

    return _atomic_write(path, write)


def clean_orphans(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files a killed :func:`save_checkpoint` left beside ``path``.

    Returns:
        The files removed (``.last.pt.k3j2x.tmp`` ...).
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:  # already gone (another process cleaned it), or not ours to remove
            pass
    return removed


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint safely (``weights_only=True``) with a clear error if it is bad.

    Raises:
        CheckpointError: the file is missing, truncated or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file {path} does not exist.")
    try:
        with warnings.catch_warnings():  # torch's note on a bare pickle's protocol
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/corrupt zips
        raise _load_error(path, exc) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"Checkpoint file {path} does not hold a dict of weights.")
    return state


def _load_error(path: Path, exc: Exception) -> CheckpointError:
    """The one sentence for a ``torch.load`` failure (never torch's advice to drop weights_only)."""
    text = str(exc).strip()
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        with open(path, "rb") as f:
            is_pickle = f.read(1) == b"\x80"  # a bare pickle stream (protocol 2+), not a zip
        if "Unsupported global" in text or is_pickle:
            return CheckpointError(
                f"Checkpoint file {path} was refused: it holds Python objects, which facefactors "
                "never loads (not a facefactors checkpoint, or an unsafe file)."
            )
        reason = "not a torch checkpoint"
    else:
        reason = text.splitlines()[0].rstrip(".") if text else type(exc).__name__
    return CheckpointError(
        f"Checkpoint file {path} could not be read (truncated or corrupt?): {reason}."
    )


def entry(
    state: Mapping[str, Any], key: str, where: str | os.PathLike, kind: type | tuple = object
) -> Any:
    """``state["a"]["b"]`` for ``key="a.b"``, checked: a missing or mistyped entry is named.

    Args:
        state: a loaded checkpoint dict.
        key: dotted path of the entry.
        where: the checkpoint, for the message.
        kind: the type(s) the value must have (``int`` excludes ``bool``).

    Raises:
        CheckpointError: an entry on the path is missing or of another type.
    """
    node: Any = state
    for depth, part in enumerate(key.split(".")):
        if not isinstance(node, Mapping) or part not in node:
            missing = ".".join(key.split(".")[: depth + 1])
            raise CheckpointError(
                f"Checkpoint {where} lacks the entry '{missing}' (not a complete facefactors "
                "checkpoint?)."
            )
        node = node[part]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(node, kinds) or (isinstance(node, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise CheckpointError(
            f"Checkpoint {where} entry '{key}' must be a {names}, got {type(node).__name__}."
        )
    return node


def positive_int(state: Mapping[str, Any], key: str, where: str | os.PathLike) -> int:
    """An :func:`entry` that must be an integer of at least 1 (a width, size or count)."""
    value = entry(state, key, where, int)
    if value < 1:
        raise CheckpointError(f"Checkpoint {where} entry '{key}' must be at least 1, got {value}.")
    return value


MAX_LISTED = 6


def listing(keys: list[str]) -> str:
    """At most :data:`MAX_LISTED` names, then how many more."""
    shown = ", ".join(keys[:MAX_LISTED])
    more = len(keys) - MAX_LISTED
    return f"{shown} (+{more} more)" if more > 0 else shown


def key_problems(
    own: Mapping[str, torch.Tensor],
    weights: Mapping[str, Any],
    optional: Callable[[str], bool] = lambda key: False,
) -> tuple[list[str], list[str], list[str]]:
    """``(missing, unexpected, mismatched)`` key names of ``weights`` against a model's own.

    Args:
        own: the model's ``state_dict()``.
        weights: the checkpoint's state dict.
        optional: keys of ``own`` that may be absent (not reported as missing).

    Returns:
        Sorted lists; a mismatch reads ``"name (3, 4) vs (4, 4)"`` (or ``"name: not a tensor"``).
    """
    missing = sorted(k for k in own if k not in weights and not optional(k))
    unexpected = sorted(str(k) for k in weights if k not in own)
    mismatched = []
    for k, v in weights.items():
        if k not in own:
            continue
        if not isinstance(v, torch.Tensor):
            mismatched.append(f"{k}: not a tensor")
        elif v.shape != own[k].shape:
            mismatched.append(f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}")
    return missing, unexpected, sorted(mismatched)


def describe_problems(missing: list[str], unexpected: list[str], mismatched: list[str]) -> str:
    """``"missing keys a, b; unexpected keys c; shape mismatches d (1,) vs (2,)"`` (or "")."""
    parts = []
    if missing:
        parts.append(f"missing keys {listing(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {listing(unexpected)}")
    if mismatched:
        parts.append(f"shape mismatches {listing(mismatched)}")
    return "; ".join(parts)


def load_weights(module: nn.Module, weights: Any, where: str | os.PathLike, what: str = "") -> None:
    """``module.load_state_dict(weights)`` (strict), every problem named in one sentence.

    Args:
        module: the network to fill.
        weights: the checkpoint's state dict for it.
        where: the checkpoint, for the message.
        what: the part in words (``"E_exp"``); default the module's class name.

    Raises:
        CheckpointError: not a mapping, or missing, unexpected or mis-shaped keys.
    """
    what = what or type(module).__name__
    if not isinstance(weights, Mapping):
        raise CheckpointError(
            f"Checkpoint {where} holds no state dict for {what} (got {type(weights).__name__})."
        )
    problems = describe_problems(*key_problems(module.state_dict(), weights))
    if problems:
        raise CheckpointError(f"Checkpoint {where} does not fit {what}: {problems}.")
    try:
        module.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError) as exc:  # e.g. a dtype torch cannot copy
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = " ".join(ln for ln in lines if not ln.startswith("Error(s)")).rstrip(".")
        raise CheckpointError(
            f"Checkpoint {where} does not fit {what}: {detail or type(exc).__name__}."
        ) from None
