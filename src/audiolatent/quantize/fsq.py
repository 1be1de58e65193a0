"""Finite scalar quantisation (FSQ; Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE
Made Simple").

``z [B, D, T]`` is projected to ``n_codebooks * len(levels)`` values per frame. Value j of a
group is bounded to ``levels[j]`` integer steps and rounded (straight-through gradient):

    half = (L - 1) * (1 + eps) / 2;  offset = 0.5 if L is even else 0;  shift = atanh(offset / half)
    bounded = tanh(h + shift) * half - offset;   rounded in {-(L // 2), ..., (L - 1) // 2}

(the half-offset gives even L exactly L values). The quantised value is ``rounded / (L // 2)``,
projected back to D channels. There is no codebook to learn, no loss and nothing to sync.

Codes: the digits ``rounded + L // 2 in [0, L)`` of one group form one integer in mixed radix
(digit j has weight ``prod(levels[:j])``), so each frame is one code per group in
``[0, prod(levels))``: codes ``long [B, n_codebooks, T]``. ``codes_to_digits`` and
``digits_to_codes`` convert between the two.

The projections are linear maps (a 1x1 convolution) and are omitted when
``dim == n_codebooks * len(levels)``. Stats: ``usage`` and ``perplexity`` ``[n_codebooks]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec, codebook_stats
from audiolatent.quantize.cache import TableCache
from audiolatent.quantize.functional import straight_through
from audiolatent.quantize.registry import register_bottleneck

__all__ = ["FSQ"]


@register_bottleneck
class FSQ(Bottleneck):
    """Finite scalar quantiser with ``levels`` per projected dimension.

    Args:
        dim: channels D of ``z``.
        levels: quantisation levels per projected dimension, e.g. ``(8, 5, 5, 5)`` (1000
            codes) or ``(8, 5, 5, 5, 5)`` ... as in the paper's Table 1.
        n_codebooks: independent groups of ``len(levels)`` dimensions (codes per frame).
        eps: the bound's margin (paper: 1e-3), so rounding never reaches level L.
    """

    kind = "fsq"

    def __init__(self, dim: int, levels: Sequence[int] = (8, 5, 5, 5), n_codebooks: int = 1, eps: float = 1e-3) -> None:
        super().__init__()
        levels = tuple(int(level) for level in levels)
        if not levels or any(level < 2 for level in levels):
            raise ConfigError(f"fsq: levels must be a non-empty list of ints >= 2, got {list(levels)}")
        if n_codebooks < 1:
            raise ConfigError(f"fsq: n_codebooks must be >= 1, got {n_codebooks}")
        self.dim = dim
        self.levels = levels
        self.n_codebooks = n_codebooks
        self.codebook_size = math.prod(levels)
        self.code_dim = n_codebooks * len(levels)
        projected = dim != self.code_dim
        self.in_proj = nn.Linear(dim, self.code_dim) if projected else None
        self.out_proj = nn.Linear(self.code_dim, dim) if projected else None
        lv = torch.tensor(levels, dtype=torch.float64)
        half = (lv - 1) * (1 + eps) / 2
        offset = torch.where(lv % 2 == 0, 0.5, 0.0)
        half_width = torch.floor(lv / 2)
        basis = torch.cumprod(torch.tensor((1,) + levels[:-1], dtype=torch.float64), dim=0)
        # per projected channel, shaped [C, 1] to broadcast over [B, C, T] (C = n_codebooks * L)
        per_channel = {
            "_half": half,
            "_offset": offset,
            "_shift": torch.atanh(offset / half),
            "_half_width": half_width,
            "_digit_offset": half_width - offset,  # digit = round(tanh(a) * half + this)
        }
        for name, value in per_channel.items():
            self.register_buffer(name, value.repeat(n_codebooks)[:, None].float(), persistent=False)
        self.register_buffer("_basis_row", basis[None].float(), persistent=False)  # [1, L]
        self.register_buffer("_basis_long", basis.long(), persistent=False)
        self.register_buffer("_levels_long", lv.long(), persistent=False)
        self._tables = TableCache()

    # ------------------------------------------------------------------ digits <-> codes
    def codes_to_digits(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``long [...]`` in ``[0, prod(levels))`` -> digits ``long [..., len(levels)]``."""
        return torch.div(codes[..., None], self._basis_long, rounding_mode="floor") % self._levels_long

    def digits_to_codes(self, digits: torch.Tensor) -> torch.Tensor:
        """Digits ``long [..., len(levels)]`` (digit j in ``[0, levels[j])``) -> codes ``long [...]``."""
        return (digits.long() * self._basis_long).sum(dim=-1)

    # ------------------------------------------------------------------ quantisation ([B, C, T] layout)
    def _preactivation(self, z: torch.Tensor) -> torch.Tensor:
        """``z [B, D, T]`` -> ``h + shift`` ``[B, C, T]`` (C = n_codebooks * len(levels))."""
        if self.in_proj is None:
            return z + self._shift
        return torch.matmul(self.in_proj.weight, z) + (self.in_proj.bias[:, None] + self._shift)

    def _digits(self, tanh_a: torch.Tensor) -> torch.Tensor:
        """``tanh(h + shift) [B, C, T]`` -> digits (float) in ``[0, L)``; equals round(bound) + L // 2."""
        return torch.round(torch.addcmul(self._digit_offset, tanh_a, self._half))

    def _codes(self, digits: torch.Tensor) -> torch.Tensor:
        """Float digits ``[B, C, T]`` -> codes ``long [B, n_codebooks, T]`` (mixed radix)."""
        b, _, t = digits.shape
        grouped = digits.view(b, self.n_codebooks, len(self.levels), t)
        if self.codebook_size < 2**24:  # exact in float32: one small matmul
            return torch.matmul(self._basis_row, grouped).view(b, self.n_codebooks, t).long()
        return self.digits_to_codes(grouped.transpose(2, 3).long())

    def _values(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``long [B, n_codebooks, T]`` -> quantised values ``[B, C, T]`` in [-1, 1]."""
        b, _, t = codes.shape
        digits = torch.div(codes[:, :, None, :], self._basis_long[:, None], rounding_mode="floor") % self._levels_long[:, None]
        return (digits.view(b, self.code_dim, t).to(self._half_width.dtype) - self._half_width) / self._half_width

    def _output(self, values: torch.Tensor) -> torch.Tensor:
        """Values ``[B, C, T]`` -> ``z_q [B, D, T]``."""
        if self.out_proj is None:
            return values
        return torch.matmul(self.out_proj.weight, values.to(self.out_proj.weight.dtype)) + self.out_proj.bias[:, None]

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        """``z [B, D, T]`` -> ``z_q [B, D, T]``, codes ``[B, n_codebooks, T]``; ``n_q`` ignored."""
        tanh_a = torch.tanh(self._preactivation(z).float())
        digits = self._digits(tanh_a.detach())
        bounded = tanh_a * self._half - self._offset  # carries the straight-through gradient
        rounded = straight_through(digits - self._half_width, bounded)
        z_q = self._output(rounded / self._half_width)
        codes = self._codes(digits)
        usage, perplexity = zip(*(codebook_stats(codes[:, k], self.codebook_size) for k in range(self.n_codebooks)))
        stats = {"usage": torch.stack(usage), "perplexity": torch.stack(perplexity)}
        return BottleneckOutput(z_q, [codes], {}, stats)

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:
        """``z [B, D, T]`` -> ``[codes long [B, n_codebooks, T]]``."""
        return [self._codes(self._digits(torch.tanh(self._preactivation(z).float())))]

    def _decode_table(self) -> torch.Tensor:
        """``[n_codebooks * K, D]``: group g's contribution to ``z_q`` for each code (bias in group 0)."""
        codes = torch.arange(self.codebook_size, device=self._basis_long.device)
        per_code = self._values(codes[None, None].expand(1, self.n_codebooks, -1))[0]  # [C, K]
        weight = self.out_proj.weight.view(self.dim, self.n_codebooks, len(self.levels))
        table = torch.einsum("dgl,glk->gkd", weight, per_code.view(self.n_codebooks, len(self.levels), -1).to(weight.dtype))
        table[0] += self.out_proj.bias
        return table.reshape(-1, self.dim)

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:
        """``[codes long [B, n_codebooks, T]]`` -> ``z_q [B, D, T]``."""
        codes = streams[0]
        table_size = self.n_codebooks * self.codebook_size * self.dim
        if self.out_proj is None or self.training or torch.is_grad_enabled() or table_size > 2**22:
            return self._output(self._values(codes))
        # inference: one gather from a table of every code's projected value
        table = self._tables.get(self, "decode", list(self.parameters()), self._decode_table)
        b, g, t = codes.shape
        if g == 1:
            rows = F.embedding(codes[:, 0], table)  # [B, T, D]
        else:
            offsets = torch.arange(g, device=codes.device)[:, None] * self.codebook_size
            rows = F.embedding_bag((codes + offsets).transpose(1, 2).reshape(b * t, g), table, mode="sum").view(b, t, self.dim)
        return rows.transpose(1, 2)

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        return [StreamSpec("discrete", (self.codebook_size,) * self.n_codebooks)]
