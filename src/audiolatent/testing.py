"""Helpers to prove the streaming contract, for our tests and for users adding modules.

``check_streaming(module, x, multiple)`` runs ``module`` offline on ``x [B, C, N]`` and again
inside ``module.streaming(B)`` on consecutive chunks of random sizes (each a multiple of
``multiple``), concatenates the streamed outputs along time and returns the max abs
difference to the offline output. The contract is ``<= 1e-5`` in float32.

``assert_codec_streams_like_offline(codec, audio)`` is the same contract for a whole tokenizer:
random chunkings of its encode give the offline codes exactly, and of its decode the offline
audio within 1e-5 (the tests of the shipped codecs use it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from audiolatent.core.streaming import StreamingModule
from audiolatent.tokenizers.long import slice_latent

__all__ = ["random_chunk_sizes", "check_streaming", "stream_chunks", "assert_codec_streams_like_offline"]


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


@torch.no_grad()
def assert_codec_streams_like_offline(codec, speech: torch.Tensor, seeds: int = 3, max_units: int = 5) -> None:
    """Random chunkings of ``codec``'s encode give its offline codes exactly, and of its decode its offline audio
    within 1e-5 (``speech [1, C, N]``, N a multiple of the hop); raises AssertionError naming the chunking."""
    offline = codec.encode(speech)
    for seed in range(seeds):
        sizes = random_chunk_sizes(speech.shape[-1], codec.hop_length, torch.Generator().manual_seed(seed), max_units=max_units)
        with codec.streaming(1):
            parts, start = [], 0
            for size in sizes:
                parts.append(codec.encode(speech[..., start : start + size]).streams[0].values)
                start += size
        if not torch.equal(torch.cat(parts, -1), offline.streams[0].values):
            raise AssertionError(f"streamed codes differ from offline ones for chunks {sizes}")
    reference = codec.decode(offline)
    n_frames = offline.streams[0].num_frames
    for seed in range(seeds):
        sizes = random_chunk_sizes(n_frames, 1, torch.Generator().manual_seed(10 + seed), max_units=max_units)
        with codec.streaming(1):
            outs, start = [], 0
            for size in sizes:
                outs.append(codec.decode(slice_latent(codec, offline, start, start + size)))
                start += size
        error = float((torch.cat(outs, -1) - reference).abs().max())
        if error > 1e-5:
            raise AssertionError(f"streamed audio differs from offline by {error:.2e} for chunks {sizes}")
