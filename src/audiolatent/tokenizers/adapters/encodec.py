"""EnCodec (Défossez et al., 2022) through ``transformers``: ``encodec-24k``.

The 24 kHz model: causal SEANet + LSTM, 75 frames/s, 32 RVQ codebooks of 1024 (1.5 / 3 / 6 / 12 /
24 kbps = 2 / 4 / 8 / 16 / 32 codebooks; default 6 kbps). Weights: ``facebook/encodec_24khz``;
``transformers.EncodecConfig()``'s defaults are that model's architecture, so random weights
have its exact shape. The encoder's "bandwidth" is mapped from the codebooks kept.
"""

from __future__ import annotations

import torch

from audiolatent.tokenizers.adapters.base import AdapterSpec, from_pretrained, register_adapter

FRAME_BITS = 10  # log2(1024)


def _build(weights: str, revision: str, pretrained: bool) -> torch.nn.Module:
    from transformers import EncodecConfig, EncodecModel

    if pretrained:
        return from_pretrained(EncodecModel, weights, revision, "encodec-24k")
    return EncodecModel(EncodecConfig())


def _bandwidth(model, n_q: int) -> float:
    return n_q * model.config.frame_rate * FRAME_BITS / 1000


def _encode(model, audio: torch.Tensor, n_q: int) -> torch.Tensor:
    out = model.encode(audio, bandwidth=_bandwidth(model, n_q))
    return out.audio_codes[0]  # [chunks = 1, B, K, T] -> [B, K, T]


def _decode(model, codes: torch.Tensor) -> torch.Tensor:
    return model.decode(codes[None], [None]).audio_values


def _latent_scale(model) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std over frames of the encoder's output on 1 s of noise (random weights)."""
    noise = 0.1 * torch.randn(1, 1, 24000, generator=torch.Generator().manual_seed(0))
    z = model.encoder(noise)[0]  # [D, T]
    return z.mean(-1), z.std(-1).clamp_min(1e-8)


register_adapter(AdapterSpec(
    name="encodec-24k", description="EnCodec 24 kHz (transformers; facebook/encodec_24khz): causal, 75 Hz, RVQ up to 32 x 1024",
    package="transformers", hub_id="facebook/encodec_24khz", sample_rate=24000, channels=1, hop_length=320,
    codebook_size=1024, max_codebooks=32, default_codebooks=8, codebook_choices=(2, 4, 8, 16, 32),
    causal=True, lookahead=0, build=_build, encode=_encode, decode=_decode, latent_scale=_latent_scale,
))
