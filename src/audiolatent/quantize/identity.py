"""Identity bottleneck: the encoder output itself is the (continuous) latent.

With ``latent_dim`` set, 1x1 convolutions project ``z [B, D, T]`` down to
``[B, latent_dim, T]`` and back (an unregularised autoencoder bottleneck, the baseline the
other bottlenecks are compared against). No losses, nothing to sync.
"""

from __future__ import annotations

import torch
from torch import nn

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec
from audiolatent.quantize.registry import register_bottleneck

__all__ = ["IdentityBottleneck"]


@register_bottleneck
class IdentityBottleneck(Bottleneck):
    """Continuous latent ``z`` (or a linear projection of it to ``latent_dim`` channels).

    Args:
        dim: channels D of ``z``.
        latent_dim: channels of the latent; ``None`` keeps ``z`` unchanged.
        name: name of the latent stream (``"mel"`` when ``z`` is a log-mel frontend's output).
    """

    kind = "identity"

    def __init__(self, dim: int, latent_dim: int | None = None, name: str = "latent") -> None:
        super().__init__()
        if latent_dim is not None and latent_dim < 1:
            raise ConfigError(f"identity: latent_dim must be >= 1 or null, got {latent_dim}")
        self.dim, self.name = dim, name
        self.latent_dim = latent_dim or dim
        projected = latent_dim is not None and latent_dim != dim
        self.in_proj = nn.Conv1d(dim, self.latent_dim, kernel_size=1) if projected else None
        self.out_proj = nn.Conv1d(self.latent_dim, dim, kernel_size=1) if projected else None

    def _encode(self, z: torch.Tensor) -> torch.Tensor:
        return self.in_proj(z) if self.in_proj is not None else z

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        """``z [B, D, T]`` -> ``z_q [B, D, T]``, stream ``[B, latent_dim, T]``."""
        latent = self._encode(z)
        return BottleneckOutput(self.decode([latent]), [latent])

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:
        """``z [B, D, T]`` -> ``[latent [B, latent_dim, T]]``."""
        return [self._encode(z)]

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:
        """``[latent [B, latent_dim, T]]`` -> ``z_q [B, D, T]``."""
        return self.out_proj(streams[0]) if self.out_proj is not None else streams[0]

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        return [StreamSpec("continuous", dim=self.latent_dim, name=self.name)]
