"""Diagonal Gaussian (VAE) bottleneck (Kingma & Welling 2014; as in Stable Audio's VAE).

A 1x1 convolution maps ``z [B, D, T]`` to a mean and a log-variance ``[B, latent_dim, T]``
each. In training the latent is a reparameterised sample ``mean + exp(logvar / 2) * eps``;
in eval mode it is the mean. A second 1x1 convolution maps the latent back to D channels.

Loss ``kl`` (unweighted; the trainer applies a small weight such as 1e-6): the KL divergence
to a standard normal prior in nats,

    kl = mean over batch and frames of  sum over latent dims of  0.5 * (mean^2 + var - 1 - logvar)

so it scales with ``latent_dim`` but not with the batch size or the duration. The log-variance
is clamped to ``[logvar_min, logvar_max]`` for stability.

Stream: continuous ``[B, latent_dim, T]``. ``encode(z)`` returns the mean; ``encode(z,
sample=True)`` a sample.
"""

from __future__ import annotations

import torch
from torch import nn

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec
from audiolatent.quantize.registry import register_bottleneck

__all__ = ["GaussianBottleneck", "gaussian_kl"]


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) in nats for ``[B, C, T]``: summed over C, mean over B, T."""
    return (0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)).sum(dim=1).mean()


@register_bottleneck
class GaussianBottleneck(Bottleneck):
    """VAE bottleneck with a ``latent_dim``-channel continuous latent.

    Args:
        dim: channels D of ``z``.
        latent_dim: channels of the latent.
        logvar_min, logvar_max: clamp of the predicted log-variance.
    """

    kind = "gaussian"

    def __init__(self, dim: int, latent_dim: int = 64, logvar_min: float = -30.0, logvar_max: float = 20.0) -> None:
        super().__init__()
        if latent_dim < 1:
            raise ConfigError(f"gaussian: latent_dim must be >= 1, got {latent_dim}")
        self.dim = dim
        self.latent_dim = latent_dim
        self.logvar_min, self.logvar_max = logvar_min, logvar_max
        self.in_proj = nn.Conv1d(dim, 2 * latent_dim, kernel_size=1)
        self.out_proj = nn.Conv1d(latent_dim, dim, kernel_size=1)

    def posterior(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z [B, D, T]`` -> ``(mean, logvar)``, each ``[B, latent_dim, T]``."""
        mean, logvar = self.in_proj(z).chunk(2, dim=1)
        return mean, logvar.clamp(self.logvar_min, self.logvar_max)

    @staticmethod
    def sample(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Reparameterised sample ``mean + exp(logvar / 2) * eps``, ``eps ~ N(0, 1)``."""
        return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        """``z [B, D, T]`` -> ``z_q [B, D, T]``; sampled latent in training, mean in eval."""
        mean, logvar = self.posterior(z)
        latent = self.sample(mean, logvar) if self.training else mean
        stats = {"latent_std": float(latent.detach().std()), "posterior_std": float(torch.exp(0.5 * logvar.detach()).mean())}
        return BottleneckOutput(self.out_proj(latent), [latent], {"kl": gaussian_kl(mean, logvar)}, stats)

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None, sample: bool = False) -> list[torch.Tensor]:
        """``z [B, D, T]`` -> ``[latent [B, latent_dim, T]]``: the mean, or a sample if ``sample``."""
        mean, logvar = self.posterior(z)
        return [self.sample(mean, logvar) if sample else mean]

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:
        """``[latent [B, latent_dim, T]]`` -> ``z_q [B, D, T]``."""
        return self.out_proj(streams[0])

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        return [StreamSpec("continuous", dim=self.latent_dim, name="latent")]
