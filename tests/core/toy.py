"""A tiny real tokenizer for testing the protocol: per-frame mean, quantised to `levels` codes."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from audiolatent.core.latent import Stream
from audiolatent.core.registry import register_kind
from audiolatent.core.tokenizer import Tokenizer


@dataclass
class ToyConfig:
    sample_rate: int = 16000
    hop_length: int = 4
    levels: int = 256


@register_kind
class ToyTokenizer(Tokenizer):
    kind = "toy-test"
    config_class = ToyConfig

    def __init__(self, config: ToyConfig | None = None) -> None:
        super().__init__(config or ToyConfig())
        self.gain = torch.nn.Parameter(torch.ones(1))

    sample_rate = property(lambda self: self.config.sample_rate)
    hop_length = property(lambda self: self.config.hop_length)
    causal = property(lambda self: True)
    lookahead = property(lambda self: 0)

    def _encode(self, audio):
        frames = audio.unflatten(-1, (-1, self.hop_length)).mean(-1)  # [B, 1, T]
        codes = ((frames.clamp(-1, 1) + 1) / 2 * (self.config.levels - 1)).round().long()
        return [Stream(codes, self.frame_rate, (self.config.levels,), "codes")]

    def _decode(self, streams):
        values = streams[0].values.float() / (self.config.levels - 1) * 2 - 1
        return (values * self.gain).repeat_interleave(self.hop_length, dim=-1)
