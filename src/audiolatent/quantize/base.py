"""The one interface every bottleneck implements (the swap point between encoder and decoder).

A bottleneck maps the encoder's continuous output ``z`` of shape ``[B, D, T]`` (T frames at the
codec's base frame rate) to a latent and back:

* ``forward(z, n_q=None) -> BottleneckOutput`` — training/eval path: the reconstructed
  ``z_q [B, D, T]`` (with straight-through gradients where quantisation is not differentiable),
  the latent streams, the bottleneck's own unweighted losses and its statistics.
* ``encode(z, n_q=None) -> list[Tensor]`` — the latent streams only: discrete streams are
  ``long [B, K, T_s]`` codes, continuous ones ``float [B, D_s, T_s]`` values.
* ``decode(streams) -> z_q [B, D, T]`` — inverse of ``encode``.
* ``stream_specs(n_q=None) -> list[StreamSpec]`` — what ``encode`` returns: kind, codebook
  sizes or dimension, and each stream's temporal stride relative to the base frame rate
  (1 for most; 4, 2, 1 for a multi-scale RVQ).
* ``sync_distributed(group=None)`` — the one explicit synchronisation point for DDP: averages
  EMA statistics and broadcasts re-initialised codes so every rank holds the same codebooks.
  Never called from ``forward``; the trainer calls it after each optimiser step. Bottlenecks
  with nothing to sync keep the no-op.

Losses are returned unweighted under fixed names (``commitment``, ``codebook``, ``kl``,
``entropy``); the trainer owns the weights. Stats are floats or 1-D tensors per codebook
(``usage`` = fraction of codes used in the batch, ``perplexity`` = exp of code entropy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

__all__ = ["Bottleneck", "BottleneckOutput", "StreamSpec", "codebook_stats"]


@dataclass(frozen=True)
class StreamSpec:
    """Shape of one latent stream produced by a bottleneck."""

    kind: Literal["discrete", "continuous"]
    codebook_sizes: tuple[int, ...] = ()  # discrete: one size per codebook (K entries)
    dim: int = 0  # continuous: values per frame (D)
    stride: int = 1  # frames of the base rate per frame of this stream
    name: str = "codes"

    @property
    def bits_per_frame(self) -> float:
        """Nominal bits of one frame of this stream (sum of log2 codebook sizes)."""
        return float(sum(math.log2(s) for s in self.codebook_sizes))


@dataclass
class BottleneckOutput:
    z_q: torch.Tensor  # [B, D, T]
    streams: list[torch.Tensor]  # as encode() returns
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, torch.Tensor | float] = field(default_factory=dict)
    #: the quantised output of the first level alone ([B, D, T], straight-through gradient to z)
    #: for bottlenecks with levels (rvq, split-rvq's semantic quantiser); None = z_q is the only level
    first_level: torch.Tensor | None = None


class Bottleneck(nn.Module):
    """Base class; see the module docstring for the contract."""

    #: registry key used by configs (``bottleneck: {kind: rvq, ...}``)
    kind: str = ""
    #: input/output channel count D of ``z``
    dim: int

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:  # pragma: no cover
        raise NotImplementedError

    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:  # pragma: no cover
        raise NotImplementedError

    @property
    def is_discrete(self) -> bool:
        return all(s.kind == "discrete" for s in self.stream_specs())

    @property
    def temporal_stride(self) -> int:
        """Largest stream stride: input lengths must be multiples of it for exact streaming."""
        return max(s.stride for s in self.stream_specs())

    def sync_distributed(self, group=None) -> None:
        """Make codebook state identical across DDP ranks (explicit; no-op by default)."""


def codebook_stats(codes: torch.Tensor, codebook_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Usage fraction and perplexity of ``codes`` (any shape, values in [0, codebook_size)).

    usage = (number of distinct codes seen) / codebook_size;
    perplexity = exp(H), H the entropy in nats of the empirical code distribution.
    """
    counts = torch.bincount(codes.reshape(-1), minlength=codebook_size).float()
    probs = counts / counts.sum().clamp_min(1)
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum()
    usage = (counts > 0).float().mean()
    return usage, entropy.exp()
