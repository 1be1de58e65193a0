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
"""

from __future__ import annotations

import math

import torch

from audiolatent.bench.metrics import Metric, register_metric
from audiolatent.core.latent import Latent, Stream

__all__ = ["rate_metrics", "codebook_statistics"]


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
        frame_rate = _effective_frame_rate([latent.streams[index] for latent in latents], frame_rate)
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


def _effective_frame_rate(streams: list[Stream], declared: float) -> float:
    if all(s.durations is None for s in streams):
        return declared
    frames, seconds = 0, 0.0
    for s in streams:
        for b, values in enumerate(_valid_frames(s)):
            n = values.shape[-1]
            frames += n
            seconds += float(s.durations[b, :n].sum()) if s.durations is not None else n / declared
    return frames / seconds if seconds > 0 else declared


register_metric(Metric(
    "rate", "rate", rate_metrics, "bits/s", (0.0, float("inf")), None,
    "frame rate, tokens/s, nominal and entropy-coded bits/s, codebook usage and perplexity",
))
