"""The Descript Audio Codec (Kumar et al., 2023) through ``transformers``: ``dac-16k``, ``dac-24k``, ``dac-44k``.

Non-causal convolutional encoder/decoder with Snake activations, RVQ of 1024-code codebooks
(factorised, 8-d lookups). ``transformers.DacConfig()``'s defaults pair a 16 kHz rate with the
44.1 kHz architecture, so each name here spells out its checkpoint's architecture (from the
``config.json`` of ``descript/dac_16khz``, ``dac_24khz``, ``dac_44khz``):

=========  =======  ====  ===========  ==========  ===================
name       rate     hop   frames/s     codebooks   kbps at all books
=========  =======  ====  ===========  ==========  ===================
dac-16k    16000    320   50           12          6.0
dac-24k    24000    320   75           32          24.0
dac-44k    44100    512   86.13        9           7.75
=========  =======  ====  ===========  ==========  ===================

The decoder returns a few samples less than ``T * hop``; the adapter pads them back.
"""

from __future__ import annotations

import torch

from audiolatent.tokenizers.adapters.base import AdapterSpec, apply_overrides, from_pretrained, register_adapter

#: round-trip lookahead in samples, probed on the random-weight architecture (see tests/tokenizers/test_adapters.py)
#: (a single-phase probe found 4206, 4258 and 6534 samples: 13-14 frames; declared rounded up to whole frames)
LOOKAHEAD = {"dac-16k": 14 * 320, "dac-24k": 14 * 320, "dac-44k": 13 * 512}

ARCHITECTURES = {
    "dac-16k": dict(sampling_rate=16000, hop_length=320, downsampling_ratios=[2, 4, 5, 8], upsampling_ratios=[8, 5, 4, 2],
                    n_codebooks=12, hub_id="descript/dac_16khz"),
    "dac-24k": dict(sampling_rate=24000, hop_length=320, downsampling_ratios=[2, 4, 5, 8], upsampling_ratios=[8, 5, 4, 2],
                    n_codebooks=32, hub_id="descript/dac_24khz"),
    "dac-44k": dict(sampling_rate=44100, hop_length=512, downsampling_ratios=[2, 4, 8, 8], upsampling_ratios=[8, 8, 4, 2],
                    n_codebooks=9, hub_id="descript/dac_44khz"),
}


def config_of(name: str):
    """The ``transformers.DacConfig`` of the checkpoint behind ``name``."""
    from transformers import DacConfig

    arch = {k: v for k, v in ARCHITECTURES[name].items() if k != "hub_id"}
    return DacConfig(codebook_size=1024, codebook_dim=8, encoder_hidden_size=64, decoder_hidden_size=1536, **arch)


def _builder(name: str):
    def build(weights: str, revision: str, pretrained: bool, overrides: dict) -> torch.nn.Module:
        from transformers import DacModel

        if pretrained:
            return from_pretrained(DacModel, weights, revision, name)
        return DacModel(apply_overrides(config_of(name), overrides))
    return build


def _encode(model, audio: torch.Tensor, n_q: int) -> torch.Tensor:
    return model.encode(audio, n_quantizers=n_q).audio_codes  # [B, n_q, T]


def _decode(model, codes: torch.Tensor) -> torch.Tensor:
    audio = model.decode(audio_codes=codes).audio_values  # [B, N]
    return audio[:, None] if audio.dim() == 2 else audio


for _name, _arch in ARCHITECTURES.items():
    register_adapter(AdapterSpec(
        name=_name, description=f"DAC {_arch['sampling_rate'] / 1000:g} kHz (transformers; {_arch['hub_id']}): "
                                f"non-causal, {_arch['sampling_rate'] / _arch['hop_length']:.4g} Hz, RVQ up to "
                                f"{_arch['n_codebooks']} x 1024",
        package="transformers", hub_id=_arch["hub_id"], sample_rate=_arch["sampling_rate"], channels=1,
        hop_length=_arch["hop_length"], codebook_size=1024, max_codebooks=_arch["n_codebooks"],
        default_codebooks=_arch["n_codebooks"], causal=False, lookahead=LOOKAHEAD[_name],
        build=_builder(_name), encode=_encode, decode=_decode,
    ))
