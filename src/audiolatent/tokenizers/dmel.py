"""dMel: every log-mel bin quantised on its own to a few uniform levels.

After Bai et al., "dMel: Speech Tokenization made Simple" (2024): no learned codebook, no
training. Each of the ``n_mels`` log-mel values of a frame is an independent codebook of
``n_levels`` symbols (16 = 4 bits in the paper). Codes ``[B, n_mels, T]``, codebook sizes
``(n_levels,) * n_mels``; nominal rate = frame_rate x n_mels x log2(n_levels) bits/s
(dmel-16k: 100 frames/s x 80 x 4 bits = 32 000 bits/s).

Quantiser: ``n_levels`` levels equally spaced over a *fixed* log range, endpoints included::

    step   = (max_log - min_log) / (n_levels - 1)
    code   = round((clamp(x, min_log, max_log) - min_log) / step)     # 0 .. n_levels - 1
    x_hat  = min_log + code * step                                    # the level (its cell's centre)

The range is fixed (not per utterance, as in the paper) so codes mean the same energy in every
file. The defaults ``[ln(1e-5), ln(10)] = [-11.51, 2.30]`` span mel-16k's floor (digital
silence -> code 0, decoded back exactly to the floor, i.e. to silence) up to above a
full-scale sine (its peak bin is about 2.27 = ln 9.6 with mel-16k); louder values clamp to
``n_levels - 1``. Step for 16 levels: 0.921 nepers (8.0 dB).

Decode: codes -> levels -> log-mel -> :class:`MelTokenizer`'s NNLS + Griffin-Lim synthesis
(``dmel-16k-pghi``: + RTPGHI phase instead, :mod:`audiolatent.nn.pghi`).
Like mel, dMel cannot stream (Griffin-Lim needs the whole signal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from audiolatent.core.errors import ConfigError
from audiolatent.core.latent import Stream
from audiolatent.core.registry import register_kind, register_tokenizer
from audiolatent.core.tokenizer import Tokenizer
from audiolatent.quantize.levels import uniform_codes, uniform_values
from audiolatent.tokenizers.mel import MelConfig, MelTokenizer, mel_16k_config, refuse_streaming

__all__ = ["DMelConfig", "DMelTokenizer", "quantize_log_mel", "dequantize_log_mel"]


def quantize_log_mel(log_mel: torch.Tensor, n_levels: int, min_log: float, max_log: float) -> torch.Tensor:
    """Log-mel values (any shape) -> integer codes in ``[0, n_levels)`` (long, same shape)."""
    return uniform_codes(log_mel, n_levels, min_log, max_log)


def dequantize_log_mel(codes: torch.Tensor, n_levels: int, min_log: float, max_log: float) -> torch.Tensor:
    """Integer codes -> float32 log-mel levels ``min_log + code * step``."""
    return uniform_values(codes, n_levels, min_log, max_log)


@dataclass
class DMelConfig:
    """A mel analysis (nested :class:`MelConfig`) plus the fixed uniform quantiser of each bin.

    Attributes:
        mel: the log-mel features and Griffin-Lim synthesis (default: mel-16k).
        n_levels: levels per mel bin (codebook size; 16 = 4 bits).
        min_log, max_log: fixed natural-log range the levels span (values outside are clamped).
    """

    mel: MelConfig = field(default_factory=mel_16k_config)
    n_levels: int = 16
    min_log: float = math.log(1e-5)
    max_log: float = math.log(10.0)

    def __post_init__(self) -> None:
        if self.n_levels < 2:
            raise ConfigError(f"DMelConfig: n_levels must be >= 2, got {self.n_levels}")
        if not self.min_log < self.max_log:
            raise ConfigError(f"DMelConfig: need min_log < max_log, got [{self.min_log}, {self.max_log}]")


@register_kind
class DMelTokenizer(Tokenizer):
    """Discrete log-mel: codes ``[B, n_mels, T]``, one ``n_levels`` codebook per mel bin.

    Analysis and synthesis are those of the contained :class:`MelTokenizer` (``self.mel``).
    """

    kind = "dmel"
    config_class = DMelConfig

    def __init__(self, config: DMelConfig | None = None) -> None:
        config = DMelConfig() if config is None else config
        super().__init__(config)
        self.mel = MelTokenizer(config.mel)

    @property
    def sample_rate(self) -> int:
        return self.mel.sample_rate

    @property
    def hop_length(self) -> int:
        return self.mel.hop_length

    @property
    def causal(self) -> bool:
        return False

    @property
    def lookahead(self) -> int | None:
        return None  # Griffin-Lim needs the whole signal

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (self.config.n_levels,) * self.config.mel.n_mels

    def streaming(self, batch_size: int = 1):
        """Always raises StreamingError: Griffin-Lim needs the whole signal."""
        raise refuse_streaming(self.name)

    def quantize(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, n_mels, T]`` -> codes ``[B, n_mels, T]`` (long)."""
        c = self.config
        return quantize_log_mel(log_mel, c.n_levels, c.min_log, c.max_log)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, n_mels, T]`` -> log-mel levels ``[B, n_mels, T]`` (float32)."""
        c = self.config
        return dequantize_log_mel(codes, c.n_levels, c.min_log, c.max_log)

    def _encode(self, audio: torch.Tensor) -> list[Stream]:
        return [Stream(self.quantize(self.mel.log_mel(audio)), self.frame_rate, self.codebook_sizes, "dmel")]

    def _decode(self, streams: list[Stream]) -> torch.Tensor:  # Tokenizer.decode has checked the stream
        return self.mel.synthesize(self.dequantize(streams[0].values))


register_tokenizer(
    "dmel-16k", lambda: DMelTokenizer(DMelConfig(mel_16k_config(), n_levels=16)),
    "dMel, mel-16k features with each of 80 bins quantised to 16 levels (100 frames/s, 32 kbps nominal)",
    family="handcrafted",
)
register_tokenizer(
    "dmel-16k-pghi", lambda: DMelTokenizer(DMelConfig(replace(mel_16k_config(), synthesis="pghi"), n_levels=16)),
    "dMel codes of dmel-16k decoded without iterations: NNLS magnitude + RTPGHI phase (as mel-16k-pghi)",
    family="handcrafted",
)
