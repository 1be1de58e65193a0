"""Configs are dataclasses; YAML keys are their fields (descript-audio-codec style).

``to_dict(cfg)`` and ``from_dict(cls, data)`` convert between a (possibly nested) dataclass and
plain YAML-able data; unknown keys are a :class:`ConfigError` naming the key and the valid
ones. ``apply_overrides(data, ["encoder.channels=32", ...])`` applies command-line overrides
(values parsed as YAML, so ``3``, ``0.5``, ``[2, 4]`` and ``true`` have their natural types).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from audiolatent.core.atomic import atomic_path
from audiolatent.core.errors import ConfigError

__all__ = [
    "to_dict", "from_dict", "apply_overrides", "load_yaml", "save_yaml", "config_hash", "resolve_config",
    "packaged_configs", "PACKAGED_CONFIGS",
]

#: configs shipped inside the package (the repository's top-level ``configs/`` links here)
PACKAGED_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def packaged_configs(folder: str) -> list[str]:
    """Names (file stems) of the YAML configs shipped in ``configs/<folder>/``."""
    return sorted(p.stem for p in (PACKAGED_CONFIGS / folder).glob("*.yaml"))


def resolve_config(source: str | os.PathLike, folder: str) -> Path:
    """A YAML path as given, or the packaged ``configs/<folder>/<source>.yaml`` for a bare name."""
    path = Path(source)
    if path.is_file():
        return path
    candidate = PACKAGED_CONFIGS / folder / f"{source}.yaml"
    if path.suffix not in (".yaml", ".yml") and candidate.is_file():
        return candidate
    raise ConfigError(f"{source}: no such config file, and not a packaged {folder} config ({', '.join(packaged_configs(folder))})")

T = TypeVar("T")


def to_dict(cfg: Any) -> Any:
    """Dataclass (nested) -> dict of plain Python values; tuples become lists."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [to_dict(v) for v in cfg]
    return cfg


def from_dict(cls: type[T], data: dict | None, where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; nested dataclass fields are built recursively."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints.get(name, Any), value, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check_finite(value: Any, where: str) -> None:
    """Refuse NaN and infinities anywhere in a config value (AdamW with lr=nan raises deep inside)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value}")
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_finite(v, f"{where}[{i}]")


def _coerce(tp: Any, value: Any, where: str) -> Any:
    _check_finite(value, where)
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return value if isinstance(value, tp) else from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, where) if len(args) == 1 else value
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        return tuple(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and value is not None and not isinstance(value, tp):
        if tp is float and isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                _check_finite(number, where)
                return number
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of ``data`` with ``key.sub=value`` overrides applied (values parsed as YAML)."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value (e.g. encoder.channels=32)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"override {item!r}: value is not valid YAML") from None
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ConfigError(f"override {item!r}: {p!r} is not a section of the config")
            node = node[p]
        if parts[-1] not in node:
            raise ConfigError(f"override {item!r}: unknown key {parts[-1]!r}; valid here: {sorted(node)}")
        node[parts[-1]] = value
    return out


def load_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({' '.join(str(exc).split())})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (UTF-8) file, so not a YAML config") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def save_yaml(data: dict, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    return Path(path)


def config_hash(data: Any) -> str:
    """16 hex digits of the sha256 of the canonical JSON of ``data`` (a config dict)."""
    blob = json.dumps(to_dict(data), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
