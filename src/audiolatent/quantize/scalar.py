"""Scalar quantisation of every channel (SQ-Codec; Yang et al. 2024, "SimpleSpeech").

Each channel of ``z [B, D, T]`` is squashed by ``tanh`` to (-1, 1) and rounded to one of
``levels`` uniformly spaced values in [-1, 1] (straight-through gradient):

    step = 2 / (levels - 1);   index = round((tanh(z) + 1) / step) in [0, levels);   value = index * step - 1

The latent is either discrete -- ``as_discrete=True``: codes ``long [B, D, T]``, D codebooks of
``levels`` entries -- or the quantised values themselves, a bounded continuous latent
``float [B, D, T]`` in [-1, 1] on a grid (``as_discrete=False``; SimpleSpeech models these with
diffusion). No losses, nothing to learn or sync. Stats (discrete): ``usage``/``perplexity``
``[D]`` per channel.
"""

from __future__ import annotations

import torch

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec
from audiolatent.quantize.functional import straight_through
from audiolatent.quantize.registry import register_bottleneck

__all__ = ["ScalarQuantizer"]


def per_channel_stats(codes: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``codebook_stats`` of each channel of ``codes long [B, D, T]`` at once: ``[D]``, ``[D]``."""
    d = codes.shape[1]
    offsets = torch.arange(d, device=codes.device)[None, :, None] * levels
    counts = torch.bincount((codes + offsets).reshape(-1), minlength=d * levels).view(d, levels).float()
    probs = counts / counts.sum(dim=1, keepdim=True).clamp_min(1)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(dim=1)
    return (counts > 0).float().mean(dim=1), entropy.exp()


@register_bottleneck
class ScalarQuantizer(Bottleneck):
    """tanh + uniform rounding to ``levels`` values per channel.

    Args:
        dim: channels D of ``z`` (each one is quantised on its own).
        levels: number of values per channel (>= 2; odd keeps 0 on the grid).
        as_discrete: discrete codes stream (True) or continuous quantised values (False).
    """

    kind = "scalar"

    def __init__(self, dim: int, levels: int = 9, as_discrete: bool = True) -> None:
        super().__init__()
        if levels < 2:
            raise ConfigError(f"scalar: levels must be >= 2, got {levels}")
        self.dim = dim
        self.levels = levels
        self.as_discrete = as_discrete
        self.step = 2.0 / (levels - 1)

    def _indices(self, bounded: torch.Tensor) -> torch.Tensor:
        """Values in [-1, 1] -> (float) grid indices in [0, levels)."""
        return torch.round((bounded + 1) / self.step).clamp_(0, self.levels - 1)

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        """``z [B, D, T]`` -> ``z_q [B, D, T]`` on the grid; ``n_q`` is ignored."""
        bounded = torch.tanh(z)
        index = self._indices(bounded.detach())
        z_q = straight_through(index * self.step - 1, bounded)
        stats: dict[str, torch.Tensor | float] = {}
        if self.as_discrete:
            codes = index.long()
            usage, perplexity = per_channel_stats(codes, self.levels)
            stats = {"usage": usage, "perplexity": perplexity}
            streams = [codes]
        else:
            streams = [z_q.detach()]
        return BottleneckOutput(z_q, streams, {}, stats)

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:
        """``z [B, D, T]`` -> codes ``long [B, D, T]`` or values ``[B, D, T]`` in [-1, 1]."""
        index = self._indices(torch.tanh(z))
        return [index.long() if self.as_discrete else index * self.step - 1]

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:
        """Codes or values ``[B, D, T]`` -> ``z_q [B, D, T]``."""
        latent = streams[0]
        if self.as_discrete:
            return latent.to(torch.get_default_dtype()) * self.step - 1
        return latent

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        if self.as_discrete:
            return [StreamSpec("discrete", (self.levels,) * self.dim)]
        return [StreamSpec("continuous", dim=self.dim, name="values")]
