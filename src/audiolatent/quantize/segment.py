"""Causal segmenting bottleneck: one token per run of similar frames, with its duration.

Every fixed-rate bottleneck spends as many tokens on a pause as on a consonant cluster. This one
(kind ``segment``) groups consecutive encoder frames into *segments*, causally, and emits one
quantised token and one duration per segment. The latent is variable-rate; its latency stays
bounded because a segment never grows past ``max_length`` frames.

Boundaries (causal)
-------------------
Frame ``t`` starts a new segment when its *boundary probability* ``p_t`` reaches
``threshold``, or when the open segment already holds ``max_length`` frames (``p_0 = 1``: the
first frame starts one). ``p_t`` compares a frame with the one before it, as the routing module of
H-Net (Hwang, Wang & Gu 2025, "Dynamic Chunking for End-to-End Hierarchical Sequence Modeling"):
it reads frames ``<= t`` only. With the cosine distance of the router's query and key

    d_t = (1 - cos(W_q z_t + b_q, W_k z_{t-1} + b_k)) / 2

* ``boundary: learned`` (default): ``p_t = sigmoid((d_t - theta) / tau)``, with ``W_q, W_k``
  (initialised to the identity), ``b_q, b_k``, ``theta`` and ``log tau`` trained. They get
  gradients two ways, as in H-Net: a straight-through *confidence* ``c_t = p_t`` on a frame that
  starts a segment and ``1 - p_t`` on one that continues it, by which each decoder input frame is
  multiplied (``1 + c - stop_gradient(c)``: 1 forward, the gradient of ``c`` backward), and the
  *rate* loss below, which steers the boundary rate. **Calibration**: the first training batch
  sets the biases to minus the batch's mean frame (an encoder's frames share a large common
  offset, against which consecutive frames all look alike: on the shipped default codec's
  encoder, ``d_t`` of the raw frames is 0.010 in silence and 0.040 in speech; centred, 0.033 and
  0.153), ``theta`` to the ``1 - 1 / target_ratio`` quantile of that batch's ``d_t`` (so the
  boundary rate starts at the target, cut where frames change most) and ``tau`` to half their
  standard deviation; the buffer ``calibrated`` records it (saved with the weights, averaged over
  ranks in distributed training). Without calibration (a router never trained) ``theta = 0.5``
  and ``tau = 0.1``.
* ``boundary: similarity``: ``p_t = d_t`` with ``W_q = W_k = I``, no bias and no parameters: a
  fixed rule on the encoder's own features (the rate then depends on the encoder and the
  threshold; no rate loss).

The rate loss (``losses["rate"]``, unweighted; the trainer's ``losses.rate`` weights it) is
H-Net's ratio loss for a target of ``target_ratio`` = N frames per segment::

    rate = N / (N - 1) * ((N - 1) * F * G + (1 - F) * (1 - G))

with ``F`` the fraction of frames that start a segment (hard decisions) and ``G`` the mean
``p_t``; it is 1 when ``F = G = 1 / N`` and larger when the boundaries drift from that rate.

Tokens
------
A segment's token is the mean of its encoder frames, quantised by the inner ``quantizer`` (any
frame-wise bottleneck config, e.g. ``{kind: rvq, n_codebooks: 4, codebook_size: 256}``) at the
segment rate; padded segments never reach it (the valid ones are packed first), so codebook
statistics and k-means initialisation see real segments only.

Streams: the inner quantiser's (``codes long [B, n_q, K]`` for an RVQ), then ``durations``
(``long [B, 1, K]``, the duration in frames minus one, codebook size ``max_length``), K segments
(padded; the codec records each item's count in the streams' lengths and the durations in
seconds). A language model therefore sees the duration as one more codebook of the token.

Decoding expands each token over its duration and adds two learned embeddings, the frame's
position within its segment and the segment's length, so the decoder knows where inside a
segment a frame falls; the result is the decoder's input at the encoder frame rate.

Streaming and latency
---------------------
The open segment (the running sum and count of its frames) and the previous frame's key are the
streaming state. A segment is emitted as soon as it is known to be complete: when the next
frame starts a new one, or at once when it reaches ``max_length`` frames. At the end of a signal
:meth:`flush` emits the open segment. Streamed segments followed by the flushed one equal the
offline segments exactly. The audio of a segment's first frame can be decoded only once the
segment closes, at most ``max_length`` frames after that frame began, so the bottleneck adds
``lookahead_frames = max_length - 1`` frames of latency to the codec's (declared by
:attr:`NeuralCodec.lookahead <audiolatent.tokenizers.codec.NeuralCodec.lookahead>`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.core.streaming import StreamingModule
from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec
from audiolatent.quantize.functional import is_distributed
from audiolatent.quantize.registry import build_framewise, inner_check_n_q, register_bottleneck

__all__ = ["CausalSegmenter", "rate_loss"]

BOUNDARIES = ("learned", "similarity")


def rate_loss(starts: torch.Tensor, probabilities: torch.Tensor, target_ratio: float,
              valid: torch.Tensor | None = None) -> torch.Tensor:
    """H-Net's ratio loss (see the module docstring) of hard ``starts`` and ``probabilities``
    ``[B, T]`` for ``target_ratio`` frames per segment, over the frames where ``valid`` is True."""
    weight = torch.ones_like(probabilities) if valid is None else valid.to(probabilities.dtype)
    total = weight.sum().clamp_min(1.0)
    f = (starts.to(probabilities.dtype) * weight).sum() / total
    g = (probabilities * weight).sum() / total
    n = float(target_ratio)
    return n / (n - 1.0) * ((n - 1.0) * f * g + (1.0 - f) * (1.0 - g))


@dataclass
class _SegmentState:
    previous_key: torch.Tensor  # [B, D]: the router key of the last frame seen
    total: torch.Tensor  # [B, D]: sum of the open segment's frames
    count: torch.Tensor  # [B] long: frames in the open segment (0: none open)
    started: bool = False  # a frame has been seen (previous_key is real)
    ended: bool = False


@dataclass
class _Segments:
    """Segments touched by a stretch of frames: their pooled means, lengths, and the frames' places."""

    sums: torch.Tensor  # [B, D, S]
    counts: torch.Tensor  # [B, S] long (0 = padding)
    index: torch.Tensor  # [B, T] long: segment of each frame
    position: torch.Tensor  # [B, T] long: frame's position inside its segment (from 0)

    @property
    def means(self) -> torch.Tensor:
        """``[B, D, S]``: the segments' mean frames."""
        return self.sums / self.counts.clamp_min(1)[:, None].to(self.sums.dtype)


@register_bottleneck
class CausalSegmenter(Bottleneck, StreamingModule):
    """Causal variable-rate bottleneck (kind ``segment``); see the module docstring.

    Args:
        dim: channels D of ``z``.
        quantizer: the inner bottleneck config for segment tokens (``dim`` is filled in); must be
            frame-wise (stride 1). Default ``{kind: rvq, n_codebooks: 4, codebook_size: 256}``.
        max_length: longest segment L in frames (>= 2): bounds latency and the duration code.
        boundary: ``learned`` or ``similarity``.
        threshold: a frame starts a segment when ``p_t >= threshold`` (in ``(0, 1]``).
        target_ratio: frames per segment the rate loss aims at (> 1).

    Attributes: ``lookahead_frames`` (``max_length - 1``), ``variable_rate`` (True).
    """

    kind = "segment"
    variable_rate = True

    def __init__(self, dim: int, quantizer: dict | None = None, max_length: int = 8, boundary: str = "learned",
                 threshold: float = 0.5, target_ratio: float = 2.5) -> None:
        super().__init__()
        if max_length < 2:
            raise ConfigError(f"segment: max_length must be >= 2 frames, got {max_length}")
        if boundary not in BOUNDARIES:
            raise ConfigError(f"segment: boundary must be one of {BOUNDARIES}, got {boundary!r}")
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"segment: threshold must be in (0, 1], got {threshold}")
        if not 1.0 < target_ratio <= max_length:
            raise ConfigError(f"segment: target_ratio must be in (1, max_length={max_length}], got {target_ratio}")
        self.quantizer = build_framewise(quantizer, dim, "segment")
        self.dim, self.max_length, self.boundary = dim, int(max_length), boundary
        self.threshold, self.target_ratio = float(threshold), float(target_ratio)
        self.lookahead_frames = self.max_length - 1
        if boundary == "learned":
            self.query, self.key = nn.Linear(dim, dim), nn.Linear(dim, dim)
            with torch.no_grad():
                for router in (self.query, self.key):
                    router.weight.copy_(torch.eye(dim))
                    router.bias.zero_()
            self.theta = nn.Parameter(torch.tensor(0.5))
            self.log_temperature = nn.Parameter(torch.tensor(math.log(0.1)))
            self.register_buffer("calibrated", torch.tensor(False))
        else:
            self.query = self.key = None
        self.position_embedding = nn.Embedding(self.max_length, dim)
        self.length_embedding = nn.Embedding(self.max_length, dim)
        for table in (self.position_embedding, self.length_embedding):
            nn.init.normal_(table.weight, std=0.02)

    # --- specs ------------------------------------------------------------------------------
    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        return [*self.quantizer.stream_specs(n_q), StreamSpec("discrete", (self.max_length,), name="durations")]

    check_n_q = inner_check_n_q

    # --- boundaries ---------------------------------------------------------------------------
    def _keys(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Router query and key ``[B, T, D]`` of frames ``[B, T, D]``."""
        if self.query is None:
            return frames, frames
        return self.query(frames), self.key(frames)

    def _probabilities(self, frames: torch.Tensor, previous_key: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``p [B, T]`` for frames ``[B, T, D]`` given the key of the frame before them (None:
        the signal starts here, ``p_0 = 1``), and the last frame's key ``[B, D]``."""
        query, key = self._keys(frames)
        before = key[:, :-1]
        if previous_key is not None:
            before = torch.cat([previous_key[:, None].to(key.dtype), before], dim=1)
        similarity = F.cosine_similarity(query[:, frames.shape[1] - before.shape[1]:], before, dim=-1, eps=1e-6)
        p = (0.5 * (1.0 - similarity)).clamp(0.0, 1.0)
        if self.query is not None:
            p = torch.sigmoid((p - self.theta) / self.log_temperature.exp())
        if previous_key is None:
            p = torch.cat([p.new_ones(p.shape[0], 1), p], dim=1)
        return p, key[:, -1]

    @torch.no_grad()
    def _calibrate(self, frames: torch.Tensor) -> None:
        """The learned router's data-dependent start (module docstring) from ``frames [B, T, D]``."""
        mean = frames.reshape(-1, frames.shape[-1]).mean(0)
        for router in (self.query, self.key):
            router.bias.copy_(-(router.weight @ mean))
        query, key = self._keys(frames)
        distance = 0.5 * (1.0 - F.cosine_similarity(query[:, 1:], key[:, :-1], dim=-1, eps=1e-6)).flatten().float()
        if distance.numel() >= 2:
            self.theta.fill_(float(torch.quantile(distance, 1.0 - 1.0 / self.target_ratio)))
            self.log_temperature.fill_(math.log(max(0.5 * float(distance.std()), 1e-4)))
        if is_distributed():  # one router on every rank: the mean of their calibrations
            for tensor in (self.query.bias, self.key.bias, self.theta, self.log_temperature):
                dist.all_reduce(tensor.data)
                tensor.data /= dist.get_world_size()
        self.calibrated.fill_(True)

    def _starts(self, p: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """Hard starts ``bool [B, T]`` from ``p`` and the open segment's length ``count [B]``
        (frames before this stretch): the threshold, or a full open segment, or none open."""
        wanted = (p.detach() >= self.threshold).cpu()
        count = count.cpu().clone()
        starts = torch.empty_like(wanted)
        for t in range(wanted.shape[1]):  # sequential: a forced start resets the running length
            start = wanted[:, t] | (count == 0) | (count >= self.max_length)
            starts[:, t] = start
            count = torch.where(start, torch.ones_like(count), count + 1)
        return starts.to(p.device)

    def _segments(self, frames: torch.Tensor, starts: torch.Tensor, total: torch.Tensor | None,
                  count: torch.Tensor | None) -> _Segments:
        """Pool ``frames [B, T, D]`` into the segments ``starts`` defines, the first one continuing
        an open segment (its ``total [B, D]`` and ``count [B]``) where ``count > 0``."""
        b, t, _ = frames.shape
        open_ = torch.zeros(b, dtype=torch.long, device=frames.device) if count is None else (count > 0).long()
        index = starts.long().cumsum(1) - 1 + open_[:, None]  # [B, T]
        n_segments = int(index.max()) + 1 if t else int(open_.max())
        one_hot = F.one_hot(index, max(n_segments, 1)).to(frames.dtype)  # [B, T, S]
        sums = torch.einsum("btd,bts->bds", frames, one_hot)
        counts = one_hot.sum(1).round().long()  # [B, S]
        if count is not None and bool((count > 0).any()):
            carried = (count > 0)
            sums[:, :, 0] = sums[:, :, 0] + total.to(frames.dtype) * carried[:, None]
            counts[:, 0] = counts[:, 0] + count * carried
        # position of each frame inside its segment: frames since the segment's start (+ carried)
        arange = torch.arange(t, device=frames.device).expand(b, t)
        last_start = torch.where(starts, arange, torch.full_like(arange, -1)).cummax(1).values
        carried_len = torch.zeros(b, dtype=torch.long, device=frames.device) if count is None else count
        position = torch.where(last_start >= 0, arange - last_start, arange + carried_len[:, None])
        return _Segments(sums, counts, index, position)

    # --- quantisation of packed segments ------------------------------------------------------------
    @staticmethod
    def _pack(values: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Valid columns of ``values [B, X, S]`` as ``[1, X, N]`` and the mask ``[B, S]``."""
        mask = counts > 0
        return values.transpose(1, 2)[mask].T.unsqueeze(0), mask

    @staticmethod
    def _unpack(packed: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`_pack`: ``[1, X, N]`` -> ``[B, X, S]`` with zeros in the padding."""
        out = packed.new_zeros(mask.shape[0], mask.shape[1], packed.shape[1])
        out[mask] = packed[0].T
        return out.transpose(1, 2)

    def _expand(self, tokens: torch.Tensor, counts: torch.Tensor, index: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Decoder input ``[B, D, T]``: each frame's segment token plus its position and segment
        length embeddings."""
        gathered = torch.gather(tokens, 2, index[:, None].expand(-1, tokens.shape[1], -1))  # [B, D, T]
        length = torch.gather(counts, 1, index).clamp(1, self.max_length) - 1
        extra = self.position_embedding(position.clamp(0, self.max_length - 1)) + self.length_embedding(length)
        return gathered + extra.transpose(1, 2).to(gathered.dtype)

    # --- training / offline path ---------------------------------------------------------------------
    def _offline(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, _Segments]:
        """Boundary probabilities, hard starts and segments of a whole signal ``frames [B, T, D]``."""
        if self.query is not None and self.training and not bool(self.calibrated):
            self._calibrate(frames.detach())
        p, _ = self._probabilities(frames, None)
        starts = self._starts(p, torch.zeros(frames.shape[0], dtype=torch.long))
        return p, starts, self._segments(frames, starts, None, None)

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        """``z [B, D, T]`` -> ``z_q [B, D, T]`` (tokens expanded over their segments), the
        streams, ``losses`` (the inner quantiser's, plus ``rate`` when learned) and ``stats``
        (the inner's, plus ``frames_per_segment`` and ``boundary_probability``)."""
        p, starts, seg = self._offline(z.transpose(1, 2))
        packed, mask = self._pack(seg.means, seg.counts)
        inner = self.quantizer(packed, n_q)
        tokens = self._unpack(inner.z_q, mask)
        z_q = self._expand(tokens, seg.counts, seg.index, seg.position)
        losses = dict(inner.losses)
        if self.query is not None:
            confidence = torch.where(starts, p, 1.0 - p)
            z_q = z_q * (1.0 + confidence - confidence.detach())[:, None]  # 1 forward, d(confidence) backward
            losses["rate"] = rate_loss(starts, p, self.target_ratio)
        stats = dict(inner.stats)
        stats["frames_per_segment"] = z.shape[0] * z.shape[2] / max(int(mask.sum()), 1)
        stats["boundary_probability"] = float(p.detach().mean())
        streams = [self._unpack(s, mask) for s in inner.streams]
        streams.append((seg.counts.clamp_min(1) - 1)[:, None])
        return BottleneckOutput(z_q, streams, losses, stats)

    # --- latent path ------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_segments(self, z: torch.Tensor, n_q: int | None = None,
                        starts: torch.Tensor | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``z [B, D, T]`` -> (streams, segment counts ``[B]``): offline, every segment of the
        signal; in streaming, the segments this chunk completes (see the module docstring).

        ``starts`` (offline only, ``bool [B, T]``): boundaries given from outside instead of the
        router's (e.g. phone onsets, :mod:`audiolatent.tokenizers.aligned`); the first frame
        always starts a segment and one longer than ``max_length`` frames is split."""
        frames = z.transpose(1, 2)
        if starts is not None:
            if self.is_streaming:
                raise StreamingError("segment bottleneck: given boundaries are for offline encoding, not streaming")
            if starts.shape != frames.shape[:2]:
                raise ValueError(f"segment bottleneck: starts {tuple(starts.shape)} do not match the frames "
                                 f"{tuple(frames.shape[:2])} ([B, T])")
            forced = self._starts(starts.to(frames.device, torch.float32), torch.zeros(frames.shape[0], dtype=torch.long))
            seg = self._segments(frames, forced, None, None)
            return self._quantise(seg.means, seg.counts, n_q)
        if not self.is_streaming:
            seg = self._offline(frames)[2]
            return self._quantise(seg.means, seg.counts, n_q)
        self._check_streaming_batch(z)
        state: _SegmentState = self._streaming_state
        if state.ended:
            raise StreamingError("segment bottleneck: the signal was ended by flush(); reset_streaming() to start another")
        if z.shape[-1] == 0:
            return self._quantise(z.new_zeros(z.shape[0], z.shape[1], 0), torch.zeros(z.shape[0], 0, dtype=torch.long), n_q)
        p, last_key = self._probabilities(frames, state.previous_key if state.started else None)
        count = state.count.to(z.device)
        starts = self._starts(p, count)
        seg = self._segments(frames, starts, state.total, count)
        # the last segment touched stays open unless it is full; every earlier one is complete
        n_touched = seg.index[:, -1] + 1  # [B]
        last = seg.counts.gather(1, (n_touched - 1)[:, None])[:, 0]
        full = last >= self.max_length
        closed = n_touched - (~full).long()
        keep = torch.arange(seg.counts.shape[1], device=z.device)[None] < closed[:, None]
        rows = torch.arange(z.shape[0], device=z.device)
        open_total = seg.sums[rows, :, n_touched - 1]  # the exact running sum, not mean * count
        state.total = torch.where(full[:, None], torch.zeros_like(open_total), open_total)
        state.count = torch.where(full, torch.zeros_like(last), last)
        state.previous_key, state.started = last_key.detach(), True
        return self._quantise(seg.means, seg.counts * keep, n_q)

    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:
        return self.encode_segments(z, n_q)[0]

    @torch.no_grad()
    def flush(self, n_q: int | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Streaming only: end the signal and return the open segment (streams, counts ``[B]``)."""
        if not self.is_streaming:
            raise StreamingError("segment bottleneck: flush() is for streaming mode")
        state: _SegmentState = self._streaming_state
        if state.ended:
            raise StreamingError("segment bottleneck: flush() was already called for this signal")
        state.ended = True
        means = (state.total / state.count.clamp_min(1)[:, None].to(state.total.dtype))[:, :, None]
        return self._quantise(means, state.count[:, None], n_q)

    def _quantise(self, means: torch.Tensor, counts: torch.Tensor, n_q: int | None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Streams of the segments with ``counts > 0`` (moved to the front of each row, padded)."""
        valid = counts > 0
        n = valid.sum(1)  # [B]
        width = int(n.max()) if n.numel() else 0
        order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)[:, :width]  # valid columns first
        means = torch.gather(means, 2, order[:, None].expand(-1, means.shape[1], -1))
        counts = torch.gather(counts, 1, order) * (torch.arange(width, device=counts.device)[None] < n[:, None])
        packed, mask = self._pack(means, counts)
        specs = self.quantizer.stream_specs(n_q)
        if packed.shape[-1]:
            inner = self.quantizer.encode(packed, n_q)
        else:  # no complete segment in this chunk
            inner = [packed.new_zeros(1, len(s.codebook_sizes) if s.kind == "discrete" else s.dim, 0,
                                      dtype=torch.long if s.kind == "discrete" else packed.dtype) for s in specs]
        streams = [self._unpack(s, mask) for s in inner]
        streams.append((counts.clamp_min(1) - 1)[:, None] * mask[:, None])
        return streams, n

    def decode(self, streams: list[torch.Tensor], lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Streams (inner ones, then durations ``[B, 1, K]``) -> ``z_q [B, D, T]``, T the largest
        total duration; ``lengths [B]`` = valid segments per item (None: all K). Frames past an
        item's total duration are zeros."""
        *inner, durations = streams
        b, _, k = durations.shape
        counts = durations[:, 0].long() + 1
        if lengths is not None:
            counts = counts * (torch.arange(k, device=counts.device)[None] < lengths.to(counts.device)[:, None])
        if k == 0 or int(counts.sum()) == 0:
            return torch.zeros(b, self.dim, 0, device=durations.device)
        packed = [self._pack(s, counts)[0] for s in inner]
        tokens = self._unpack(self.quantizer.decode(packed), counts > 0)  # [B, D, K]
        totals = counts.sum(1)
        t = int(totals.max())
        frame = torch.arange(t, device=counts.device)[None].expand(b, t).contiguous()
        ends = counts.cumsum(1)  # [B, K]
        index = torch.searchsorted(ends, frame, right=True).clamp(max=k - 1)
        begin = (ends - counts).gather(1, index)
        out = self._expand(tokens, counts, index, frame - begin)
        return out * (frame < totals[:, None])[:, None].to(out.dtype)

    def sync_distributed(self, group=None) -> None:
        self.quantizer.sync_distributed(group)

    # --- streaming -----------------------------------------------------------------------------------
    def _init_streaming_state(self, batch_size: int) -> _SegmentState:
        device = self.position_embedding.weight.device
        zeros = torch.zeros(batch_size, self.dim, device=device)
        return _SegmentState(zeros, zeros.clone(), torch.zeros(batch_size, dtype=torch.long, device=device))
