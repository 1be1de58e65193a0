"""Soft normalisation with noise: a continuous latent of fixed scale without a KL term.

The latent is ``z`` divided by a running scale -- an exponential moving average of its root
mean square, updated in training (global, or per channel with ``per_channel=True``) -- so it
stays near unit scale whatever the encoder does. In training, Gaussian noise of standard
deviation ``noise_std`` is added to it: since the scale is normalised away, the encoder cannot
beat the noise by growing its output, and the decoder learns to tolerate small errors, which
keeps the latent smooth for a second-stage model (the noise-regularised alternative to a VAE's
KL, cf. the noise-augmented latents of Music2Latent / "soft" VAE variants). A learnable
per-channel affine ``weight * latent + bias`` then restores a scale for the decoder.

    latent = z / running_scale                          stream: continuous [B, D, T]
    z_q    = weight * (latent + noise_std * eps) + bias  (noise only in training)

No losses. Stats: ``running_scale`` (mean over channels). ``sync_distributed`` averages the
running scale over ranks (the only state that differs between them).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec
from audiolatent.quantize.functional import is_distributed
from audiolatent.quantize.registry import register_bottleneck

__all__ = ["SoftNormBottleneck"]


@register_bottleneck
class SoftNormBottleneck(Bottleneck):
    """EMA-RMS normalised continuous latent with training noise and an output affine.

    Args:
        dim: channels D of ``z`` (and of the latent).
        noise_std: standard deviation of the training noise, in units of the normalised latent.
        momentum: EMA weight of the current batch's RMS (0.01 ~ a 100-step time constant).
        per_channel: one running scale per channel instead of one for all.
        eps: floor of the scale.
    """

    kind = "softnorm"

    def __init__(
        self, dim: int, noise_std: float = 0.1, momentum: float = 0.01, per_channel: bool = False, eps: float = 1e-5
    ) -> None:
        super().__init__()
        if noise_std < 0 or not 0 < momentum <= 1:
            raise ConfigError(f"softnorm: need noise_std >= 0 and momentum in (0, 1], got {noise_std}, {momentum}")
        self.dim = dim
        self.noise_std = noise_std
        self.momentum = momentum
        self.per_channel = per_channel
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_scale", torch.ones(dim if per_channel else 1))

    @torch.no_grad()
    def _update_scale(self, z: torch.Tensor) -> None:
        dims = (0, 2) if self.per_channel else (0, 1, 2)
        rms = z.detach().float().pow(2).mean(dim=dims).sqrt().reshape(-1)
        self.running_scale.lerp_(rms, self.momentum)

    def _normalise(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.running_scale.clamp_min(self.eps)[None, :, None].to(z.dtype)

    def _affine(self, latent: torch.Tensor) -> torch.Tensor:
        return latent * self.weight[None, :, None] + self.bias[None, :, None]

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        """``z [B, D, T]`` -> ``z_q [B, D, T]``, stream = the clean latent ``[B, D, T]``."""
        if self.training:
            self._update_scale(z)
        latent = self._normalise(z)
        noisy = latent + self.noise_std * torch.randn_like(latent) if self.training and self.noise_std > 0 else latent
        stats = {"running_scale": float(self.running_scale.mean())}
        return BottleneckOutput(self._affine(noisy), [latent], {}, stats)

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:
        """``z [B, D, T]`` -> ``[latent [B, D, T]]`` (normalised by the running scale)."""
        return [self._normalise(z)]

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:
        """``[latent [B, D, T]]`` -> ``z_q [B, D, T]`` (no noise)."""
        return self._affine(streams[0])

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        return [StreamSpec("continuous", dim=self.dim, name="latent")]

    @torch.no_grad()
    def sync_distributed(self, group=None) -> None:
        """Average the running scale over ranks (no-op in a single process)."""
        if is_distributed(group):
            dist.all_reduce(self.running_scale, group=group)
            self.running_scale /= dist.get_world_size(group)
