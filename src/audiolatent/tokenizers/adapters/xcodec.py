"""X-Codec (Ye et al., 2025) through ``transformers``: ``xcodec-hubert``.

A dual encoder: an acoustic DAC encoder beside HuBERT features (the mean of its hidden layers)
through a semantic encoder, concatenated, projected and quantised by an RVQ of 1024-code
codebooks at 50 frames/s, 16 kHz. Bitrates 0.5 / 1 / 1.5 / 2 / 4 kbps = 1 / 2 / 3 / 4 / 8
codebooks (default 4 kbps). Non-causal (HuBERT attends over the whole input). Weights:
``hf-audio/xcodec-hubert-librispeech`` (the id transformers documents); ``XcodecConfig()``'s
defaults are its architecture (161 M parameters, checked on the meta device).
"""

from __future__ import annotations

import torch

from audiolatent.tokenizers.adapters.base import (AdapterSpec, apply_overrides, capture_input, from_pretrained,
                                                  register_adapter)

NAME, HUB_ID = "xcodec-hubert", "hf-audio/xcodec-hubert-librispeech"


def _build(weights: str, revision: str, pretrained: bool, overrides: dict) -> torch.nn.Module:
    from transformers import XcodecConfig, XcodecModel

    if pretrained:
        return from_pretrained(XcodecModel, weights, revision, NAME)
    return XcodecModel(apply_overrides(XcodecConfig(), overrides))


def _encode(model, audio: torch.Tensor, n_q: int) -> torch.Tensor:
    return model.encode(audio, bandwidth=_bandwidth(model, n_q)).audio_codes  # [B, n_q, T]


def _bandwidth(model, n_q: int) -> float:
    bandwidth = n_q * model.config.frame_rate * 10 / 1000
    return int(bandwidth) if bandwidth == int(bandwidth) else bandwidth  # the config lists 1, 2, 4 as ints


def _decode(model, codes: torch.Tensor) -> torch.Tensor:
    return model.decode(codes).audio_values


def _latent_scale(model) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std per dimension of the quantiser's input on 1 s of noise (random weights)."""
    noise = 0.1 * torch.randn(1, 1, 16000, generator=torch.Generator().manual_seed(0))
    z = capture_input(model.quantizer, "encode", lambda: model.encode(noise))[0]  # [D, T]
    return z.mean(-1), z.std(-1).clamp_min(1e-8)


register_adapter(AdapterSpec(
    name=NAME, description=f"X-Codec, HuBERT semantic branch (transformers; {HUB_ID}): non-causal, 50 Hz, RVQ up to 8 x 1024",
    package="transformers", hub_id=HUB_ID, sample_rate=16000, channels=1, hop_length=320, codebook_size=1024,
    max_codebooks=8, default_codebooks=8, codebook_choices=(1, 2, 3, 4, 8), causal=False, lookahead=None,
    build=_build, encode=_encode, decode=_decode, latent_scale=_latent_scale, streams_note="RVQ 1-8 x 1024 at 50 Hz",
))
