"""``InfillFlowMatching``: non-autoregressive flow matching on whole continuous latents ``[B, D, T]``.

Ideas: conditional flow matching with straight (rectified) paths — Lipman et al., 2022 ("Flow
Matching for Generative Modeling"), Liu et al., 2022 ("Flow Straight and Fast") — trained as
*masked infilling* of a latent: Voicebox (Le et al., 2023) and E2 TTS (Eskimez et al., 2024).
A span of frames is masked; the model sees the unmasked frames (the context, zeros where
masked), the mask and the noisy latent, and predicts the velocity that carries noise to data.
Generating from scratch is infilling with everything masked; continuation is infilling a
suffix.

Paths: ``x_s = (1 - s) noise + s x`` for flow time ``s`` in [0, 1] (noise at 0, data at 1); the
target velocity is ``x - noise`` and the loss is its mean squared error on masked frames only.
Sampling integrates ``dx/ds = v(x_s, s | context, mask)`` from noise with ``n_steps`` Euler or
midpoint (2nd-order Runge-Kutta) steps; unmasked frames are returned equal to the context.

Backbone: a bidirectional pre-norm ``torch.nn.TransformerEncoder`` over frames (the streaming
transformer in ``nn/transformer.py`` is causal only), input ``Linear([x_s; context; mask])``
plus sinusoidal frame positions and an MLP embedding of ``s``.

Shapes: latents ``[B, D, T]``, masks ``[B, T]`` bool (True = frame to generate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from audiolatent.lm.maskgit import sinusoidal_positions
from audiolatent.lm.sampling import seeded_rand, seeded_randn

__all__ = ["InfillFlowMatching", "FlowMatchingLoss", "span_mask"]


def span_mask(
    batch: int, n_frames: int, min_ratio: float = 0.7, max_ratio: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``[B, T]`` bool: one contiguous masked span per item covering a U(min, max) fraction (>= 1 frame).

    Voicebox masks 70-100 % of the frames during training.
    """
    cpu = torch.empty(0)
    ratio = min_ratio + (max_ratio - min_ratio) * seeded_rand((batch,), cpu, generator)
    length = (ratio * n_frames).round().long().clamp(1, n_frames)
    start = (seeded_rand((batch,), cpu, generator) * (n_frames - length + 1).float()).floor().long()
    frames = torch.arange(n_frames)[None]
    return (frames >= start[:, None]) & (frames < (start + length)[:, None])


@dataclass
class FlowMatchingLoss:
    """``loss``: MSE of the velocity on masked frames; ``n_masked``: frames averaged over."""

    loss: torch.Tensor
    n_masked: int


class InfillFlowMatching(nn.Module):
    """Masked-infill flow-matching model over ``[B, D, T]`` latents (see the module docstring).

    Args:
        latent_dim: D.
        dim, num_layers, num_heads, dim_feedforward: of the encoder.
    """

    def __init__(
        self, latent_dim: int, dim: int = 128, num_layers: int = 4, num_heads: int = 4, dim_feedforward: int | None = None
    ) -> None:
        super().__init__()
        self.latent_dim, self.dim = latent_dim, dim
        self.input = nn.Linear(2 * latent_dim + 1, dim)
        self.time = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        layer = nn.TransformerEncoderLayer(
            dim, num_heads, dim_feedforward or 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.output = nn.Linear(dim, latent_dim)

    def _time_embedding(self, s: torch.Tensor) -> torch.Tensor:
        """``s [B]`` in [0, 1] -> ``[B, dim]`` (sinusoidal features of 1000 s, then an MLP)."""
        half = self.dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=s.device, dtype=torch.float32) / half)
        angles = 1000.0 * s.float()[:, None] * freqs[None]
        return self.time(torch.cat([angles.sin(), angles.cos()], dim=-1))

    def velocity(self, x_s: torch.Tensor, s: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Velocity ``[B, D, T]`` at noisy latent ``x_s [B, D, T]``, flow time ``s [B]``.

        ``context [B, D, T]`` is zeroed on masked frames here, so masked values never leak in.
        """
        keep = (~mask).to(x_s.dtype)[:, None]  # [B, 1, T]
        features = torch.cat([x_s, context * keep, 1.0 - keep], dim=1).transpose(1, 2)  # [B, T, 2 D + 1]
        h = self.input(features) + self._time_embedding(s)[:, None]
        h = h + sinusoidal_positions(x_s.shape[-1], self.dim, x_s.device)[None]
        return self.output(self.norm(self.encoder(h))).transpose(1, 2)

    def loss(self, x: torch.Tensor, mask: torch.Tensor | None = None, generator: torch.Generator | None = None) -> FlowMatchingLoss:
        """Flow-matching loss of ``x [B, D, T]``; ``mask [B, T]`` defaults to a Voicebox span mask."""
        batch, _, n_frames = x.shape
        if mask is None:
            mask = span_mask(batch, n_frames, generator=generator)
        mask = mask.to(x.device)
        noise = seeded_randn(x.shape, x, generator)
        s = seeded_rand((batch,), x, generator)
        x_s = (1 - s[:, None, None]) * noise + s[:, None, None] * x
        error = (self.velocity(x_s, s, x, mask) - (x - noise)).pow(2).mean(dim=1)  # [B, T]
        n_masked = int(mask.sum())
        return FlowMatchingLoss((error * mask).sum() / max(n_masked, 1), n_masked)

    @torch.no_grad()
    def sample(
        self,
        context: torch.Tensor,
        mask: torch.Tensor,
        n_steps: int = 16,
        method: str = "euler",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Infill the masked frames of ``context [B, D, T]`` (``mask [B, T]`` True = generate).

        ``method``: ``euler`` (``n_steps`` velocity calls) or ``midpoint`` (2 per step).
        Returns ``[B, D, T]``; unmasked frames equal ``context`` exactly.
        """
        if method not in ("euler", "midpoint"):
            raise ValueError(f"method must be 'euler' or 'midpoint', got {method!r}")
        batch = context.shape[0]
        mask = mask.to(context.device)
        x = seeded_randn(context.shape, context, generator)
        step = 1.0 / n_steps
        for i in range(n_steps):
            s = torch.full((batch,), i * step, device=context.device, dtype=context.dtype)
            v = self.velocity(x, s, context, mask)
            if method == "midpoint":
                v = self.velocity(x + 0.5 * step * v, s + 0.5 * step, context, mask)
            x = x + step * v
        return torch.where(mask[:, None], x, context)
