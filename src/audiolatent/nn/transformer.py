"""A causal transformer over frames, with a bounded attention window and a KV cache.

Pre-norm layers (Xiong et al., 2020) of multi-head self-attention (Vaswani et al., 2017) and a
GELU MLP, with rotary position embeddings (RoPE; Su et al., 2021, "RoFormer") and optional
LayerScale (Touvron et al., 2021, "Going deeper with image transformers"), as in the Mimi
encoder/decoder transformers (Défossez et al., 2024, "Moshi").

Context window: frame ``t`` attends to frames ``s`` with ``t - context < s <= t`` — itself and
the ``context - 1`` frames before it (``context=None``: every past frame). Offline this is a
banded causal mask; in streaming each attention layer keeps a KV cache of the last
``context - 1`` frames (unbounded when ``context=None``) and the absolute position of the next
frame, so RoPE sees the same absolute positions as offline and chunked outputs equal the
offline output for any chunk sizes, also past the window.

Cost: offline attention materialises a ``[T, T]`` mask when ``context < T``, so offline calls
are meant for clips (seconds to a minute of frames); run long signals through ``streaming()``,
whose cost per frame is bounded by ``context``.

Shapes: the transformer takes and returns ``[B, D, T]`` (channels first, like the
convolutions); the layers inside work on ``[B, T, D]``. Latency: causal, ``lookahead = 0``,
``stride = 1`` (frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.core.streaming import StreamingModule

__all__ = ["RotaryEmbedding", "StreamingMultiheadAttention", "TransformerLayer", "StreamingTransformer"]


class RotaryEmbedding(nn.Module):
    """RoPE on ``[B, H, T, head_dim]`` queries/keys at absolute positions ``offset + arange(T)``.

    Pairs channels ``(i, i + head_dim / 2)`` and rotates them by ``position * max_period **
    (-2 i / head_dim)`` radians. Angles are computed in float64 on every call (a few hundred
    numbers; no buffer that ``.half()`` would round), so positions stay exact for hours of frames.
    """

    def __init__(self, head_dim: int, max_period: float = 10_000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head dimension, got {head_dim}")
        self.head_dim, self.max_period = head_dim, max_period

    def forward(self, q: torch.Tensor, k: torch.Tensor, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        length = q.shape[-2]
        exponent = torch.arange(0, self.head_dim, 2, device=q.device, dtype=torch.float64) / self.head_dim
        positions = torch.arange(offset, offset + length, device=q.device, dtype=torch.float64)
        angles = positions[:, None] * (self.max_period**-exponent)[None, :]  # [T, head_dim / 2]
        cos, sin = angles.cos().to(q.dtype), angles.sin().to(q.dtype)
        return self._rotate(q, cos, sin), self._rotate(k, cos, sin)

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


@dataclass
class _KVCache:
    keys: torch.Tensor  # [B, H, S, head_dim], S <= context - 1 past frames (rotated)
    values: torch.Tensor  # [B, H, S, head_dim]
    offset: int  # absolute position of the next frame


class StreamingMultiheadAttention(StreamingModule):
    """Causal multi-head self-attention on ``[B, T, D]`` with an attention window and KV cache.

    Args:
        dim: D (a multiple of ``num_heads``).
        num_heads: attention heads.
        context: frames each frame attends to, itself included (None: all past frames).
        rope: use rotary embeddings (else no positional information: the model only sees order
            through causality).
        max_period: RoPE's longest period.
    """

    def __init__(self, dim: int, num_heads: int, context: int | None = None, rope: bool = True, max_period: float = 10_000.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not a multiple of num_heads {num_heads}")
        if context is not None and context < 1:
            raise ValueError(f"context must be >= 1 frame or None, got {context}")
        self.dim, self.num_heads, self.head_dim, self.context = dim, num_heads, dim // num_heads, context
        self.in_proj = nn.Linear(dim, 3 * dim, bias=False)
        self.out_proj = nn.Linear(dim, dim, bias=False)
        self.rope = RotaryEmbedding(self.head_dim, max_period) if rope else None

    def _init_streaming_state(self, batch_size: int) -> _KVCache:
        p = self.in_proj.weight
        empty = torch.zeros(batch_size, self.num_heads, 0, self.head_dim, device=p.device, dtype=p.dtype)
        return _KVCache(empty, empty.clone(), 0)

    def _mask(self, n_queries: int, n_past: int, device: torch.device) -> torch.Tensor | None:
        """Bool ``[T, S + T]`` mask (True = attend) for queries after ``n_past`` cached frames."""
        if n_past == 0 and (self.context is None or self.context >= n_queries):
            return None  # plain causal: use the fused is_causal path
        delta = torch.arange(n_queries, device=device)[:, None] + n_past - torch.arange(n_past + n_queries, device=device)[None, :]
        allowed = delta >= 0
        if self.context is not None:
            allowed &= delta < self.context
        return allowed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, T, D]`` -> ``[B, T, D]``."""
        self._check_streaming_batch(x)
        batch, length, _ = x.shape
        qkv = self.in_proj(x).view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # [B, H, T, head_dim]
        state: _KVCache | None = self._streaming_state
        offset = state.offset if state is not None else 0
        if self.rope is not None:
            q, k = self.rope(q, k, offset)
        if state is not None:
            k = torch.cat([state.keys, k], dim=2)
            v = torch.cat([state.values, v], dim=2)
        n_past = k.shape[2] - length
        mask = self._mask(length, n_past, x.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None and length > 1)
        if state is not None:
            keep = k.shape[2] if self.context is None else min(k.shape[2], self.context - 1)
            state.keys, state.values = k[:, :, k.shape[2] - keep :], v[:, :, v.shape[2] - keep :]
            state.offset += length
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, self.dim))


class LayerScale(nn.Module):
    """Per-channel scale of a residual branch (Touvron et al., 2021), on ``[B, T, D]``."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class TransformerLayer(nn.Module):
    """Pre-norm layer on ``[B, T, D]``: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        dim_feedforward: int,
        context: int | None = None,
        rope: bool = True,
        max_period: float = 10_000.0,
        layer_scale: float | None = None,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = StreamingMultiheadAttention(dim, num_heads, context, rope, max_period)
        self.norm_mlp = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = nn.Sequential(nn.Linear(dim, dim_feedforward), nn.GELU(), nn.Linear(dim_feedforward, dim))
        self.scale_attn = LayerScale(dim, layer_scale) if layer_scale is not None else nn.Identity()
        self.scale_mlp = LayerScale(dim, layer_scale) if layer_scale is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.scale_attn(self.attn(self.norm_attn(x)))
        return x + self.scale_mlp(self.mlp(self.norm_mlp(x)))


class StreamingTransformer(StreamingModule):
    """Causal transformer on ``[B, dim, T]`` frames -> ``[B, dim, T]`` (see the module docstring).

    Args:
        dim: channels D.
        num_layers: transformer layers.
        num_heads: attention heads (``dim`` must be a multiple).
        dim_feedforward: hidden size of the MLP (default ``4 * dim``).
        context: attention window in frames, each frame included (None: unbounded).
        positional_embedding: ``"rope"`` or ``"none"``.
        max_period: RoPE's longest period.
        layer_scale: initial LayerScale value (e.g. 0.01 as in Mimi), None for no LayerScale.

    Attributes: ``stride = 1``, ``lookahead = 0`` (frames).
    """

    stride = 1
    lookahead = 0

    def __init__(
        self,
        dim: int,
        num_layers: int = 2,
        num_heads: int = 4,
        dim_feedforward: int | None = None,
        context: int | None = None,
        positional_embedding: str = "rope",
        max_period: float = 10_000.0,
        layer_scale: float | None = None,
    ) -> None:
        super().__init__()
        if positional_embedding not in ("rope", "none"):
            raise ValueError(f"positional_embedding must be 'rope' or 'none', got {positional_embedding!r}")
        self.dim, self.context = dim, context
        hidden = dim_feedforward if dim_feedforward is not None else 4 * dim
        rope = positional_embedding == "rope"
        self.layers = nn.ModuleList(
            TransformerLayer(dim, num_heads, hidden, context, rope, max_period, layer_scale) for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, dim, T]`` -> ``[B, dim, T]``; in streaming, any chunk length (frames)."""
        self._check_streaming_batch(x)
        if x.shape[-1] == 0:
            return x
        h = x.transpose(1, 2)
        for layer in self.layers:
            h = layer(h)
        return h.transpose(1, 2)
