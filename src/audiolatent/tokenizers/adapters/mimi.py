"""Mimi (Défossez et al., 2024, Moshi's codec) through ``transformers``: ``mimi``.

Causal SEANet + transformer encoder at 24 kHz, 12.5 frames/s, a split RVQ of 2048-code
codebooks: codebook 0 is the semantic one (distilled from WavLM in training), the others
acoustic. Up to 32 codebooks; the default 8 is the released 1.1 kbps model. Weights:
``kyutai/mimi``; ``transformers.MimiConfig()``'s defaults are that architecture.

Streaming: **encoding** streams exactly — each chunk (a multiple of 1920 samples) goes through
``MimiModel.encode(..., use_streaming=True)`` with the encoder and convolution-padding caches of
the previous chunk passed back, and the codes equal the offline ones (tested). Decoding in
streaming mode is refused: transformers' Mimi decoder keeps a cache for its transformer but not
for its transposed convolutions, so chunked audio would not equal offline audio; decode offline.
"""

from __future__ import annotations

import torch

from audiolatent.tokenizers.adapters.base import AdapterSpec, apply_overrides, from_pretrained, register_adapter

HOP = 1920


def _build(weights: str, revision: str, pretrained: bool, overrides: dict) -> torch.nn.Module:
    from transformers import MimiConfig, MimiModel

    if pretrained:
        return from_pretrained(MimiModel, weights, revision, "mimi")
    return MimiModel(apply_overrides(MimiConfig(), overrides))


def _randomise(model, seed: int) -> None:
    """Codebooks drawn where the projected latents of 2 s of noise lie, per RVQ (semantic, acoustic)."""
    generator = torch.Generator().manual_seed(seed)
    noise = 0.1 * torch.randn(1, 1, 48000, generator=torch.Generator().manual_seed(seed))
    latents = model.encoder(noise).latents
    for rvq in (model.quantizer.semantic_residual_vector_quantizer, model.quantizer.acoustic_residual_vector_quantizer):
        projected = (rvq.input_proj(latents) if rvq.input_proj is not None else latents)[0]  # [D, T]
        mean, std = projected.mean(-1), projected.std(-1).clamp_min(1e-8)
        for i, layer in enumerate(rvq.layers):
            book = layer.codebook
            book.embed_sum.copy_(torch.randn(book.embed_sum.shape, generator=generator) * std + (mean if i == 0 else 0.0))
            book.cluster_usage.fill_(1.0)
            book.initialized.fill_(1)


def _encode(model, audio: torch.Tensor, n_q: int) -> torch.Tensor:
    return model.encode(audio, num_quantizers=n_q).audio_codes


def _stream_encode(model, audio: torch.Tensor, n_q: int, state: dict) -> torch.Tensor:
    out = model.encode(audio, num_quantizers=n_q, encoder_cache=state.get("encoder_cache"),
                       padding_cache=state.get("padding_cache"), use_streaming=True)
    state["encoder_cache"], state["padding_cache"] = out.encoder_cache, out.padding_cache
    return out.audio_codes


def _decode(model, codes: torch.Tensor) -> torch.Tensor:
    return model.decode(codes).audio_values


register_adapter(AdapterSpec(
    name="mimi", description="Mimi (transformers; kyutai/mimi): causal, 12.5 Hz, split RVQ up to 32 x 2048 (default 8 = 1.1 kbps)",
    package="transformers", hub_id="kyutai/mimi", sample_rate=24000, channels=1, hop_length=HOP, codebook_size=2048,
    max_codebooks=32, default_codebooks=8, causal=True, lookahead=0, build=_build, encode=_encode, decode=_decode,
    randomise=_randomise, stream_encode=_stream_encode,
))
