"""EnCodec (Défossez et al., 2022) through ``transformers``: ``encodec-24k`` and ``encodec-48k``.

``encodec-24k``: the 24 kHz mono model, causal SEANet + LSTM, 75 frames/s, 32 RVQ codebooks of
1024 (1.5 / 3 / 6 / 12 / 24 kbps = 2 / 4 / 8 / 16 / 32 codebooks; default 6 kbps). Weights:
``facebook/encodec_24khz``; ``transformers.EncodecConfig()``'s defaults are that model's
architecture, so random weights have its exact shape.

``encodec-48k``: the 48 kHz stereo model, non-causal, 150 frames/s, 16 RVQ codebooks of 1024
(3 / 6 / 12 / 24 kbps = 2 / 4 / 8 / 16 codebooks; default 6 kbps). Weights:
``facebook/encodec_48khz``. It encodes 1 s chunks, each normalised by its RMS, and the decoder
needs that scale back. The library's chunks overlap by 1 % (a 0.99 s stride, which lies on no
frame grid), so the adapter cuts the audio into 1 s chunks *without* overlap (its base frame is
the 1 s chunk: ``hop_length`` 48000) and encodes each with the library's own
``_encode_frame`` (codes equal the library's for that chunk, tested). The scale travels as a
second discrete stream ``scale`` at 1 Hz: log2 of the scale in steps of 1/128 octave (12 bits,
gain error below 0.3 %), counted in the bitrate (+12 bits/s). The decoder joins the decoded
chunks end to end where the library would crossfade 480 samples: a known difference. Within a
chunk the model is non-causal, but chunks are independent, so it is causal on its 1 s grid
(lookahead 0 past the chunk, latency 1 s) and encoding streams exactly in whole seconds.
"""

from __future__ import annotations

import torch

from audiolatent.core.latent import Stream
from audiolatent.tokenizers.adapters.base import AdapterSpec, apply_overrides, from_pretrained, register_adapter

FRAME_BITS = 10  # log2(1024)

#: facebook/encodec_48khz's config.json (the fields that differ from EncodecConfig()'s defaults)
ARCH_48K = dict(sampling_rate=48000, audio_channels=2, target_bandwidths=[3.0, 6.0, 12.0, 24.0],
                chunk_length_s=1.0, overlap=0.01, norm_type="time_group_norm", normalize=True,
                use_causal_conv=False)
#: the 48 kHz model's scale code: log2(scale) * SCALE_STEPS + SCALE_OFFSET, clamped to 12 bits
SCALE_STEPS, SCALE_OFFSET, SCALE_BITS = 128, 27 * 128, 12


def _builder(name: str, arch: dict):
    def build(weights: str, revision: str, pretrained: bool, overrides: dict) -> torch.nn.Module:
        from transformers import EncodecConfig, EncodecModel

        if pretrained:
            return from_pretrained(EncodecModel, weights, revision, name)
        return EncodecModel(apply_overrides(EncodecConfig(**arch), overrides))
    return build


def _bandwidth(model, n_q: int) -> float:
    return n_q * model.config.frame_rate * FRAME_BITS / 1000


def _encode(model, audio: torch.Tensor, n_q: int) -> torch.Tensor:
    out = model.encode(audio, bandwidth=_bandwidth(model, n_q))
    return out.audio_codes[0]  # [chunks = 1, B, K, T] -> [B, K, T]


def _decode(model, codes: torch.Tensor) -> torch.Tensor:
    return model.decode(codes[None], [None]).audio_values


def scale_code(scale: torch.Tensor) -> torch.Tensor:
    """The 12-bit code of a chunk's RMS scale (see the module docstring)."""
    code = torch.round(torch.log2(scale.double()) * SCALE_STEPS) + SCALE_OFFSET
    return code.clamp(0, 2**SCALE_BITS - 1).long()


def scale_value(code: torch.Tensor) -> torch.Tensor:
    return torch.exp2((code.double() - SCALE_OFFSET) / SCALE_STEPS).float()


def _encode_48k(model, audio: torch.Tensor, n_q: int) -> list[Stream]:
    batch, channels, n = audio.shape
    chunk = model.config.chunk_length
    chunks = n // chunk  # the audio is framed to whole base frames (1 s chunks)
    pieces = audio.reshape(batch, channels, chunks, chunk).permute(0, 2, 1, 3).reshape(batch * chunks, channels, chunk)
    codes, scale = model._encode_frame(pieces, _bandwidth(model, n_q))  # [B*n, K, 150], [B*n, 1]
    codes = codes.reshape(batch, chunks, n_q, -1).permute(0, 2, 1, 3).reshape(batch, n_q, -1)
    scales = scale_code(scale.reshape(batch, 1, chunks))
    frame_rate = model.config.frame_rate
    return [Stream(scales, model.config.sampling_rate / chunk, (2**SCALE_BITS,), "scale"),
            Stream(codes.long(), frame_rate, (1024,) * n_q, "codes")]


def _decode_48k(model, values: list[torch.Tensor]) -> torch.Tensor:
    scales, codes = values
    batch, n_q, frames = codes.shape
    chunks = scales.shape[-1]
    per = frames // chunks
    pieces = codes.reshape(batch, n_q, chunks, per).permute(0, 2, 1, 3).reshape(batch * chunks, n_q, per)
    audio = model._decode_frame(pieces, scale_value(scales.reshape(batch * chunks)))  # [B*n, C, chunk]
    return audio.reshape(batch, chunks, audio.shape[1], -1).permute(0, 2, 1, 3).reshape(batch, audio.shape[1], -1)


def _latent_scale(model) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std over frames of the encoder's output on 1 s of noise (random weights)."""
    channels, rate = model.config.audio_channels, model.config.sampling_rate
    noise = torch.randn(1, channels, rate, generator=torch.Generator().manual_seed(0))
    noise = noise * (0.1 if not model.config.normalize else 1.0)
    z = model.encoder(noise)[0]  # [D, T]
    return z.mean(-1), z.std(-1).clamp_min(1e-8)


register_adapter(AdapterSpec(
    name="encodec-24k", description="EnCodec 24 kHz (transformers; facebook/encodec_24khz): causal, 75 Hz, RVQ up to 32 x 1024",
    package="transformers", hub_id="facebook/encodec_24khz", sample_rate=24000, channels=1, hop_length=320,
    codebook_size=1024, max_codebooks=32, default_codebooks=8, codebook_choices=(2, 4, 8, 16, 32),
    causal=True, lookahead=0, build=_builder("encodec-24k", {}), encode=_encode, decode=_decode,
    latent_scale=_latent_scale, streams_note="RVQ 2-32 x 1024 at 75 Hz",
))

register_adapter(AdapterSpec(
    name="encodec-48k", description="EnCodec 48 kHz stereo (transformers; facebook/encodec_48khz): 1 s chunks (1 s latency), "
                                    "150 Hz, RVQ up to 16 x 1024, + a 1 Hz scale stream",
    package="transformers", hub_id="facebook/encodec_48khz", sample_rate=48000, channels=2, hop_length=48000,
    codebook_size=1024, max_codebooks=16, default_codebooks=4, codebook_choices=(2, 4, 8, 16),
    causal=True, lookahead=0, build=_builder("encodec-48k", ARCH_48K), encode=_encode_48k, decode=_decode_48k,
    stream_encode=lambda model, audio, n_q, state: _encode_48k(model, audio, n_q),
    latent_scale=_latent_scale, bits=lambda n_q: 150.0 * n_q * FRAME_BITS + SCALE_BITS,
    streams_note="RVQ 2-16 x 1024 at 150 Hz + scale 1 x 4096 at 1 Hz",
))
