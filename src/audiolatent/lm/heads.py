"""Distribution heads for continuous autoregression: ``p(x_t | h_t)`` for a frame ``x_t [D]``.

A head maps the transformer state ``h [..., H]`` of a step to a distribution over the next frame
``x [..., D]`` (any leading shape, e.g. ``[B, T]``). Every head exposes

* ``loss(h, x)`` -> scalar training loss (mean over frames),
* ``nll(h, x)`` -> ``[...]`` negative log-likelihood in **nats per frame** (summed over the D
  dims), or ``None`` where the head has no tractable likelihood,
* ``sample(h, generator)`` -> ``[..., D]``,
* ``mean(h)`` -> ``[..., D]`` a point prediction (for next-frame R^2).

Heads:

* ``GaussianHead``: diagonal Gaussian (mean, log-variance) — the simplest continuous AR head, as
  in MELLE (Meng et al., 2024, "Autoregressive Speech Synthesis without Vector Quantization").
* ``GMMHead``: mixture of C diagonal Gaussians, NLL by logsumexp — GIVT (Tschannen et al., 2023,
  "GIVT: Generative Infinite-Vocabulary Transformers").
* ``FlowHead``: a small MLP velocity field conditioned on ``h``, trained with the rectified-flow
  objective (Liu et al., 2022; Lipman et al., 2022) and sampled with N Euler steps — the
  per-token diffusion/flow head of MAR (Li et al., 2024, "Autoregressive Image Generation
  without Vector Quantization"). Its exact NLL needs an ODE trace integral, so ``nll`` returns
  ``None``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.lm.sampling import seeded_multinomial, seeded_rand, seeded_randn

__all__ = ["Head", "GaussianHead", "GMMHead", "FlowHead", "HEADS", "get_head"]

_LOG_2PI = math.log(2 * math.pi)


def _diag_gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(log_var))), summed over the last dim."""
    return -0.5 * (_LOG_2PI + log_var + (x - mean).pow(2) * torch.exp(-log_var)).sum(dim=-1)


class Head(nn.Module):
    """Base class of the distribution heads (see the module docstring)."""

    name = ""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.dim_in, self.dim_out = dim_in, dim_out

    def loss(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        nll = self.nll(h, x)
        return nll.mean() / self.dim_out  # per dimension keeps the learning rate independent of D

    def nll(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
        raise NotImplementedError

    def sample(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class GaussianHead(Head):
    """Diagonal Gaussian: ``Linear(H, 2 D)`` -> mean, log-variance (clamped to [min, max])."""

    name = "gaussian"

    def __init__(self, dim_in: int, dim_out: int, min_log_var: float = -12.0, max_log_var: float = 8.0) -> None:
        super().__init__(dim_in, dim_out)
        self.proj = nn.Linear(dim_in, 2 * dim_out)
        self.min_log_var, self.max_log_var = min_log_var, max_log_var

    def params(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``h [..., H]`` -> ``(mean [..., D], log_var [..., D])``."""
        mean, log_var = self.proj(h).chunk(2, dim=-1)
        return mean, log_var.clamp(self.min_log_var, self.max_log_var)

    def nll(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, log_var = self.params(h)
        return -_diag_gaussian_log_prob(x, mean, log_var)

    def sample(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mean, log_var = self.params(h)
        return mean + torch.exp(0.5 * log_var) * seeded_randn(mean.shape, mean, generator)

    def mean(self, h: torch.Tensor) -> torch.Tensor:
        return self.params(h)[0]


class GMMHead(Head):
    """Mixture of ``n_components`` diagonal Gaussians: ``Linear(H, C (1 + 2 D))``."""

    name = "gmm"

    def __init__(self, dim_in: int, dim_out: int, n_components: int = 4, min_log_var: float = -12.0, max_log_var: float = 8.0) -> None:
        super().__init__(dim_in, dim_out)
        self.n_components = n_components
        self.proj = nn.Linear(dim_in, n_components * (1 + 2 * dim_out))
        self.min_log_var, self.max_log_var = min_log_var, max_log_var

    def params(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``h [..., H]`` -> ``(log_weights [..., C], means [..., C, D], log_vars [..., C, D])``."""
        out = self.proj(h)
        n, d = self.n_components, self.dim_out
        logits, rest = out[..., :n], out[..., n:].reshape(*out.shape[:-1], n, 2 * d)
        means, log_vars = rest.chunk(2, dim=-1)
        return logits.log_softmax(dim=-1), means, log_vars.clamp(self.min_log_var, self.max_log_var)

    def nll(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_weights, means, log_vars = self.params(h)
        log_probs = _diag_gaussian_log_prob(x.unsqueeze(-2), means, log_vars)  # [..., C]
        return -torch.logsumexp(log_weights + log_probs, dim=-1)

    def sample(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        log_weights, means, log_vars = self.params(h)
        flat = log_weights.exp().reshape(-1, self.n_components)
        component = seeded_multinomial(flat, generator).reshape(*log_weights.shape[:-1], 1, 1)
        index = component.expand(*component.shape[:-1], self.dim_out)
        mean = means.gather(-2, index).squeeze(-2)
        log_var = log_vars.gather(-2, index).squeeze(-2)
        return mean + torch.exp(0.5 * log_var) * seeded_randn(mean.shape, mean, generator)

    def mean(self, h: torch.Tensor) -> torch.Tensor:
        log_weights, means, _ = self.params(h)
        return (log_weights.exp().unsqueeze(-1) * means).sum(dim=-2)


class FlowHead(Head):
    """Rectified-flow head: velocity ``v(x_s, s, h)`` by an MLP; noise at s = 0, data at s = 1.

    Training: ``x_s = (1 - s) noise + s x``, regress ``v`` on ``x - noise`` (MSE). Sampling:
    ``n_steps`` Euler steps from Gaussian noise. ``nll`` returns None (see the module docstring).
    """

    name = "flow"

    def __init__(self, dim_in: int, dim_out: int, hidden: int = 128, n_layers: int = 3, n_steps: int = 32) -> None:
        super().__init__(dim_in, dim_out)
        self.n_steps = n_steps
        self.cond = nn.Linear(dim_in, hidden)
        self.time = nn.Linear(1, hidden)
        self.inp = nn.Linear(dim_out, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
            for _ in range(n_layers)
        )
        self.out = nn.Linear(hidden, dim_out)

    def velocity(self, x: torch.Tensor, s: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``x [..., D]``, flow time ``s [..., 1]`` in [0, 1], ``h [..., H]`` -> ``[..., D]``."""
        z = self.inp(x) + self.time(s) + self.cond(h)
        for block in self.blocks:
            z = z + block(z)
        return self.out(F.silu(z))

    def loss(self, h: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = seeded_randn(x.shape, x, generator)
        s = seeded_rand((*x.shape[:-1], 1), x, generator)
        x_s = (1 - s) * noise + s * x
        return (self.velocity(x_s, s, h) - (x - noise)).pow(2).mean()

    def nll(self, h: torch.Tensor, x: torch.Tensor) -> None:
        return None

    def sample(self, h: torch.Tensor, generator: torch.Generator | None = None, n_steps: int | None = None) -> torch.Tensor:
        steps = n_steps or self.n_steps
        x = seeded_randn((*h.shape[:-1], self.dim_out), h, generator)
        for i in range(steps):
            s = torch.full((*h.shape[:-1], 1), i / steps, device=h.device, dtype=h.dtype)
            x = x + self.velocity(x, s, h) / steps
        return x

    def mean(self, h: torch.Tensor, n_samples: int = 8) -> torch.Tensor:
        """Monte-Carlo mean over ``n_samples`` draws (no closed form)."""
        return torch.stack([self.sample(h) for _ in range(n_samples)]).mean(dim=0)


HEADS: dict[str, type[Head]] = {cls.name: cls for cls in (GaussianHead, GMMHead, FlowHead)}


def get_head(name: str, dim_in: int, dim_out: int, **kwargs) -> Head:
    """Build a registered head (``gaussian``, ``gmm``, ``flow``)."""
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; known: {sorted(HEADS)}")
    return HEADS[name](dim_in, dim_out, **kwargs)
