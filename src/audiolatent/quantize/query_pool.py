"""Query-based temporal resampling: one token per block of ``stride`` frames (kind ``query-pool``).

A fixed lower-rate point beside the variable-rate ``segment`` bottleneck: the encoder runs at its
own rate (e.g. 50 Hz) and this bottleneck emits one token per ``stride`` frames (25 Hz for 2,
12.5 Hz for 4), as the learned-query resamplers of ALMTokenizer (Yang et al. 2025) and SAME do,
with *causal windows*: a token reads only the frames of its own block.

* **pool**: a learned query attends (multi-head attention) over the block's frames plus a learned
  per-position embedding; the block's mean is added as a residual, so at initialisation (output
  projection of the attention near zero) the token is close to mean pooling;
* **quantise**: any frame-wise inner bottleneck (default RVQ 4 x 256) at the block rate;
* **unpool**: each token is broadcast to its ``stride`` frames, a learned embedding of the
  frame's position inside the block is added and a linear map (plus residual) gives the decoder
  input at the encoder rate.

Streams: the inner quantiser's with ``StreamSpec.stride = stride``, so a codec's hop becomes
``encoder hop x stride`` and streaming goes by whole blocks (chunks a multiple of that hop), the
same contract as :class:`~audiolatent.quantize.msrvq.MultiScaleRVQ`. A block depends on its own
``stride`` frames only: no state, and the latency is one block (the codec's hop).
"""

from __future__ import annotations

import torch
from torch import nn

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec
from audiolatent.quantize.registry import build_framewise, inner_check_n_q, register_bottleneck

__all__ = ["QueryPool"]


@register_bottleneck
class QueryPool(Bottleneck):
    """One quantised token per block of ``stride`` frames (see the module docstring).

    Args:
        dim: channels D of ``z``.
        stride: frames per token (>= 2).
        quantizer: inner frame-wise bottleneck config (``dim`` filled in); default
            ``{kind: rvq, n_codebooks: 4, codebook_size: 256}``.
        heads: attention heads (must divide ``dim``).
    """

    kind = "query-pool"

    def __init__(self, dim: int, stride: int = 2, quantizer: dict | None = None, heads: int = 4) -> None:
        super().__init__()
        if stride < 2:
            raise ConfigError(f"query-pool: stride must be >= 2 frames per token, got {stride}")
        if heads < 1 or dim % heads:
            raise ConfigError(f"query-pool: heads ({heads}) must divide dim ({dim})")
        self.quantizer = build_framewise(quantizer, dim, "query-pool")
        self.dim, self.stride = dim, int(stride)
        self.query = nn.Parameter(torch.randn(dim) * dim**-0.5)
        self.key_position = nn.Parameter(torch.randn(self.stride, dim) * 0.02)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        with torch.no_grad():
            self.attention.out_proj.weight.mul_(0.1)  # start near mean pooling (the residual)
        self.frame_position = nn.Parameter(torch.randn(self.stride, dim) * 0.02)
        self.expand = nn.Linear(dim, dim)
        with torch.no_grad():
            self.expand.weight.mul_(0.1)

    check_n_q = inner_check_n_q

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        return [StreamSpec(s.kind, s.codebook_sizes, s.dim, self.stride, s.name) for s in self.quantizer.stream_specs(n_q)]

    def _blocks(self, z: torch.Tensor) -> torch.Tensor:
        b, d, t = z.shape
        if t % self.stride:
            raise ValueError(f"query-pool: {t} frames is not a multiple of the stride {self.stride}")
        return z.transpose(1, 2).reshape(b * (t // self.stride), self.stride, d)

    def pool(self, z: torch.Tensor) -> torch.Tensor:
        """``z [B, D, T]`` (T a multiple of the stride) -> block tokens ``[B, D, T / stride]``."""
        b, _, t = z.shape
        blocks = self._blocks(z)  # [B * T', stride, D]
        keys = blocks + self.key_position.to(blocks.dtype)
        query = self.query.to(blocks.dtype).expand(blocks.shape[0], 1, -1)
        attended, _ = self.attention(query, keys, keys, need_weights=False)
        tokens = attended[:, 0] + blocks.mean(1)
        return tokens.reshape(b, t // self.stride, -1).transpose(1, 2)

    def unpool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Block tokens ``[B, D, T']`` -> decoder input ``[B, D, T' * stride]``."""
        b, d, t = tokens.shape
        frames = tokens.transpose(1, 2)[:, :, None, :] + self.frame_position.to(tokens.dtype)  # [B, T', stride, D]
        frames = frames + self.expand(frames)
        return frames.reshape(b, t * self.stride, d).transpose(1, 2)

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        inner = self.quantizer(self.pool(z), n_q)
        return BottleneckOutput(self.unpool(inner.z_q), inner.streams, inner.losses, inner.stats)

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:
        return self.quantizer.encode(self.pool(z), n_q)

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:
        return self.unpool(self.quantizer.decode(streams))

    def sync_distributed(self, group=None) -> None:
        self.quantizer.sync_distributed(group)
