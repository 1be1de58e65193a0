"""Streaming as explicit, typed state (the moshi pattern).

A :class:`StreamingModule` works offline by default: every call sees a whole signal and keeps
nothing. Inside ``with module.streaming(batch_size):`` each call receives the *next* chunk of
the same signals, and the module carries what it needs between calls (left context of a
causal convolution, the overlap-add tail of a transposed convolution, a KV cache, an LSTM
state) in a small state object. Entering streaming on a parent puts every
``StreamingModule`` below it into streaming mode too, and leaving it clears every state.

Subclasses implement ``_init_streaming_state(batch_size)`` returning their state object
(usually a dataclass) and read it as ``self._streaming_state`` in ``forward``. Modules with no
state of their own (containers) need not override anything.

The contract (DESIGN.md, "Streaming contract"): concatenating the outputs of consecutive
streaming calls equals the offline output on the concatenated input, to 1e-5 in float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from audiolatent.core.errors import StreamingError

__all__ = ["StreamingModule", "streaming_modules"]


class StreamingModule(nn.Module):
    """An ``nn.Module`` that can run offline or on consecutive chunks with carried state."""

    def __init__(self) -> None:
        super().__init__()
        self._streaming_state: Any = None
        self._streaming_batch_size: int | None = None

    # --- to override -------------------------------------------------------------------
    def _init_streaming_state(self, batch_size: int) -> Any:
        """Return the fresh state of this module for ``batch_size`` signals (None: stateless)."""
        return None

    # --- public API ----------------------------------------------------------------------
    @property
    def is_streaming(self) -> bool:
        return self._streaming_batch_size is not None

    @contextlib.contextmanager
    def streaming(self, batch_size: int = 1) -> Iterator["StreamingModule"]:
        """Run the calls inside the block as consecutive chunks of ``batch_size`` signals."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise StreamingError(f"streaming batch_size must be a positive int, got {batch_size!r}")
        mods = list(streaming_modules(self))
        if any(m.is_streaming for m in mods):
            raise StreamingError(f"{type(self).__name__} is already in streaming mode; nested streaming() is not allowed")
        try:
            for m in mods:
                m._streaming_batch_size = batch_size
                m._streaming_state = m._init_streaming_state(batch_size)
            yield self
        finally:
            for m in mods:
                m._streaming_state = None
                m._streaming_batch_size = None

    def reset_streaming(self) -> None:
        """Start new signals without leaving streaming mode (all states back to fresh)."""
        for m in streaming_modules(self):
            if m.is_streaming:
                m._streaming_state = m._init_streaming_state(m._streaming_batch_size)

    def _check_streaming_batch(self, x: torch.Tensor) -> None:
        if self.is_streaming and x.shape[0] != self._streaming_batch_size:
            raise StreamingError(
                f"{type(self).__name__}: streaming was entered for batch size {self._streaming_batch_size}, "
                f"got a chunk of batch size {x.shape[0]}"
            )


def streaming_modules(module: nn.Module) -> Iterator[StreamingModule]:
    """Every StreamingModule in ``module``'s tree, the module itself included."""
    for m in module.modules():
        if isinstance(m, StreamingModule):
            yield m
