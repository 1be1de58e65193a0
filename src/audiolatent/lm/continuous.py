"""``ContinuousLM``: causal autoregression over continuous frames ``[B, D, T]`` with a pluggable head.

The input of step t is the frame ``x_{t-1}`` projected to the model width (a learned start
vector at t = 0); the causal transformer (``nn.transformer.StreamingTransformer``, the backbone
of ``TokenLM``) gives a state ``h_t`` and a distribution head (``lm/heads.py``: Gaussian as in
MELLE, GMM as in GIVT, rectified flow as in MAR) models ``p(x_t | h_t)``. ``generate`` runs
in ``streaming()``, one frame per transformer call (KV cache).

Shapes: frames ``x [B, D, T]`` (channels first, like the latents); the head sees
``h [B, T, dim]`` and ``x [B, T, D]``. NLL in nats per frame (summed over the D dims).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from audiolatent.lm.heads import Head, get_head
from audiolatent.nn.transformer import StreamingTransformer

__all__ = ["ContinuousLM", "ContinuousLMLoss"]


@dataclass
class ContinuousLMLoss:
    """``loss`` to backprop; ``nll_per_frame`` (nats, mean over frames) or None for a flow head."""

    loss: torch.Tensor
    nll_per_frame: torch.Tensor | None
    n_frames: int


class ContinuousLM(nn.Module):
    """Causal transformer + distribution head over ``[B, D, T]`` frames.

    Args:
        latent_dim: D.
        head: ``gaussian``, ``gmm`` or ``flow``; ``head_kwargs`` go to its constructor.
        dim, num_layers, num_heads, dim_feedforward, context: of the transformer.
    """

    def __init__(
        self,
        latent_dim: int,
        head: str = "gaussian",
        dim: int = 128,
        num_layers: int = 4,
        num_heads: int = 4,
        dim_feedforward: int | None = None,
        context: int | None = None,
        head_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim, self.dim = latent_dim, dim
        self.input = nn.Linear(latent_dim, dim)
        self.start = nn.Parameter(torch.zeros(dim))
        self.transformer = StreamingTransformer(dim, num_layers, num_heads, dim_feedforward, context)
        self.norm = nn.LayerNorm(dim)
        self.head: Head = get_head(head, dim, latent_dim, **(head_kwargs or {}))

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, D, T]`` -> states ``[B, T, dim]``; state t has seen frames < t only."""
        batch = x.shape[0]
        inputs = self.input(x.transpose(1, 2))  # [B, T, dim]
        inputs = torch.cat([self.start.expand(batch, 1, -1), inputs[:, :-1]], dim=1)
        return self.norm(self.transformer(inputs.transpose(1, 2)).transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Alias of ``hidden``."""
        return self.hidden(x)

    def loss(self, x: torch.Tensor) -> ContinuousLMLoss:
        """Training loss and NLL of ``x [B, D, T]``."""
        h = self.hidden(x)
        target = x.transpose(1, 2)
        loss = self.head.loss(h, target)
        nll = self.head.nll(h, target)
        return ContinuousLMLoss(loss, None if nll is None else nll.mean(), x.shape[0] * x.shape[2])

    def predict_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Point prediction of every frame from its past: ``x [B, D, T]`` -> ``[B, D, T]``."""
        return self.head.mean(self.hidden(x)).transpose(1, 2)

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, n_frames: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Continue ``prompt [B, D, Tp]`` by ``n_frames`` sampled frames -> ``[B, D, Tp + n_frames]``."""
        batch = prompt.shape[0]
        frames = [prompt]
        with self.transformer.streaming(batch):
            # step t consumes frame t - 1: start + the whole prompt in one chunk gives step Tp's state
            inputs = torch.cat([self.start.expand(batch, 1, -1), self.input(prompt.transpose(1, 2))], dim=1)
            h = self.norm(self.transformer(inputs.transpose(1, 2))[..., -1])
            for i in range(n_frames):
                frame = self.head.sample(h, generator)  # [B, D]
                frames.append(frame[..., None])
                if i + 1 < n_frames:
                    h = self.norm(self.transformer(self.input(frame)[..., None])[..., 0])
        return torch.cat(frames, dim=-1)
