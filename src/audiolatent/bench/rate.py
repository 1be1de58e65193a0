"""Rate: how much a latent costs, nominally and after ideal entropy coding.

Input: the latents of an evaluation set, one :class:`~audiolatent.core.latent.Latent` per file
(any batch size; padded frames beyond a stream's ``lengths`` are ignored). Output: a dict, per
stream and in total.

Definitions (per stream ``s`` with frame rate ``f_s`` frames/s)
----------------------------------------------------------------
* **tokens/s** (discrete): ``K_s * f_s`` — one token per codebook per frame.
* **nominal bits/s** (discrete): ``f_s * sum_k log2(V_k)``, ``V_k`` the size of codebook ``k``
  (what a fixed-length code costs; equals :attr:`Latent.bits_per_second`).
* **entropy bits/s** (discrete): pool every valid frame of the eval set; for codebook ``k`` let
  ``p_k(c)`` be the empirical frequency of code ``c``; ``H_k = -sum_c p_k(c) log2 p_k(c)`` bits
  (the zeroth-order, unigram entropy). Entropy bits/s = ``f_s * sum_k H_k``, summed over streams.
  It is the rate of an ideal static per-codebook entropy coder (Huffman/arithmetic with a
  unigram model fitted on this set); it ignores dependencies between frames and codebooks, which
  the modelability axis measures. The plug-in estimate is biased low by about
  ``(V_k - 1) / (2 n ln 2)`` bits for ``n`` frames, so use enough frames (``n >> V_k``).
* **usage** of codebook ``k``: distinct codes observed / ``V_k`` (1 / V_k for a constant code).
* **perplexity** of codebook ``k``: ``2^H_k`` (the number of equally likely codes with the same
  entropy; ``V_k`` at most).
* continuous streams: **dims** ``D`` and **values/s** ``D * f_s``; bits are not defined without a
  precision, so they add nothing to the bit totals.

Variable-rate streams (with per-frame ``durations``) use the *effective* frame rate, valid
frames / total seconds of their durations.

Where the tokens go (:func:`token_spread`, :func:`rate_by_content`)
-------------------------------------------------------------------
* **tokens/s spread**: per file, ``K_s * n_s / seconds`` summed over discrete streams, with
  ``n_s`` its valid frames and ``seconds`` the file's audio length (``num_samples``; else the
  sum of durations, else ``n_s / f_s``): mean, standard deviation, min and max over the files.
  A fixed-rate latent has no spread beyond its last partial frame.
* **rate by content**: every 20 ms of the file's audio is *speech* when its level is within
  ``35 dB`` of the file's loudest 20 ms and above ``-70 dBFS``, else *silence* (an energy
  detector: no transcript needed). A latent frame belongs to the class of the 20 ms window at
  its midpoint (``start + duration / 2``). Per class: its seconds of audio, tokens/s (tokens of
  frames in the class / seconds of the class) and nominal bits/s alike. A fixed-rate latent
  spends the same in both; a variable-rate one should spend less on silence. Where a file has a
  phone alignment (``speech_aligned``), the alignment decides instead: silence is the time inside
  its pause phones (``pau``, ``sil``, ``sp``), speech the rest (the energy rule counts a stop's
  closure or a weak fricative as silence). ``detector`` says which rule each file used.
"""

from __future__ import annotations

import math

import torch

from audiolatent.bench.metrics import Metric, register_metric
from audiolatent.core.latent import Latent, Stream

__all__ = ["rate_metrics", "codebook_statistics", "token_spread", "rate_by_content", "speech_frames",
           "effective_frame_rate"]

#: the energy detector of :func:`speech_frames`: window, level below the loudest window, absolute floor
CONTENT_WINDOW_SECONDS, CONTENT_RANGE_DB, CONTENT_FLOOR_DBFS = 0.02, 35.0, -70.0
#: the phones of an alignment that are silence (flite's ``pau``; ``sil`` and ``sp`` of other aligners)
PAUSE_PHONES = frozenset({"pau", "sil", "sp", "SIL", "<sil>"})


def _valid_frames(stream: Stream) -> list[torch.Tensor]:
    """Per batch item, the ``[K|D, T_valid]`` values within the stream's lengths."""
    lengths = stream.lengths if stream.lengths is not None else [stream.num_frames] * stream.values.shape[0]
    return [stream.values[b, :, : int(n)] for b, n in enumerate(lengths)]


def codebook_statistics(codes: torch.Tensor, codebook_size: int) -> dict:
    """Entropy (bits), perplexity and usage of one codebook's pooled codes (a 1-D int tensor)."""
    if codes.numel() == 0:
        return {"entropy_bits": float("nan"), "perplexity": float("nan"), "usage": float("nan"), "frames": 0}
    counts = torch.bincount(codes.reshape(-1).long().cpu(), minlength=codebook_size).double()
    p = counts[counts > 0] / counts.sum()
    entropy = float(-(p * torch.log2(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0
    return {
        "entropy_bits": entropy,
        "perplexity": 2.0**entropy,
        "usage": float((counts > 0).sum()) / codebook_size,
        "frames": int(counts.sum()),
    }


def rate_metrics(latents: list[Latent]) -> dict:
    """Rate of an eval set's latents (see the module docstring for the definitions).

    Args:
        latents: one Latent per eval file, all from the same tokenizer (same stream names,
            codebook sizes and frame rates).

    Returns:
        ``{"streams": {name: {...}}, "tokens_per_second", "nominal_bits_per_second",
        "entropy_bits_per_second", "values_per_second"}`` where a discrete stream reports
        ``kind, frame_rate, codebooks, codebook_sizes, tokens_per_second, nominal_bits_per_second,
        entropy_bits_per_second, entropy_bits, perplexity, usage`` (the last three per codebook,
        lists) and a continuous one ``kind, frame_rate, dims, values_per_second``.
    """
    if not latents:
        raise ValueError("rate_metrics needs at least one latent")
    layout = [(s.name, s.codebook_sizes, s.frame_rate, s.values.shape[1]) for s in latents[0].streams]
    for latent in latents[1:]:
        other = [(s.name, s.codebook_sizes, s.frame_rate, s.values.shape[1]) for s in latent.streams]
        if other != layout:
            raise ValueError(f"latents disagree on their streams: {layout} vs {other}")
    streams: dict[str, dict] = {}
    for index, (name, sizes, frame_rate, width) in enumerate(layout):
        items = [v for latent in latents for v in _valid_frames(latent.streams[index])]
        frame_rate = effective_frame_rate([latent.streams[index] for latent in latents], frame_rate)
        if sizes is None:
            streams[name] = {"kind": "continuous", "frame_rate": frame_rate, "dims": width,
                             "values_per_second": frame_rate * width}
            continue
        pooled = torch.cat(items, dim=-1) if items else torch.zeros(width, 0, dtype=torch.long)
        stats = [codebook_statistics(pooled[k], size) for k, size in enumerate(sizes)]
        streams[name] = {
            "kind": "discrete",
            "frame_rate": frame_rate,
            "codebooks": len(sizes),
            "codebook_sizes": list(sizes),
            "frames": pooled.shape[-1],
            "tokens_per_second": frame_rate * len(sizes),
            "nominal_bits_per_second": frame_rate * sum(math.log2(v) for v in sizes),
            "entropy_bits_per_second": frame_rate * sum(s["entropy_bits"] for s in stats),
            "entropy_bits": [s["entropy_bits"] for s in stats],
            "perplexity": [s["perplexity"] for s in stats],
            "usage": [s["usage"] for s in stats],
        }
    discrete = [s for s in streams.values() if s["kind"] == "discrete"]
    return {
        "streams": streams,
        # bits are undefined for a purely continuous latent: None, not 0
        "tokens_per_second": sum(s["tokens_per_second"] for s in discrete) if discrete else None,
        "nominal_bits_per_second": sum(s["nominal_bits_per_second"] for s in discrete) if discrete else None,
        "entropy_bits_per_second": sum(s["entropy_bits_per_second"] for s in discrete) if discrete else None,
        "values_per_second": sum(s["frame_rate"] * (s.get("dims") or s.get("codebooks")) for s in streams.values()),
    }


def _frame_times(stream: Stream, item: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Start times and durations (seconds, float64) of the first ``n`` frames of ``item``."""
    if stream.durations is not None:
        durations = stream.durations[item, :n].double()
        return torch.cumsum(durations, 0) - durations, durations
    durations = torch.full((n,), 1.0 / stream.frame_rate, dtype=torch.float64)
    return torch.arange(n, dtype=torch.float64) / stream.frame_rate, durations


def _item_seconds(latent: Latent, item: int) -> float:
    if latent.num_samples is not None:
        return float(latent.num_samples[item]) / latent.sample_rate
    stream = latent.streams[0]
    n = int(stream.lengths[item]) if stream.lengths is not None else stream.num_frames
    return float(_frame_times(stream, item, n)[1].sum())


def token_spread(latents: list[Latent]) -> dict | None:
    """Per-file tokens/s of the discrete streams: ``{"mean", "std", "min", "max", "files"}``
    (see the module docstring); None for a latent with no discrete stream."""
    values = []
    for latent in latents:
        discrete = [s for s in latent.streams if s.is_discrete]
        if not discrete:
            return None
        valid = [_valid_frames(s) for s in discrete]
        for b in range(latent.streams[0].values.shape[0]):
            seconds = _item_seconds(latent, b)
            tokens = sum(len(s.codebook_sizes) * items[b].shape[-1] for s, items in zip(discrete, valid))
            if seconds > 0:
                values.append(tokens / seconds)
    if not values:
        return None
    t = torch.tensor(values, dtype=torch.float64)
    return {"mean": float(t.mean()), "std": float(t.std(unbiased=False)), "min": float(t.min()), "max": float(t.max()),
            "files": len(values)}


def speech_frames(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``bool [W]``: which 20 ms windows of ``audio`` (``[N]`` or ``[C, N]``, channels averaged)
    are speech by the energy rule of the module docstring (a partial last window counts)."""
    x = audio.double().reshape(-1, audio.shape[-1]).mean(0)
    window = max(1, round(CONTENT_WINDOW_SECONDS * sample_rate))
    x = torch.nn.functional.pad(x, (0, -x.numel() % window))
    level = 10.0 * torch.log10(x.view(-1, window).square().mean(1) + 1e-12)
    return (level > level.max() - CONTENT_RANGE_DB) & (level > CONTENT_FLOOR_DBFS)


def _in_speech_by_alignment(phones, times: torch.Tensor) -> torch.Tensor:
    """``bool``: which of ``times`` (s) fall outside every pause phone of ``phones``."""
    pause = torch.zeros_like(times, dtype=torch.bool)
    for phone, start, end in phones:
        if phone in PAUSE_PHONES:
            pause |= (times >= float(start)) & (times < float(end))
    return ~pause


def rate_by_content(latents: list[Latent], audio: list[torch.Tensor], phones: list | None = None) -> dict | None:
    """Seconds, tokens/s and nominal bits/s of the discrete streams in speech and in silence
    (``{"speech": {...}, "silence": {...}, "detector": ...}``; see the module docstring).
    ``audio``: one ``[C, N]`` or ``[B, C, N]`` tensor per latent, the audio it encodes;
    ``phones``: per latent, its phone alignment or None (then the energy rule). ``detector`` is
    ``energy``, ``alignment`` or ``mixed``. None without a discrete stream."""
    if len(audio) != len(latents):
        raise ValueError(f"rate_by_content: {len(latents)} latents but {len(audio)} audio tensors")
    if phones is not None and len(phones) != len(latents):
        raise ValueError(f"rate_by_content: {len(latents)} latents but {len(phones)} alignments")
    seconds = {"speech": 0.0, "silence": 0.0}
    tokens = {"speech": 0.0, "silence": 0.0}
    bits = {"speech": 0.0, "silence": 0.0}
    detectors = set()
    for i, (latent, wave) in enumerate(zip(latents, audio)):
        discrete = [s for s in latent.streams if s.is_discrete]
        if not discrete:
            return None
        wave = wave if wave.dim() == 3 else wave[None]
        alignment = phones[i] if phones is not None and wave.shape[0] == 1 else None
        detectors.add("alignment" if alignment else "energy")
        for b in range(wave.shape[0]):
            n_samples = int(latent.num_samples[b]) if latent.num_samples is not None else wave.shape[-1]
            total = n_samples / latent.sample_rate
            if alignment:
                paused = sum(max(0.0, min(float(e), total) - float(s)) for p, s, e in alignment if p in PAUSE_PHONES)
                spoken = total - paused
            else:
                speech = speech_frames(wave[b, :, :n_samples], latent.sample_rate)
                spoken = float(speech.sum()) * CONTENT_WINDOW_SECONDS
            seconds["speech"] += min(spoken, total)
            seconds["silence"] += max(total - spoken, 0.0)
            for s in discrete:
                n = _valid_frames(s)[b].shape[-1]
                starts, durations = _frame_times(s, b, n)
                middle = starts + durations / 2
                if alignment:
                    in_speech = _in_speech_by_alignment(alignment, middle)
                else:
                    where = (middle / CONTENT_WINDOW_SECONDS).long().clamp(0, speech.numel() - 1)
                    in_speech = speech[where]
                k, frame_bits = len(s.codebook_sizes), sum(math.log2(v) for v in s.codebook_sizes)
                for name, mask in (("speech", in_speech), ("silence", ~in_speech)):
                    count = float(mask.sum())
                    tokens[name] += k * count
                    bits[name] += frame_bits * count
    out = {name: {"seconds": seconds[name],
                  "tokens_per_second": tokens[name] / seconds[name] if seconds[name] > 0 else None,
                  "nominal_bits_per_second": bits[name] / seconds[name] if seconds[name] > 0 else None}
           for name in ("speech", "silence")}
    out["detector"] = detectors.pop() if len(detectors) == 1 else "mixed"
    return out


def effective_frame_rate(streams: list[Stream], declared: float) -> float:
    """Valid frames / seconds of their durations over ``streams`` (``declared`` for fixed-rate ones)."""
    if all(s.durations is None for s in streams):
        return declared
    counted = [s.frames_and_seconds() for s in streams]
    seconds = sum(sec for _, sec in counted)
    return sum(n for n, _ in counted) / seconds if seconds > 0 else declared


register_metric(Metric(
    "rate", "rate", rate_metrics, "bits/s", (0.0, float("inf")), None,
    "frame rate, tokens/s, nominal and entropy-coded bits/s, codebook usage and perplexity",
))
