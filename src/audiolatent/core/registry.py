"""Registry of tokenizer kinds and named tokenizers, and ``load_tokenizer``.

* A *kind* is a Tokenizer class (``mel``, ``dmel``, ``codec``, ...), registered with
  ``@register_kind`` in the module that defines it; checkpoints name their kind.
* A *name* is a ready-to-use tokenizer (``mel-16k``, ``dmel-16k``, ``codec-16k-default``,
  external adapters): ``register_tokenizer(name, factory, description)`` with a zero-argument
  factory. Modules register themselves on import; ``load_tokenizer`` imports
  ``audiolatent.tokenizers`` (and any ``audiolatent.tokenizers`` entry-point plugins) first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from audiolatent.core.errors import RegistryError

if TYPE_CHECKING:
    from audiolatent.core.tokenizer import Tokenizer

__all__ = ["register_kind", "register_tokenizer", "load_tokenizer", "list_tokenizers", "get_kind", "TokenizerEntry"]

_KINDS: dict[str, type] = {}
_NAMES: dict[str, "TokenizerEntry"] = {}
_plugins_loaded = False


@dataclass(frozen=True)
class TokenizerEntry:
    name: str
    factory: Callable[..., "Tokenizer"]
    description: str
    family: str  # handcrafted | neural | classical | external
    #: parses the option after ``@`` in ``NAME@OPTION`` into factory keyword arguments (None: no options)
    options: Callable[[str], dict] | None = None
    #: the factory takes ``pretrained`` (external adapters: official weights or random ones)
    takes_pretrained: bool = False


def register_kind(cls: type) -> type:
    """Class decorator: make a Tokenizer class rebuildable from checkpoints by its ``kind``."""
    if not cls.kind:
        raise ValueError(f"{cls.__name__} has no `kind`")
    _KINDS[cls.kind] = cls
    return cls


def register_tokenizer(name: str, factory: Callable[..., "Tokenizer"], description: str, family: str,
                       options: Callable[[str], dict] | None = None, takes_pretrained: bool = False) -> None:
    """Register a named tokenizer built by ``factory()`` (called on every load).

    ``options`` parses ``OPTION`` of ``NAME@OPTION`` into keyword arguments of the factory;
    ``takes_pretrained``: the factory takes ``pretrained=`` (see :func:`load_tokenizer`).
    """
    _NAMES[name] = TokenizerEntry(name, factory, description, family, options, takes_pretrained)


def get_kind(kind: str) -> type:
    _load_plugins()
    if kind not in _KINDS:
        raise RegistryError(f"unknown tokenizer kind {kind!r}; known kinds: {sorted(_KINDS)}")
    return _KINDS[kind]


def list_tokenizers() -> list[TokenizerEntry]:
    """All registered named tokenizers, sorted by family then name."""
    _load_plugins()
    return sorted(_NAMES.values(), key=lambda e: (e.family, e.name))


def load_tokenizer(name_or_path: str | os.PathLike, device: str | None = None, pretrained: bool = True) -> "Tokenizer":
    """Build a tokenizer from a registered name or a checkpoint directory, in eval mode.

    ``NAME@OPTION`` passes an option to names that take one (adapters: ``encodec-24k@6kbps``,
    ``dac-16k@4q``). ``pretrained=False`` builds an external adapter with random weights (it
    is then named ``NAME (random weights)``); our own tokenizers ignore it.
    """
    from audiolatent.core.checkpoint import load_checkpoint

    _load_plugins()
    key = str(name_or_path)
    path = Path(key)
    base, _, option = key.partition("@")
    if base in _NAMES and (key == base or (option and _NAMES[base].options is not None and not path.exists())):
        entry = _NAMES[base]
        kwargs = entry.options(option) if option else {}
        if entry.takes_pretrained:
            kwargs["pretrained"] = pretrained
        tok = entry.factory(**kwargs)
        if not getattr(tok, "names_itself", False):
            tok.name = key
    elif path.exists():
        tok = load_checkpoint(path)
    else:
        names = ", ".join(sorted(_NAMES))
        raise RegistryError(f"unknown tokenizer {key!r}: not a checkpoint directory and not a registered name ({names})")
    tok.eval()
    if device is not None:
        from audiolatent.core.device import resolve_device

        tok.to(resolve_device(device))
    return tok


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import importlib
    from importlib.metadata import entry_points

    importlib.import_module("audiolatent.tokenizers")
    for ep in entry_points(group="audiolatent.tokenizers"):
        ep.load()
