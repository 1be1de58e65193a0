"""Registry of bottleneck classes, keyed by their ``kind``, and the config builder.

Each bottleneck module registers its class with ``@register_bottleneck``; nothing here knows
the individual kinds, so adding a bottleneck means adding one file (no ``if/elif`` factory).
A config is a mapping with ``kind`` plus the class's constructor arguments::

    build_bottleneck({"kind": "rvq", "dim": 128, "n_codebooks": 8, "codebook_size": 1024})

Unknown kinds, unknown keys and missing required keys raise
:class:`audiolatent.core.errors.ConfigError` with a one-line message that names the bad key
and lists the valid ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, TypeVar

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import Bottleneck

__all__ = ["BOTTLENECKS", "register_bottleneck", "build_bottleneck", "build_framewise", "inner_check_n_q"]

#: the inner quantiser of a bottleneck that changes the time axis (segment, query-pool) by default
DEFAULT_INNER = {"kind": "rvq", "n_codebooks": 4, "codebook_size": 256}

#: kind -> class; filled by the ``@register_bottleneck`` decorator of each bottleneck module
BOTTLENECKS: dict[str, type[Bottleneck]] = {}

B = TypeVar("B", bound=type[Bottleneck])


def register_bottleneck(cls: B) -> B:
    """Class decorator: make ``cls`` buildable from configs under ``cls.kind``."""
    kind = getattr(cls, "kind", "")
    if not kind:
        raise TypeError(f"{cls.__name__} has no 'kind' class attribute to register it under")
    existing = BOTTLENECKS.get(kind)
    if existing is not None and existing is not cls:
        raise TypeError(f"bottleneck kind {kind!r} is already registered by {existing.__qualname__}")
    BOTTLENECKS[kind] = cls
    return cls


def build_bottleneck(config: Mapping[str, Any]) -> Bottleneck:
    """Instantiate the bottleneck ``config["kind"]`` with the remaining keys as arguments."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"bottleneck config must be a mapping with a 'kind' key, got {type(config).__name__}")
    valid_kinds = ", ".join(sorted(BOTTLENECKS))
    if "kind" not in config:
        raise ConfigError(f"bottleneck config has no 'kind' key (valid kinds: {valid_kinds})")
    kind = config["kind"]
    cls = BOTTLENECKS.get(kind)
    if cls is None:
        raise ConfigError(f"unknown bottleneck kind {kind!r} (valid kinds: {valid_kinds})")
    kwargs = {k: v for k, v in config.items() if k != "kind"}
    params = {
        name: p
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    valid_keys = ", ".join(["kind", *params])
    for key in kwargs:
        if key not in params:
            raise ConfigError(f"bottleneck {kind!r}: unknown key {key!r} (valid keys: {valid_keys})")
    for name, p in params.items():
        if p.default is inspect.Parameter.empty and name not in kwargs:
            raise ConfigError(f"bottleneck {kind!r}: missing required key {name!r} (valid keys: {valid_keys})")
    return cls(**kwargs)


def build_framewise(config: Mapping[str, Any] | None, dim: int, owner: str) -> Bottleneck:
    """The inner quantiser of a bottleneck that changes the time axis (``owner``: its kind):
    ``config`` (default :data:`DEFAULT_INNER`) with ``dim`` filled in, which must be frame-wise
    (stride 1 and no streaming state), since it runs on the owner's own tokens."""
    from audiolatent.core.streaming import StreamingModule

    inner = dict(config or DEFAULT_INNER)
    inner.setdefault("dim", dim)
    if inner["dim"] != dim:
        raise ConfigError(f"{owner}: the inner quantizer's dim ({inner['dim']}) must be the bottleneck's ({dim})")
    quantizer = build_bottleneck(inner)
    if quantizer.temporal_stride != 1 or isinstance(quantizer, StreamingModule):
        raise ConfigError(f"{owner}: the inner quantizer must be frame-wise (stride 1, no state); {inner.get('kind')!r} is not")
    return quantizer


def inner_check_n_q(self, n_q: int | None) -> int | None:
    """``check_n_q`` of a bottleneck that wraps ``self.quantizer``: the inner one's, if it has one."""
    check = getattr(self.quantizer, "check_n_q", None)
    return check(n_q) if check is not None else n_q
