"""Encode and decode long audio in chunks with bounded memory, for any Tokenizer.

``encode_long(tok, audio, chunk_seconds=10)`` and ``decode_long(tok, latent, chunk_seconds=10)``
return what ``tok.encode(audio)`` and ``tok.decode(latent)`` would, without running the model
on the whole signal at once (activations of a conv codec on an hour of audio do not fit in
memory; the latent and the output audio do).

* **Streamable tokenizers** (``tok.streamable``: causal ones, and those that stream with a
  lookahead, like the mel vocoders) run inside ``tok.streaming(B)`` on consecutive chunks of
  whole frames; the last chunk is zero-padded to a whole frame, as offline ``encode`` pads it,
  and the frames an encoder with lookahead still holds come from ``tok.flush_encode()``. By the
  streaming contract the result equals a single offline pass to 1e-5 (codes equal).
* **Non-causal tokenizers** with a finite ``lookahead`` run offline on overlapping windows:
  each chunk of frames is encoded (decoded) with ``context`` extra samples (frames) on each
  side, rounded up to whole frames so the frame grid does not move, and only the chunk's own
  frames (samples) are kept. When ``context`` covers the receptive field on both sides the
  kept part sees exactly the input a single pass sees, and results agree up to float rounding
  (our tests: 1e-4 on a continuous SEANet codec). The default context, ``lookahead +
  hop_length`` samples, covers convolutional SEANet codecs, whose "same"-padded convolutions
  look as far back as ahead; tokenizers with longer memory (an LSTM or attention in a
  non-causal model) need a larger ``context_seconds`` and then match only approximately.
  Quantisers can flip a code when an input moves by rounding noise; such flips are rare and
  local.
* Tokenizers that need the whole signal (``lookahead is None``, e.g. Griffin-Lim) raise
  :class:`~audiolatent.core.errors.StreamingError`.

``encode_any`` / ``decode_any`` are what the CLI and the bench call: one offline pass up to
:data:`LONG_SECONDS`, the chunked path beyond it (where the tokenizer allows), so memory stays
flat as files grow (``benchmarks/long_audio_memory.py`` measures peak RSS at 1, 10, 60 min).

Shapes: ``audio [B, C, N]`` at ``tok.sample_rate``; chunk sizes in seconds are rounded to whole
frames of ``tok.hop_length`` samples (at least one).
"""

from __future__ import annotations

import math

import torch

from audiolatent.core.errors import StreamingError
from audiolatent.core.latent import Latent, Stream
from audiolatent.core.tokenizer import Tokenizer

__all__ = ["encode_long", "decode_long", "encode_any", "decode_any", "default_context", "slice_latent", "LONG_SECONDS"]

#: ``encode_any`` / ``decode_any`` chunk signals longer than this (seconds)
LONG_SECONDS = 60.0


def _chunk_frames(tok: Tokenizer, chunk_seconds: float) -> int:
    if not chunk_seconds > 0:
        raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
    return max(1, round(chunk_seconds * tok.frame_rate))


def default_context(tok: Tokenizer) -> int:
    """Context in samples on each side of a chunk for non-causal tokenizers: ``lookahead + hop_length``."""
    if tok.lookahead is None:
        raise StreamingError(f"{tok.name}: needs the whole signal (lookahead None); it cannot be chunked")
    return tok.lookahead + tok.hop_length


def _context_frames(tok: Tokenizer, context_seconds: float | None) -> int:
    samples = default_context(tok) if context_seconds is None else context_seconds * tok.sample_rate
    return math.ceil(samples / tok.hop_length)


def _ratio(tok: Tokenizer, stream: Stream) -> int:
    """Frames of ``stream`` per tokenizer frame (1, or e.g. 4, 2, 1 for a multi-scale latent)."""
    ratio = stream.frame_rate / tok.frame_rate
    if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
        raise StreamingError(f"{tok.name}: stream {stream.name!r} at {stream.frame_rate} Hz is not a whole multiple of {tok.frame_rate} Hz")
    return round(ratio)


def slice_latent(tok: Tokenizer, latent: Latent, start: int, stop: int) -> Latent:
    """Tokenizer frames ``[start, stop)`` of ``latent`` as a latent of its own (no lengths)."""
    streams = []
    for s in latent.streams:
        r = _ratio(tok, s)
        streams.append(Stream(s.values[..., start * r : stop * r], s.frame_rate, s.codebook_sizes, s.name))
    return Latent(streams, latent.sample_rate, latent.tokenizer, latent.config_hash)


def _variable_rate(latent: Latent) -> bool:
    return any(s.durations is not None for s in latent.streams)


def _assemble_variable_rate(tok: Tokenizer, parts: list[Latent], num_samples: torch.Tensor) -> Latent:
    """Concatenate variable-rate latents per item (each part holds its own count of segments)."""
    streams = []
    batch = parts[0].streams[0].values.shape[0]
    for i, first in enumerate(parts[0].streams):
        rows, seconds, counts = [], [], []
        for b in range(batch):
            pieces = [(p.streams[i].values[b, :, : int(p.streams[i].lengths[b])],
                       p.streams[i].durations[b, : int(p.streams[i].lengths[b])]) for p in parts]
            rows.append(torch.cat([v for v, _ in pieces], dim=-1))
            seconds.append(torch.cat([d for _, d in pieces]))
            counts.append(rows[-1].shape[-1])
        width = max(counts)
        values = torch.stack([torch.nn.functional.pad(r, (0, width - r.shape[-1])) for r in rows])
        durations = torch.stack([torch.nn.functional.pad(d, (0, width - d.shape[-1])) for d in seconds])
        streams.append(Stream(values, first.frame_rate, first.codebook_sizes, first.name, torch.tensor(counts), durations))
    return Latent(streams, tok.sample_rate, tok.name, tok.config_hash, num_samples)


def _assemble(tok: Tokenizer, parts: list[Latent], num_samples: torch.Tensor) -> Latent:
    """Concatenate latents in time; lengths and num_samples as offline ``encode`` sets them."""
    if _variable_rate(parts[0]):
        return _assemble_variable_rate(tok, parts, num_samples)
    streams = []
    for i, first in enumerate(parts[0].streams):
        values = torch.cat([p.streams[i].values for p in parts], dim=-1)
        stream_hop = tok.sample_rate / first.frame_rate
        lengths = torch.ceil(num_samples.double() / stream_hop).long().clamp(max=values.shape[-1])
        streams.append(Stream(values, first.frame_rate, first.codebook_sizes, first.name, lengths))
    return Latent(streams, tok.sample_rate, tok.name, tok.config_hash, num_samples)


@torch.no_grad()
def encode_long(
    tok: Tokenizer,
    audio: torch.Tensor,
    chunk_seconds: float = 10.0,
    context_seconds: float | None = None,
    **encode_kwargs,
) -> Latent:
    """``tok.encode(audio)`` computed chunk by chunk (see the module docstring).

    Args:
        tok: any tokenizer with a finite lookahead.
        audio: ``[B, C, N]`` at ``tok.sample_rate``.
        chunk_seconds: audio per model call (rounded to whole frames).
        context_seconds: non-causal only: context on each side (default :func:`default_context`).
        encode_kwargs: passed to ``tok.encode`` (e.g. ``n_q`` for a codec).
    """
    n = audio.shape[-1]
    hop, frames = tok.hop_length, tok.num_frames(audio.shape[-1])
    step = _chunk_frames(tok, chunk_seconds)

    def frames_of(f0: int, f1: int) -> torch.Tensor:
        """Samples of frames [f0, f1), zero-padded past the end (no padded copy of the whole signal)."""
        piece = audio[..., f0 * hop : min(n, f1 * hop)]
        short = (f1 - f0) * hop - piece.shape[-1]
        return torch.nn.functional.pad(piece, (0, short)) if short else piece

    parts: list[Latent] = []
    if tok.streamable:
        with tok.streaming(audio.shape[0]):
            for f0 in range(0, frames, step):
                parts.append(tok.encode(frames_of(f0, min(frames, f0 + step)), **encode_kwargs))
            tail = tok.flush_encode()
            if tail is not None:
                parts.append(tail)
    else:
        ctx = _context_frames(tok, context_seconds)
        for f0 in range(0, frames, step):
            f1 = min(frames, f0 + step)
            w0, w1 = max(0, f0 - ctx), min(frames, f1 + ctx)
            window = tok.encode(frames_of(w0, w1), **encode_kwargs)
            parts.append(slice_latent(tok, window, f0 - w0, f1 - w0))
    return _assemble(tok, parts, torch.full((audio.shape[0],), n, dtype=torch.long))


@torch.no_grad()
def decode_long(tok: Tokenizer, latent: Latent, chunk_seconds: float = 10.0, context_seconds: float | None = None) -> torch.Tensor:
    """``tok.decode(latent)`` computed chunk by chunk (see the module docstring); ``[B, C, N]``."""
    if _variable_rate(latent):
        return _decode_variable_rate(tok, latent, _chunk_frames(tok, chunk_seconds))
    hop = tok.hop_length
    frames = latent.streams[0].num_frames // _ratio(tok, latent.streams[0])
    step = _chunk_frames(tok, chunk_seconds)
    audio = None  # filled chunk by chunk: one buffer, not a list of chunks and their concatenation

    def put(f0: int, chunk: torch.Tensor) -> None:
        nonlocal audio
        if audio is None:
            audio = torch.empty(*chunk.shape[:-1], frames * hop, dtype=chunk.dtype, device=chunk.device)
        audio[..., f0 * hop : f0 * hop + chunk.shape[-1]] = chunk

    if tok.streamable:
        with tok.streaming(latent.batch_size):
            for f0 in range(0, frames, step):
                put(f0, tok.decode(slice_latent(tok, latent, f0, min(frames, f0 + step))))
    else:
        ctx = _context_frames(tok, context_seconds)
        for f0 in range(0, frames, step):
            f1 = min(frames, f0 + step)
            w0, w1 = max(0, f0 - ctx), min(frames, f1 + ctx)
            window = tok.decode(slice_latent(tok, latent, w0, w1))
            put(f0, window[..., (f0 - w0) * hop : (f1 - w0) * hop])
    if latent.num_samples is not None:
        audio = audio[..., : int(latent.num_samples.max())]
    return audio


def _decode_variable_rate(tok: Tokenizer, latent: Latent, step: int) -> torch.Tensor:
    """A variable-rate latent streamed ``step`` segments at a time (each chunk's audio is as long as
    its segments' durations); a batch of several items, whose segments fall differently, whole."""
    if latent.batch_size != 1 or not tok.streamable:
        return tok.decode(latent)
    n = int(latent.streams[0].lengths[0]) if latent.streams[0].lengths is not None else latent.streams[0].num_frames
    pieces = []
    with tok.streaming(1):
        for k0 in range(0, n, step):
            k1 = min(n, k0 + step)
            chunk = [Stream(s.values[..., k0:k1], s.frame_rate, s.codebook_sizes, s.name, torch.tensor([k1 - k0]),
                            s.durations[..., k0:k1]) for s in latent.streams]
            pieces.append(tok.decode(Latent(chunk, latent.sample_rate, latent.tokenizer, latent.config_hash)))
    audio = torch.cat(pieces, dim=-1)
    return audio[..., : int(latent.num_samples.max())] if latent.num_samples is not None else audio


def _chunkable(tok: Tokenizer, flag: str) -> bool:
    """Whether long signals can be chunked: not when the tokenizer needs the whole signal; a streamable
    one is chunked through ``streaming()``, so only when that direction streams (``can_stream`` /
    ``can_stream_decode``, True unless a tokenizer says otherwise, e.g. an adapter)."""
    return tok.lookahead is not None and (not tok.streamable or getattr(tok, flag, True))


def encode_any(tok: Tokenizer, audio: torch.Tensor, long_seconds: float = LONG_SECONDS, chunk_seconds: float = 30.0) -> Latent:
    """``tok.encode(audio)``, chunked with :func:`encode_long` beyond ``long_seconds`` when the tokenizer can be chunked."""
    if audio.shape[-1] <= long_seconds * tok.sample_rate or not _chunkable(tok, "can_stream"):
        return tok.encode(audio)
    return encode_long(tok, audio, chunk_seconds=chunk_seconds)


def decode_any(tok: Tokenizer, latent: Latent, long_seconds: float = LONG_SECONDS, chunk_seconds: float = 30.0) -> torch.Tensor:
    """``tok.decode(latent)``, chunked with :func:`decode_long` beyond ``long_seconds`` when the tokenizer can be chunked."""
    seconds = latent.streams[0].num_frames / latent.streams[0].frame_rate
    if seconds <= long_seconds or not _chunkable(tok, "can_stream_decode"):
        return tok.decode(latent)
    tok.check_latent(latent)  # before any chunk: a bad latent is one error, not a half-decoded file
    return decode_long(tok, latent, chunk_seconds=chunk_seconds)
