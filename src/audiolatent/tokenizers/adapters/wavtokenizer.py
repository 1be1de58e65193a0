"""WavTokenizer (Ji et al., 2025) through ``transformers``: ``wavtokenizer-40`` and ``wavtokenizer-75``.

One codebook of 4096 codes per frame at 24 kHz: a non-causal SEANet encoder (EnCodec's, with
its LSTM) and a Vocos decoder (ConvNeXt backbone with attention, iSTFT head).

================  =====  ========  ==========  =====================================================
name              hop    frames/s  kbps        weights
================  =====  ========  ==========  =====================================================
wavtokenizer-40   600    40        0.48        swiss-ai/wavtokenizer-large-unify-40token
wavtokenizer-75   320    75        0.9         swiss-ai/wavtokenizer-large-speech-75token
================  =====  ========  ==========  =====================================================

``transformers.WavTokenizerConfig()``'s defaults are the 40-token model; the 75-token one
differs by its ratios ``[8, 5, 4, 2]`` (the original's ``dowmsamples``). The 40-token id is
the one transformers documents; the 75-token id follows the same naming and was not checked
against the hub here (no network): pass ``weights=`` a local directory if it differs.
"""

from __future__ import annotations

import torch

from audiolatent.tokenizers.adapters.base import AdapterSpec, apply_overrides, from_pretrained, register_adapter

MODELS = {
    "wavtokenizer-40": dict(hub_id="swiss-ai/wavtokenizer-large-unify-40token", upsampling_ratios=[6, 5, 5, 4]),
    "wavtokenizer-75": dict(hub_id="swiss-ai/wavtokenizer-large-speech-75token", upsampling_ratios=[8, 5, 4, 2]),
}


def _builder(name: str):
    def build(weights: str, revision: str, pretrained: bool, overrides: dict) -> torch.nn.Module:
        from transformers import WavTokenizerConfig, WavTokenizerModel

        if pretrained:
            return from_pretrained(WavTokenizerModel, weights, revision, name)
        config = WavTokenizerConfig(upsampling_ratios=MODELS[name]["upsampling_ratios"])
        return WavTokenizerModel(apply_overrides(config, overrides))
    return build


def _encode(model, audio: torch.Tensor, n_q: int) -> torch.Tensor:
    return model.encode(audio).audio_codes  # [B, 1, T]


def _decode(model, codes: torch.Tensor) -> torch.Tensor:
    audio = model.decode(codes).audio_values
    return audio[:, None] if audio.dim() == 2 else audio


def _latent_scale(model) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std over frames of the encoder's output on 1 s of noise (random weights)."""
    noise = 0.1 * torch.randn(1, 1, 24000, generator=torch.Generator().manual_seed(0))
    z = model.encoder_model.encoder(noise)[0]  # [D, T]
    return z.mean(-1), z.std(-1).clamp_min(1e-8)


for _name, _model in MODELS.items():
    _hop = 1
    for _r in _model["upsampling_ratios"]:
        _hop *= _r
    register_adapter(AdapterSpec(
        name=_name, description=f"WavTokenizer (transformers; {_model['hub_id']}): non-causal, {24000 // _hop} Hz, 1 x 4096",
        package="transformers", hub_id=_model["hub_id"], sample_rate=24000, channels=1, hop_length=_hop,
        codebook_size=4096, max_codebooks=1, default_codebooks=1, causal=False, lookahead=None,
        build=_builder(_name), encode=_encode, decode=_decode, latent_scale=_latent_scale,
        streams_note=f"1 x 4096 at {24000 // _hop} Hz",
    ))
