"""Device names checked up front: one sentence, before any data or model is built.

``auto`` picks CUDA when it is there, else the CPU; ``cpu``, ``cuda`` and
``cuda:N`` are taken as written, and refused when this machine cannot give them.
"""

from __future__ import annotations

import re

import torch

from facefactors.errors import ConfigError

_NAME = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def check_device(name: object, what: str, allow_auto: bool = True) -> str:
    """Validate a device name; return it unchanged.

    Args:
        name: the value given (``auto``, ``cpu``, ``cuda``, ``cuda:1``).
        what: the option or key in words, for the message (``"Config key 'train.device'"``,
            ``"Option --device"``).
        allow_auto: whether ``auto`` is accepted.

    Raises:
        ConfigError: an unknown name, CUDA asked for on a machine without it, or a
            CUDA index this machine does not have.
    """
    m = _NAME.match(name) if isinstance(name, str) else None
    kinds = "auto, cpu, cuda or cuda:N" if allow_auto else "cpu, cuda or cuda:N"
    if (
        m is None
        or (m.group(2) is not None and m.group(1) != "cuda")
        or (m.group(1) == "auto" and not allow_auto)
    ):
        raise ConfigError(f"{what} must be {kinds}, got {name!r}.")
    if m.group(1) == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{what} asks for {name}, but CUDA is not available on this machine.")
        index = int(m.group(2) or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"{what} asks for {name}, but this machine has {torch.cuda.device_count()} "
                "CUDA device(s)."
            )
    return name  # type: ignore[return-value]
