"""Waveform patches: the latent is the audio itself, cut into blocks of raw samples.

The encoder-free reference point of the tetrahedron (does a second-stage model need a codec at
all? — the question behind raw-waveform patch models such as WaveTTS or the "raw projection"
audio inputs of recent multimodal LMs). Frame ``t`` of the latent is samples
``[t * P, (t + 1) * P)`` of each channel, as a continuous vector of ``P * C`` values: the patch
of ``P = hop_length`` samples, channel-major (``[c0 s0 .. c0 s(P-1), c1 s0 ...]``).

* **Rate**: ``P * C`` values per frame at ``sample_rate / P`` frames/s, i.e. exactly the sample
  rate times the channels in values/s (no compression at all).
* **Distortion**: none: ``decode(encode(x)) == x`` bit for bit (trailing zero padding of a partial
  last patch is trimmed offline).
* **Streaming**: causal, lookahead 0, no state; chunked encode/decode equal offline trivially.
* **Modelability**: what the bench's probes make of raw samples, beside the learned latents.

Example::

    tok = load_tokenizer("waveform-patch-16k")      # 320 samples -> one 320-d frame, 50 frames/s
    latent = tok.encode(audio)                      # continuous [B, 320, T]
    assert torch.equal(tok.decode(latent), audio)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from audiolatent.core.errors import ConfigError
from audiolatent.core.latent import Stream
from audiolatent.core.registry import register_kind, register_tokenizer
from audiolatent.core.tokenizer import Tokenizer

__all__ = ["WaveformPatchConfig", "WaveformPatchTokenizer"]


@dataclass
class WaveformPatchConfig:
    """Attributes: ``sample_rate`` (Hz), ``patch`` (samples per frame = hop), ``channels``."""

    sample_rate: int = 16000
    patch: int = 320
    channels: int = 1

    def __post_init__(self) -> None:
        for name in ("sample_rate", "patch", "channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"WaveformPatchConfig: {name} must be a positive integer, got {value!r}")


@register_kind
class WaveformPatchTokenizer(Tokenizer):
    """Raw samples in blocks of ``patch``: continuous ``[B, patch * channels, T]`` (module docstring)."""

    kind = "waveform-patch"
    config_class = WaveformPatchConfig

    def __init__(self, config: WaveformPatchConfig | None = None) -> None:
        super().__init__(WaveformPatchConfig() if config is None else config)

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def channels(self) -> int:
        return self.config.channels

    @property
    def hop_length(self) -> int:
        return self.config.patch

    @property
    def causal(self) -> bool:
        return True

    @property
    def lookahead(self) -> int:
        return 0

    def _encode(self, audio: torch.Tensor) -> list[Stream]:
        batch, channels, n = audio.shape
        frames = n // self.hop_length
        patches = audio.reshape(batch, channels, frames, self.hop_length).permute(0, 1, 3, 2)  # [B, C, P, T]
        return [Stream(patches.reshape(batch, channels * self.hop_length, frames).contiguous(), self.frame_rate, None,
                       "samples")]

    def _decode(self, streams: list[Stream]) -> torch.Tensor:
        values = streams[0].values  # [B, C * P, T]
        batch, _, frames = values.shape
        patches = values.reshape(batch, self.channels, self.hop_length, frames).permute(0, 1, 3, 2)
        return patches.reshape(batch, self.channels, frames * self.hop_length)


register_tokenizer(
    "waveform-patch-16k", lambda: WaveformPatchTokenizer(WaveformPatchConfig(16000, 320, 1)),
    "encoder-free reference: raw 16 kHz samples in 320-sample patches (one 320-d frame per 20 ms, exactly invertible)",
    family="handcrafted",
)
