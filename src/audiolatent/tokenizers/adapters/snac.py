"""SNAC (Siuzdak et al., 2024) through the ``snac`` package: ``snac-24k``, ``snac-32k``, ``snac-44k``.

A multi-scale RVQ: each level quantises the latent average-pooled by its stride, so the codes
come as one stream per level, coarse to fine, every codebook of 4096 codes:

==========  =====  ====  ========================  ==========  ===============
name        rate   hop   levels (frames/s)          kbps        weights
==========  =====  ====  ========================  ==========  ===============
snac-24k    24000  512   11.7, 23.4, 46.9           0.98        hubertsiuzdak/snac_24khz (speech)
snac-32k    32000  384   10.4, 20.8, 41.7, 83.3     1.9         hubertsiuzdak/snac_32khz (music)
snac-44k    44100  384   14.4, 28.7, 57.4, 114.8    2.6         hubertsiuzdak/snac_44khz (music)
==========  =====  ====  ========================  ==========  ===============

The decoder adds noise (its ``NoiseBlock``s draw ``torch.randn``): decoding is not a
deterministic function of the codes (``deterministic = False``), so the bench probes the
encoder's reach and takes the declared round-trip lookahead.

Each level is a stream ``level0`` (coarsest; the tokenizer's base frame, ``hop_length`` =
encoder hop x coarsest stride) to ``levelN``. Non-causal convolutions; the 32 and 44 kHz
models add local attention over windows of 32 frames. The library pads the input to a multiple
of hop x lcm(coarsest stride, attention window); the adapter keeps the ``ceil(N / hop)`` frames
of the framing rule and, to decode, pads the codes back (repeating the last frame) to a length
the attention windows take, then trims the audio.
"""

from __future__ import annotations

import math
import warnings

import torch

from audiolatent.core.latent import Stream
from audiolatent.tokenizers.adapters.base import AdapterError, AdapterSpec, register_adapter

#: the config.json of each checkpoint (hubertsiuzdak/snac_24khz, _32khz, _44khz)
ARCHITECTURES = {
    "snac-24k": dict(sampling_rate=24000, encoder_dim=48, encoder_rates=[2, 4, 8, 8], decoder_dim=1024,
                     decoder_rates=[8, 8, 4, 2], attn_window_size=None, codebook_size=4096, codebook_dim=8,
                     vq_strides=[4, 2, 1], noise=True, depthwise=True),
    "snac-32k": dict(sampling_rate=32000, encoder_dim=64, encoder_rates=[2, 3, 8, 8], decoder_dim=1536,
                     decoder_rates=[8, 8, 3, 2], attn_window_size=32, codebook_size=4096, codebook_dim=8,
                     vq_strides=[8, 4, 2, 1], noise=True, depthwise=True),
    "snac-44k": dict(sampling_rate=44100, encoder_dim=64, encoder_rates=[2, 3, 8, 8], decoder_dim=1536,
                     decoder_rates=[8, 8, 3, 2], attn_window_size=32, codebook_size=4096, codebook_dim=8,
                     vq_strides=[8, 4, 2, 1], noise=True, depthwise=True),
}
HUB = {"snac-24k": "hubertsiuzdak/snac_24khz", "snac-32k": "hubertsiuzdak/snac_32khz", "snac-44k": "hubertsiuzdak/snac_44khz"}
#: round-trip lookahead in samples, probed on the random-weight architecture with the decoder's noise
#: off, rounded up to whole finest frames: snac-24k over 128 phases of two base frames (6464 samples);
#: snac-32k at 6 phases only (14234 samples; the 128-phase probe stopped on a whole-signal reading
#: that a direct check did not reproduce), and snac-44k shares its architecture. Lower bounds: the
#: bench probes the encoder again.
LOOKAHEAD = {"snac-24k": 13 * 512, "snac-32k": 38 * 384, "snac-44k": 38 * 384}


def _builder(name: str):
    def build(weights: str, revision: str, pretrained: bool, overrides: dict) -> torch.nn.Module:
        with warnings.catch_warnings():  # snac's layers call the deprecated torch.jit.script at import
            warnings.simplefilter("ignore", DeprecationWarning)
            from snac import SNAC

        if pretrained:
            try:
                return SNAC.from_pretrained(weights, revision=revision)
            except Exception as exc:  # noqa: BLE001 - hub and file errors alike: one line naming the id
                raise AdapterError(
                    f"{name}: cannot load weights {weights!r} (revision {revision}): {' '.join(str(exc).split())[:200]}. "
                    f"Download them on a machine with network (huggingface-cli download {weights}) and copy the "
                    f"cache, pass a local directory, or use pretrained=False for random weights") from None
        arch = dict(ARCHITECTURES[name])
        for key, value in overrides.items():
            if key not in arch:
                raise AdapterError(f"{name}: SNAC has no argument {key!r} to override")
            arch[key] = value
        return SNAC(**arch)
    return build


def _encode(model, audio: torch.Tensor, n_q: int) -> list[Stream]:
    frames = audio.shape[-1] // (model.hop_length * model.vq_strides[0])  # framed to whole coarse frames
    codes = model.encode(audio)  # one [B, T_i] per level, padded by the library
    rate = model.sampling_rate / model.hop_length
    return [Stream(c[:, None, : frames * stride_ratio].long(), rate / model.vq_strides[i], (model.codebook_size,), f"level{i}")
            for i, (c, stride_ratio) in enumerate(zip(codes, [model.vq_strides[0] // s for s in model.vq_strides]))]


def _decode(model, values: list[torch.Tensor]) -> torch.Tensor:
    frames = values[0].shape[-1]
    unit = math.lcm(model.vq_strides[0], model.attn_window_size or 1) // model.vq_strides[0]  # coarse frames
    padded = math.ceil(frames / unit) * unit
    codes = []
    for v, stride in zip(values, model.vq_strides):
        c = v[:, 0]
        extra = (padded - frames) * (model.vq_strides[0] // stride)
        codes.append(torch.cat([c, c[:, -1:].expand(-1, extra)], dim=-1) if extra else c)
    audio = model.decode(codes)
    return audio[..., : frames * model.hop_length * model.vq_strides[0]]


def _randomise(model, seed: int) -> None:
    """Codebooks drawn where each level's projected, L2-normalised latents of 2 s of noise lie
    (SNAC matches codes by cosine; N(0, 1) codebooks around latents of one direction give one code)."""
    generator = torch.Generator().manual_seed(seed)
    noise = 0.1 * torch.randn(1, 1, 2 * model.sampling_rate, generator=torch.Generator().manual_seed(seed))
    residual = model.encoder(model.preprocess(noise))
    for layer in model.quantizer.quantizers:
        pooled = torch.nn.functional.avg_pool1d(residual, layer.stride, layer.stride) if layer.stride > 1 else residual
        directions = torch.nn.functional.normalize(layer.in_proj(pooled)[0], dim=0)  # [codebook_dim, T]
        mean, std = directions.mean(-1), directions.std(-1).clamp_min(1e-8)
        layer.codebook.weight.copy_(torch.randn(layer.codebook.weight.shape, generator=generator) * std + mean)
        z_q, _ = layer(residual)
        residual = residual - z_q


for _name, _arch in ARCHITECTURES.items():
    _hop = math.prod(_arch["encoder_rates"])
    _strides = _arch["vq_strides"]
    _rates = [_arch["sampling_rate"] / _hop / s for s in _strides]
    register_adapter(AdapterSpec(
        name=_name, description=f"SNAC {_arch['sampling_rate'] / 1000:g} kHz (snac; {HUB[_name]}): non-causal, "
                                f"{len(_strides)} levels x 4096 at {', '.join(f'{r:.3g}' for r in _rates)} Hz",
        package="snac", hub_id=HUB[_name], sample_rate=_arch["sampling_rate"], channels=1, hop_length=_hop * _strides[0],
        codebook_size=4096, max_codebooks=len(_strides), default_codebooks=len(_strides), codebook_choices=(len(_strides),),
        causal=False, lookahead=LOOKAHEAD.get(_name), build=_builder(_name), encode=_encode, decode=_decode,
        randomise=_randomise, deterministic=False,
        bits=lambda n_q, rates=tuple(_rates): 12.0 * sum(rates),
        streams_note=f"{len(_strides)} levels x 4096 at {', '.join(f'{r:.3g}' for r in _rates)} Hz",
    ))
