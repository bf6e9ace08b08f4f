"""Typed dataclass configs: YAML presets, ``--set a.b=c`` overrides, strict keys.

A config is a (possibly nested) dataclass. It is built from a plain dict with
:func:`from_dict`, which rejects unknown keys by name, and turned back into a
plain dict with :func:`to_dict` so it can travel inside a checkpoint and be
written as ``config.yaml``.

Presets are YAML files in ``facefactors/configs/`` (``configs/`` at the repo
root links there); :func:`load_config` accepts a preset name or a YAML path.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from facefactors.errors import ConfigError
from facefactors.textfile import read_text

T = TypeVar("T")

PRESET_DIR = Path(__file__).resolve().parent / "configs"


def preset_names() -> list[str]:
    """Names of the YAML presets that ship with the package."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, naming the file in any error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.")
    try:
        data = yaml.safe_load(read_text(path, "Config file", ConfigError))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"Config file {path} is not valid YAML{where}.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of keys to values.")
    return data


def resolve_preset(name_or_path: str | Path) -> Path:
    """Map a preset name (``ipd_synth_quick``) or a YAML path to a file path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise ConfigError(f"Config file {p} does not exist.")
        return p
    cand = PRESET_DIR / f"{name_or_path}.yaml"
    if cand.is_file():
        return cand
    raise ConfigError(
        f"Unknown preset '{name_or_path}'; available presets: {', '.join(preset_names()) or 'none'}."
    )


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _strip_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


# YAML 1.1 (PyYAML) reads ``1e-3`` and ``5E4`` as text: it wants a dot (``1.0e-3``).
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _number(value: Any, tp: type, key: str) -> int | float:
    """An int or float config value: numbers in scientific notation are numbers, NaN and
    inf are refused (they would fail much later, deep inside torch)."""
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        value = (
            float(value) if tp is float or not value.strip().lstrip("+-").isdigit() else int(value)
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an integer" if tp is int else "a number"
        raise ConfigError(f"Config key '{key}' must be {kind}, got {value!r}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"Config key '{key}' must be a finite number, got {value}.")
    if tp is int:
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"Config key '{key}' must be an integer, got {value!r}.")
        return int(value)
    return float(value)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert one leaf value against its annotated type."""
    if value is None:
        if tp is Any or type(None) in typing.get_args(tp):
            return None
        raise ConfigError(f"Config key '{key}' cannot be null (empty).")
    tp = _strip_optional(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"Config key '{key}' must be a mapping, got {value!r}.")
        return from_dict(tp, value, prefix=f"{key}.")
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"Config key '{key}' must be one of {', '.join(map(str, allowed))}, got {value!r}."
            )
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"Config key '{key}' must be a list, got {value!r}.")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"Config key '{key}' must be true or false, got {value!r}.")
        return value
    if tp in (int, float):
        return _number(value, tp, key)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"Config key '{key}' must be a string, got {value!r}.")
        return value
    return value


def from_dict(cls: type[T], data: dict, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys raise :class:`ConfigError`."""
    types_ = _field_types(cls)
    unknown = [k for k in data if k not in types_]
    if unknown:
        raise ConfigError(
            f"Unknown config key '{prefix}{unknown[0]}'; valid keys here: {', '.join(types_)}."
        )
    kwargs = {k: _coerce(v, types_[k], f"{prefix}{k}") for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    """Plain nested dict of a dataclass config (tuples become lists, for YAML)."""

    def conv(x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return [conv(v) for v in x]
        if isinstance(x, dict):
            return {k: conv(v) for k, v in x.items()}
        return x

    return conv(dataclasses.asdict(cfg))


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b=c`` into (["a", "b"], value); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"Override '{text}' must look like key=value (e.g. train.epochs=3).")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"Override '{text}' has an empty key.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Return a copy of ``data`` with ``a.b=c`` overrides applied (nested dicts created)."""
    out = yaml.safe_load(yaml.safe_dump(data)) if data else {}
    for text in overrides or []:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"Override '{text}': '{part}' is not a section.")
            node = child
        node[path[-1]] = value
    return out


def load_config(
    cls: type[T], preset: str | Path | None = None, overrides: list[str] | None = None
) -> T:
    """Build config ``cls`` from an optional preset/YAML file plus ``--set`` overrides."""
    data = read_yaml(resolve_preset(preset)) if preset is not None else {}
    return from_dict(cls, apply_overrides(data, overrides))


def save_config_yaml(cfg: Any, path: str | Path) -> None:
    """Write the config as ``config.yaml`` atomically."""
    from facefactors.checkpoint import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
