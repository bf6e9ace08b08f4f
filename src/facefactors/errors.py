"""User-facing errors.

Anything a user can cause (a missing file, a malformed label line, a corrupt
image, an unknown class, a bad config key) raises :class:`FaceFactorsError`
with one sentence that names the file, line or key. The CLI prints that
sentence and exits with status 2, without a traceback.
"""

from __future__ import annotations


class FaceFactorsError(Exception):
    """An error caused by user input; its message is one complete sentence."""


class ConfigError(FaceFactorsError):
    """A bad config file, preset name or ``--set`` override."""


class DataError(FaceFactorsError):
    """A missing, corrupt or malformed data file."""


class CheckpointError(FaceFactorsError):
    """A checkpoint that is missing, truncated or does not match the model."""


class NonFiniteLossError(FaceFactorsError):
    """A loss became NaN or inf during training."""
