"""Fixed uniform levels per channel over a fixed range: the quantiser of dMel, as a bottleneck.

Each channel of ``z [B, D, T]`` is rounded on its own to one of ``n_levels`` values equally
spaced over ``[min_value, max_value]``, endpoints included (no squashing, no learning)::

    step  = (max_value - min_value) / (n_levels - 1)
    code  = round((clamp(z, min_value, max_value) - min_value) / step)   # 0 .. n_levels - 1
    z_q   = min_value + code * step

It exists so that a codec whose encoder is a fixed feature extractor (the log-mel frontend of
:mod:`audiolatent.tokenizers.vocoder`) can carry exactly the codes of ``dmel-16k``
(:mod:`audiolatent.tokenizers.dmel` uses :func:`uniform_codes` / :func:`uniform_values`) while
its decoder is trained. Values outside the range clamp to the end levels. Training passes the
gradient straight through the rounding. No losses, nothing to sync. Stats: ``usage`` and
``perplexity`` per channel ``[D]``.
"""

from __future__ import annotations

import torch

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec
from audiolatent.quantize.functional import straight_through
from audiolatent.quantize.registry import register_bottleneck
from audiolatent.quantize.scalar import per_channel_stats

__all__ = ["UniformLevels", "uniform_codes", "uniform_values"]


def uniform_codes(x: torch.Tensor, n_levels: int, min_value: float, max_value: float) -> torch.Tensor:
    """Values (any shape) -> integer codes in ``[0, n_levels)`` (long, same shape)."""
    step = (max_value - min_value) / (n_levels - 1)
    scaled = (x.clamp(min_value, max_value) - min_value) / step
    return scaled.round().long().clamp_(0, n_levels - 1)


def uniform_values(codes: torch.Tensor, n_levels: int, min_value: float, max_value: float) -> torch.Tensor:
    """Integer codes -> float32 levels ``min_value + code * step``."""
    step = (max_value - min_value) / (n_levels - 1)
    return min_value + codes.to(torch.float32) * step


@register_bottleneck
class UniformLevels(Bottleneck):
    """``n_levels`` fixed values per channel over ``[min_value, max_value]`` (see the module docstring).

    Args:
        dim: channels D of ``z``.
        n_levels: values per channel (>= 2), the size of each channel's codebook.
        min_value, max_value: the range the levels span.
        name: name of the codes stream.
    """

    kind = "levels"

    def __init__(self, dim: int, n_levels: int = 16, min_value: float = -1.0, max_value: float = 1.0,
                 name: str = "codes") -> None:
        super().__init__()
        if n_levels < 2:
            raise ConfigError(f"levels: n_levels must be >= 2, got {n_levels}")
        if not min_value < max_value:
            raise ConfigError(f"levels: need min_value < max_value, got [{min_value}, {max_value}]")
        self.dim, self.n_levels, self.name = dim, n_levels, name
        self.min_value, self.max_value = float(min_value), float(max_value)

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        """``z [B, D, T]`` -> ``z_q`` on the levels (straight-through gradient); ``n_q`` is ignored."""
        codes = self.encode(z)[0]
        z_q = straight_through(self.decode([codes]).to(z.dtype), z)
        usage, perplexity = per_channel_stats(codes, self.n_levels)
        return BottleneckOutput(z_q, [codes], {}, {"usage": usage, "perplexity": perplexity})

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:
        """``z [B, D, T]`` -> codes ``long [B, D, T]``."""
        return [uniform_codes(z, self.n_levels, self.min_value, self.max_value)]

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:
        """Codes ``[B, D, T]`` -> levels ``[B, D, T]`` (float32)."""
        return uniform_values(streams[0], self.n_levels, self.min_value, self.max_value)

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        return [StreamSpec("discrete", (self.n_levels,) * self.dim, name=self.name)]
