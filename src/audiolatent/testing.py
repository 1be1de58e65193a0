"""Helpers to prove the streaming contract, for our tests and for users adding modules.

``check_streaming(module, x, multiple)`` runs ``module`` offline on ``x [B, C, N]`` and again
inside ``module.streaming(B)`` on consecutive chunks of random sizes (each a multiple of
``multiple``), concatenates the streamed outputs along time and returns the max abs
difference to the offline output. The contract is ``<= 1e-5`` in float32.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from audiolatent.core.streaming import StreamingModule

__all__ = ["random_chunk_sizes", "check_streaming", "stream_chunks"]


def random_chunk_sizes(total: int, multiple: int, generator: torch.Generator, max_units: int = 8) -> list[int]:
    """Random chunk sizes, each a positive multiple of ``multiple``, summing to ``total``."""
    if total % multiple:
        raise ValueError(f"total {total} is not a multiple of {multiple}")
    units = total // multiple
    sizes = []
    while units > 0:
        u = int(torch.randint(1, max_units + 1, (1,), generator=generator))
        u = min(u, units)
        sizes.append(u * multiple)
        units -= u
    return sizes


def stream_chunks(call: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Apply ``call`` to consecutive time chunks of ``x`` and concatenate the outputs in time."""
    outs, start = [], 0
    for size in sizes:
        outs.append(call(x[..., start : start + size]))
        start += size
    return torch.cat(outs, dim=-1)


@torch.no_grad()
def check_streaming(
    module: StreamingModule,
    x: torch.Tensor,
    multiple: int = 1,
    seed: int = 0,
    call: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> float:
    """Max |offline - streamed| for random chunkings of ``x`` (see module docstring)."""
    fn = call if call is not None else module
    offline = fn(x)
    gen = torch.Generator().manual_seed(seed)
    sizes = random_chunk_sizes(x.shape[-1], multiple, gen)
    with module.streaming(x.shape[0]):
        streamed = stream_chunks(fn, x, sizes)
    if streamed.shape != offline.shape:
        raise AssertionError(f"streamed shape {tuple(streamed.shape)} != offline shape {tuple(offline.shape)} (chunks {sizes})")
    return float((streamed - offline).abs().max())
