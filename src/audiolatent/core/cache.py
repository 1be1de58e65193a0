"""Memoise tensors derived from parameters at inference (codebook norms and decode tables of the
quantisers, folded weight-normed conv weights).

Inference calls (eval mode, gradients disabled) reuse a derived tensor while the tensors it
was computed from are unchanged: same storage, same version counter (bumped by every in-place
write: optimiser steps, ``load_state_dict``, codebook updates) and same dtype. Training-mode
or grad-enabled calls always recompute, so gradients and fresh values are never stale.
Edits through ``tensor.data`` bypass the version counter; call :meth:`TableCache.clear`
after such edits.

While a graph is being recorded (``torch.jit.trace``, ``torch.export``, ``torch.compile``:
:func:`is_tracing`) nothing is memoised or reused: the derived tensor is computed from the
parameters inside the graph, where a memo would either bake a copy of it into the graph as a
constant or keep a tracer's placeholder tensor for the eager calls that follow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

__all__ = ["TableCache", "is_tracing"]


def is_tracing() -> bool:
    """True while ``torch.jit.trace``, ``torch.export`` or ``torch.compile`` records a graph."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


class TableCache:
    """A small name -> (key, value) memo owned by one module."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple, object]] = {}

    def clear(self) -> None:
        self._entries.clear()

    def pop(self, name: str) -> None:
        """Forget the entry ``name`` (if any)."""
        self._entries.pop(name, None)

    # A copy or a pickle of the owning module starts empty: the entries are derived data keyed by
    # the storage addresses of the original's tensors, and some (FBGEMM's packed matrices) are
    # handles that cannot be copied.
    def __deepcopy__(self, memo: dict) -> "TableCache":
        return type(self)()

    def __getstate__(self) -> dict:
        return {"_entries": {}}

    def get(self, owner: nn.Module, name: str, sources: Iterable[torch.Tensor], compute: Callable[[], object]):
        """``compute()``, memoised under ``name`` while ``sources`` are unchanged (eager inference only)."""
        if owner.training or torch.is_grad_enabled() or is_tracing():
            return compute()
        try:
            key = tuple((t.data_ptr(), t._version, t.dtype) for t in sources)
        except RuntimeError:  # inference-mode tensors have no version counter: do not memoise
            return compute()
        hit = self._entries.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = compute()
        self._entries[name] = (key, value)
        return value
