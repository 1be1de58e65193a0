"""Streaming: is a tokenizer causal, what latency does it add, and can it keep up in real time?

:func:`measure_streaming` reports, for one tokenizer (DESIGN.md, "Streaming contract"):

* **causal** — verified by probing the *round trip* ``decode(encode(x))``: the input is replaced
  with fresh noise from sample ``t`` on, and we find the earliest output sample that changes,
  ``m*(t)``, for every phase of ``t`` within a hop window (128 phases of windows longer than
  1024 samples: :func:`probe_positions`; :func:`audiolatent.nn.latency.measure_lookahead` with
  ``hop=1`` on the sample-to-sample map). The round-trip reach is
  ``R = max_t (t - m*(t))``. A tokenizer with hop ``H`` and no lookahead has ``R = H - 1`` (an
  output sample needs the rest of its own frame), so the **measured lookahead** is
  ``R - (H - 1)`` samples, and the tokenizer is causal when it is ``<= 0``; ``consistent`` says
  whether it is within the declared ``lookahead``. A causal round trip can probe *below* zero
  (e.g. an output sample that needs only earlier frames): ``lookahead_samples`` is
  ``max(R - (H - 1), 0)`` and ``probed_lookahead_samples`` keeps the raw value. Tokenizers whose ``lookahead`` is None (they
  need the whole signal, like Griffin-Lim) are reported ``causal: False, lookahead: "whole
  signal"`` without probing. A variable-rate tokenizer's reach depends on the signal (a
  segmenting bottleneck holds a steady stretch until its segment is full), so it is probed twice,
  on noise and on a steady tone (:func:`steady_tone`), and the larger reach is reported.
* **algorithmic latency** (ms) = ``(H + lookahead) / sample_rate * 1000`` — the time from a
  sample entering until the output sample at the same position can be produced, ignoring
  compute; from the measured lookahead (and the declared one beside it).
* **per-chunk compute** — inside ``tokenizer.streaming(1)``, encode then decode one hop of
  audio at a time; the median wall time per chunk after ``warmup`` chunks, divided by the chunk
  duration ``H / sample_rate``. Below 1 the tokenizer keeps up with real time at the smallest
  chunk on this machine; only meaningful for causal tokenizers (others cannot stream).
* **random round trips** (``tokenizer.deterministic`` False, e.g. Codec2, whose decoder draws
  phases from an unseedable generator): the round trip cannot be probed sample by sample, so the
  *encoder* is probed (:func:`probe_encoder_lookahead`, ``encoder_lookahead_samples``), the
  round-trip lookahead and latency are the declared ones, and ``consistent`` says whether the
  probed encoder reach fits inside the declared lookahead.
* **real-time factors** of offline ``encode`` and ``decode``: compute time / audio duration on
  one ``seconds``-long signal (median of ``repeats`` runs after one warm-up run).

Timings depend on the machine and its load; report the machine beside them.
"""

from __future__ import annotations

import statistics
import time

import torch

from audiolatent.bench.metrics import Metric, register_metric
from audiolatent.core.errors import StreamingError
from audiolatent.core.tokenizer import Tokenizer
from audiolatent.nn.latency import measure_lookahead

__all__ = ["measure_streaming", "probe_round_trip_lookahead", "probe_encoder_lookahead"]


#: hop windows up to this many samples are probed at every phase (every codec with a hop <= 512);
#: longer ones (a 1 s hop: EnCodec 48 kHz; SNAC's 2048) at SPARSE_PROBE_POSITIONS phases, since
#: every phase would take thousands of passes of a large model
EXHAUSTIVE_PROBE_SPAN = 1024
SPARSE_PROBE_POSITIONS = 128
#: hops longer than this (EnCodec 48 kHz's 1 s chunk) are probed at 32 phases on a 4-hop signal:
#: a probe of 128 phases on 8 hops of a stereo 48 kHz model takes most of an hour on a CPU
LONG_HOP = 4096


def probe_positions(start: int, hop: int, windows: int) -> list[int]:
    """Every phase of ``windows`` hop windows from ``start`` or, when they span more than
    :data:`EXHAUSTIVE_PROBE_SPAN` samples, the first two and last two phases of each window
    (where a frame's reach begins and ends) and evenly spaced phases between, 128 in all (32 for
    hops over :data:`LONG_HOP` samples)."""
    span = windows * hop
    if span <= EXHAUSTIVE_PROBE_SPAN:
        return list(range(start, start + span))
    edges = {start + k * hop + d for k in range(windows) for d in (0, 1, hop - 2, hop - 1)}
    n = (SPARSE_PROBE_POSITIONS if hop <= LONG_HOP else SPARSE_PROBE_POSITIONS // 4) - len(edges)
    spread = {start + round(i * (span - 1) / (n - 1)) for i in range(n)}
    return sorted(edges | spread)


def steady_tone(tokenizer: Tokenizer, n_samples: int) -> torch.Tensor:
    """``[1, C, n_samples]``: a steady 220 Hz tone at -20 dBFS, the signal a variable-rate codec
    holds longest (its frames do not change, so a segment grows to ``max_length``)."""
    t = torch.arange(n_samples, dtype=torch.float64) / tokenizer.sample_rate
    return (0.1 * torch.sin(2 * torch.pi * 220.0 * t)).float().expand(1, tokenizer.channels, -1).clone()


def _probe_middle(tokenizer: Tokenizer, fn, n_samples: int, hop: int, windows: int, batch_size: int, seed: int,
                  atol: float) -> int | None:
    """``measure_lookahead`` of ``fn`` (audio in) over the phases of ``windows`` hop windows from the
    middle of the signal (:func:`probe_positions`); None when the first output already depends on
    the end of the signal. A variable-rate tokenizer, whose reach depends on the signal, is probed
    on noise and on a :func:`steady_tone` (its longest segments), and the larger reach counts."""
    tok_hop = tokenizer.hop_length
    start = (n_samples // 2) - (n_samples // 2) % tok_hop
    positions = probe_positions(start, tok_hop, windows)
    probes = [(None, positions)]
    if getattr(tokenizer, "variable_rate", False):
        # the last sample of each frame over one longest segment and a frame more: the change that
        # closes a full segment reaches back to its first frame
        frames = (tokenizer.lookahead or 0) // tok_hop + 2
        last_samples = [p for p in (start + (k + 1) * tok_hop - 1 for k in range(frames)) if p < n_samples]
        probes.append((steady_tone(tokenizer, n_samples), last_samples))
    reach = None
    for base, where in probes:
        try:
            value = measure_lookahead(torch.inference_mode()(fn), n_samples, tokenizer.channels, hop, positions=where,
                                      batch_size=batch_size, seed=seed, atol=atol, skip_unchanged=True, base=base)
        except ValueError:  # output 0 changed: the output depends on the whole signal
            return None
        reach = value if reach is None else max(reach, value)
    return reach


def probe_round_trip_lookahead(
    tokenizer: Tokenizer, n_samples: int, *, windows: int = 2, batch_size: int = 16, atol: float = 1e-6, seed: int = 0
) -> int | None:
    """Measured round-trip lookahead in samples (see the module docstring), or None when the
    output at the start of the signal already depends on its end (a whole-signal tokenizer).

    ``windows`` consecutive hop windows from the middle of the signal are probed (every phase of
    each), so one perturbation that happens not to change a quantised code cannot hide the
    dependency.
    """

    def round_trip(x: torch.Tensor) -> torch.Tensor:
        return tokenizer.decode(tokenizer.encode(x.to(tokenizer.device))).float().cpu()

    reach = _probe_middle(tokenizer, round_trip, n_samples, 1, windows, batch_size, seed, atol)
    return None if reach is None else reach - (tokenizer.hop_length - 1)


def probe_encoder_lookahead(
    tokenizer: Tokenizer, n_samples: int, *, windows: int = 2, batch_size: int = 16, seed: int = 0
) -> int | None:
    """Measured lookahead of the *encoder* alone, in input samples (``lookahead`` of
    :mod:`audiolatent.nn.latency` on the map audio -> codes or latent values, downsampling by
    ``hop_length``), or None when the first frame depends on the end of the signal.

    For tokenizers whose decoder is random (Codec2 synthesises phases from an unseedable global
    generator) this is the part of the round trip that can be probed: the encoder's reach past
    each frame, which the declared round-trip lookahead must cover.
    """

    def encoder(x: torch.Tensor) -> torch.Tensor:
        latent = tokenizer.encode(x.to(tokenizer.device))
        base = latent.streams[0].num_frames * tokenizer.frame_rate / latent.streams[0].frame_rate
        # a finer stream of a multi-scale latent (SNAC): its r frames per base frame side by side
        parts = [s.values.float().cpu().reshape(s.values.shape[0], s.values.shape[1], round(base), -1)
                 .transpose(2, 3).flatten(1, 2) for s in latent.streams]
        return torch.cat(parts, dim=1)

    return _probe_middle(tokenizer, encoder, n_samples, tokenizer.hop_length, windows, batch_size, seed, 0.0)


def _median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


@torch.inference_mode()
def _chunk_compute(tokenizer: Tokenizer, audio: torch.Tensor, warmup: int, max_chunks: int) -> float:
    hop = tokenizer.hop_length
    n_chunks = min(audio.shape[-1] // hop, warmup + max_chunks)
    warmup = min(warmup, n_chunks // 2)  # a 1 s hop (EnCodec 48 kHz): a few chunks, half of them warm-up
    if n_chunks < 2:
        raise ValueError(f"signal too short for two streaming chunks of {hop} samples")
    times = []
    with tokenizer.streaming(audio.shape[0]):
        for i in range(n_chunks):
            begin = time.perf_counter()
            tokenizer.decode(tokenizer.encode(audio[..., i * hop : (i + 1) * hop]))
            times.append(time.perf_counter() - begin)
    return statistics.median(times[warmup:]) / (hop / tokenizer.sample_rate)


def measure_streaming(
    tokenizer: Tokenizer,
    seconds: float = 2.0,
    *,
    probe_seconds: float | None = None,
    warmup: int = 5,
    max_chunks: int = 200,
    repeats: int = 3,
    seed: int = 0,
) -> dict:
    """Causality, lookahead, latency and compute of ``tokenizer`` (module docstring has the definitions).

    Args:
        tokenizer: any :class:`Tokenizer` (put it on its device and in eval mode first).
        seconds: length of the signal for the timings.
        probe_seconds: length of the causality probe signal (default: ``seconds``); it must be
            several receptive fields long (at least 3 x (hop + declared lookahead) is used).
        warmup: streaming chunks discarded before timing (at most half the chunks of the signal).
        max_chunks: streaming chunks timed at most.
        repeats: offline runs timed (median).
        seed: seed of the random test signals.

    Returns:
        ``{"declared_causal", "declared_lookahead_samples", "causal", "lookahead_samples",
        "consistent", "hop_length", "sample_rate", "delay_samples", "algorithmic_latency_ms",
        "declared_algorithmic_latency_ms", "chunk_compute_fraction", "chunk_samples",
        "encode_rtf", "decode_rtf", "notes"}``. ``lookahead_samples`` is ``"whole signal"`` and
        the latencies None when the tokenizer cannot stream.
    """
    sr, hop = tokenizer.sample_rate, tokenizer.hop_length
    n_samples = max(hop * 4, round(seconds * sr))
    declared = tokenizer.lookahead
    # a declared decoder delay: the output lags, so an output sample's reach ahead (what the probe
    # measures) understates the latency by that delay; both latencies add it
    delay = int(getattr(tokenizer, "delay", 0))
    # long enough that the middle of the signal is past the declared reach (a VAE's 0.6 s lookahead)
    n_probe = max(hop * (8 if hop <= LONG_HOP else 4), round((probe_seconds or seconds) * sr),
                  3 * (hop + (declared or 0)))
    notes: list[str] = []
    result: dict = {
        "declared_causal": bool(tokenizer.causal),
        "declared_lookahead_samples": "whole signal" if declared is None else declared,
        "hop_length": hop,
        "sample_rate": sr,
        "chunk_samples": hop,
        "delay_samples": delay,
        "declared_algorithmic_latency_ms": None if declared is None else 1000.0 * (hop + declared + delay) / sr,
    }
    if declared is not None and not getattr(tokenizer, "deterministic", True):
        return _declared_round_trip(tokenizer, result, n_samples, n_probe, repeats, seed)
    measured = None if declared is None else probe_round_trip_lookahead(tokenizer, n_probe, seed=seed)
    if declared is None:
        notes.append("lookahead None: the tokenizer needs the whole signal; not probed")
    elif measured is None:
        notes.append("probe: the first output sample depends on the end of the signal (whole-signal dependency)")
    result["causal"] = measured is not None and measured <= 0
    # a causal tokenizer whose output sample also waits for samples of earlier frames' ends (or whose
    # round trip is delayed) probes below zero; lookahead is clamped at 0 and the raw value kept
    result["probed_lookahead_samples"] = "whole signal" if measured is None else measured
    result["lookahead_samples"] = "whole signal" if measured is None else max(measured, 0)
    result["consistent"] = (measured is None) == (declared is None) and (measured is None or measured <= declared)
    result["algorithmic_latency_ms"] = None if measured is None else 1000.0 * (hop + max(measured, 0) + delay) / sr

    audio = _test_signal(tokenizer, n_samples, seed)
    result["chunk_compute_fraction"] = None
    if measured is not None:
        try:
            result["chunk_compute_fraction"] = _chunk_compute(tokenizer, audio, warmup, max_chunks)
        except StreamingError as exc:
            notes.append(f"streaming not supported: {exc}")
    if getattr(tokenizer, "needs_phones", False):  # no alignment for a random signal: timed on the bench's files
        result.update(encode_rtf=None, decode_rtf=None)
        notes.append("needs a phone alignment: offline speed is the bench's per-file rate.encode_rtf / decode_rtf")
    else:
        result.update(_offline_rtf(tokenizer, audio, repeats))
    result["notes"] = notes
    return result


def _test_signal(tokenizer: Tokenizer, n_samples: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (0.1 * torch.randn(1, tokenizer.channels, n_samples, generator=gen)).to(tokenizer.device)


@torch.inference_mode()
def _offline_rtf(tokenizer: Tokenizer, audio: torch.Tensor, repeats: int) -> dict:
    seconds = audio.shape[-1] / tokenizer.sample_rate
    latent = tokenizer.encode(audio)
    return {"encode_rtf": _median_seconds(lambda: tokenizer.encode(audio), repeats) / seconds,
            "decode_rtf": _median_seconds(lambda: tokenizer.decode(latent), repeats) / seconds}


def _declared_round_trip(tokenizer: Tokenizer, result: dict, n_samples: int, n_probe: int, repeats: int, seed: int) -> dict:
    """A tokenizer whose round trip is random: its encoder is probed, the round trip declared."""
    hop, sr, declared = tokenizer.hop_length, tokenizer.sample_rate, tokenizer.lookahead
    encoder = probe_encoder_lookahead(tokenizer, n_probe, seed=seed)
    result.update(
        causal=bool(tokenizer.causal), probed=False, encoder_lookahead_samples="whole signal" if encoder is None else encoder,
        lookahead_samples=declared, probed_lookahead_samples=None,
        consistent=encoder is not None and encoder <= declared,
        algorithmic_latency_ms=1000.0 * (hop + declared + int(getattr(tokenizer, "delay", 0))) / sr,
        chunk_compute_fraction=None,
        notes=["round trip not deterministic (tokenizer.deterministic is False): encoder lookahead probed, "
               "round-trip lookahead and latency declared"],
    )
    result.update(_offline_rtf(tokenizer, _test_signal(tokenizer, n_samples, seed), repeats))
    return result


register_metric(Metric(
    "streaming", "streaming", measure_streaming, "ms", (0.0, float("inf")), False,
    "probed causality and lookahead, algorithmic latency, per-chunk compute, real-time factors",
))
