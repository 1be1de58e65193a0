"""Registry of tokenizer kinds and named tokenizers, and ``load_tokenizer``.

* A *kind* is a Tokenizer class (``mel``, ``dmel``, ``codec``, ...), registered with
  ``@register_kind`` in the module that defines it; checkpoints name their kind.
* A *name* is a ready-to-use tokenizer (``mel-16k``, ``dmel-16k``, ``codec-16k-default``,
  external adapters): ``register_tokenizer(name, factory, description)`` with a zero-argument
  factory. Modules register themselves on import; ``load_tokenizer`` imports
  ``audiolatent.tokenizers`` (and any ``audiolatent.tokenizers`` entry-point plugins) first.

Registering means importing torch (about 2 s). The command line lists and describes the built-in
names without it: :func:`list_names`, :func:`builtin_facts`, :func:`builtin_names` and
:func:`adapter_status` read :mod:`audiolatent.core.catalogue`, a static table generated from this
registry by ``scripts/make_catalogue.py`` (``tests/cli/test_fast_list.py`` fails while it is stale).
Plugins, checkpoints and names registered in this process take the torch path.
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

__all__ = ["register_kind", "register_tokenizer", "load_tokenizer", "list_tokenizers", "get_kind", "TokenizerEntry",
           "list_names", "builtin_facts", "builtin_names", "adapter_status"]

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


# --- the built-in names without torch (the static catalogue) -------------------------------------
def list_names() -> list[tuple[str, str, str]]:
    """``(name, family, description)`` of every named tokenizer, sorted by family then name.

    Same rows as :func:`list_tokenizers`; read from the catalogue (no torch import) unless an
    entry-point plugin is installed or this process registered a name the catalogue lacks.
    """
    from audiolatent.core import catalogue

    known = catalogue.BUILTINS.keys() | catalogue.ADAPTERS.keys()
    if _plugins_loaded or not _NAMES.keys() <= known or _has_plugins():
        return [(e.name, e.family, e.description) for e in list_tokenizers()]
    rows = [(name, e["family"], e["description"]) for name, e in catalogue.BUILTINS.items()]
    rows += [(name, "external", e["description"]) for name, e in catalogue.ADAPTERS.items()]
    return sorted(rows, key=lambda row: (row[1], row[0]))


def builtin_facts(name: str) -> dict | None:
    """What ``load_tokenizer(name).describe()`` returns, for a built-in non-adapter name, without
    building it; None when it must be built: not such a name, or a package its build needs is missing
    (building it then says which to install)."""
    import importlib.util

    from audiolatent.core import catalogue

    entry = catalogue.BUILTINS.get(name)
    if entry is None or any(importlib.util.find_spec(package) is None for package in entry["requires"]):
        return None
    return entry["facts"]


def builtin_names() -> dict[str, list[str]]:
    """Built-in names by family (``neural``, ``handcrafted``, ``classical``, ``external``), for help texts."""
    from audiolatent.core import catalogue

    by_family: dict[str, list[str]] = {"neural": [], "handcrafted": [], "classical": [], "external": []}
    for name, entry in catalogue.BUILTINS.items():
        by_family.setdefault(entry["family"], []).append(name)
    by_family["external"] = sorted(catalogue.ADAPTERS)
    return {family: sorted(names) for family, names in by_family.items() if names}


def adapter_status(name: str) -> str:
    """``audiolatent list``'s status of an external adapter, without importing torch or the model library.

    The same answer as :func:`audiolatent.tokenizers.adapters.base.adapter_status` (a test compares
    them), from the catalogue; the command line asks that function for a name the catalogue lacks
    (an adapter of a plugin).
    """
    from audiolatent.core import catalogue

    spec = catalogue.ADAPTERS.get(name)
    if spec is None:
        return "status unknown (not in the catalogue)"
    return hub_status(spec["package"], spec["hub_id"], spec["revision"], spec["config_file"], catalogue.ADAPTER_EXTRA)


def hub_status(package: str, hub_id: str, revision: str, config_file: str, extra: str) -> str:
    """``needs pip install ...`` / ``weights cached`` / ``weights not cached (ID)``: whether the
    model library is installed and the checkpoint's config is in the local hub cache (no import of
    the library, no network)."""
    import importlib.util

    if importlib.util.find_spec(package) is None:
        return f"needs pip install 'audiolatent[{extra}]'"
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(hub_id, config_file, revision=revision)
    except Exception:  # noqa: BLE001 - a status line must not fail
        found = None
    return "weights cached" if isinstance(found, str) else f"weights not cached ({hub_id})"


def _has_plugins() -> bool:
    from importlib.metadata import entry_points

    return bool(entry_points(group="audiolatent.tokenizers"))
