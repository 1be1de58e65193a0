"""Group residual vector quantisation (HiFi-Codec, Yang et al. 2023).

The D channels of ``z`` are split into ``n_groups`` contiguous groups of ``D / n_groups``
channels; each group has its own :class:`~audiolatent.quantize.rvq.ResidualVQ`. With few
layers per group this reaches the quality of a deeper single RVQ (HiFi-Codec uses 2 groups of
2 layers).

Shapes: ``z [B, D, T]`` -> one stream of codes ``long [B, n_groups * n_q, T]``, ordered
**group-major**: row ``g * n_q + i`` is layer ``i`` of group ``g`` (group 0 covers channels
``[0, D/G)``). Quantizer dropout draws one ``n_q`` (or one per item) shared by all groups, so
``n_q`` always means layers per group. Losses are summed over groups; ``usage`` and
``perplexity`` are ``[n_groups * n_q]`` in the same order as the codes.
"""

from __future__ import annotations

import torch
from torch import nn

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec
from audiolatent.quantize.registry import register_bottleneck
from audiolatent.quantize.rvq import ResidualVQ
from audiolatent.quantize.vq import sync_codebooks

__all__ = ["GroupResidualVQ"]


@register_bottleneck
class GroupResidualVQ(Bottleneck):
    """``n_groups`` residual quantisers, one per channel group.

    Args:
        dim: channels D of ``z``; must be divisible by ``n_groups``.
        n_groups: number of channel groups G.
        n_codebooks: RVQ layers per group.
        codebook_size, codebook_dim, quantizer_dropout, dropout_per_item, ema, decay,
        kmeans_init, kmeans_iters, dead_code_threshold, l2_normalize, deferred_update:
            per group, see :class:`~audiolatent.quantize.rvq.ResidualVQ`.
    """

    kind = "grvq"

    def __init__(
        self,
        dim: int,
        n_groups: int = 2,
        n_codebooks: int = 2,
        codebook_size: int = 1024,
        codebook_dim: int | None = None,
        quantizer_dropout: float = 0.0,
        dropout_per_item: bool = False,
        ema: bool = True,
        decay: float = 0.99,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 2.0,
        l2_normalize: bool = False,
        deferred_update: bool | None = None,
    ) -> None:
        super().__init__()
        if n_groups < 1 or dim % n_groups:
            raise ConfigError(f"grvq: dim ({dim}) must be divisible by n_groups ({n_groups})")
        self.dim = dim
        self.n_groups = n_groups
        self.n_codebooks = n_codebooks
        self.codebook_size = codebook_size
        self.group_dim = dim // n_groups
        self.groups = nn.ModuleList(
            ResidualVQ(
                self.group_dim, n_codebooks=n_codebooks, codebook_size=codebook_size, codebook_dim=codebook_dim,
                quantizer_dropout=quantizer_dropout, dropout_per_item=dropout_per_item, ema=ema, decay=decay,
                kmeans_init=kmeans_init, kmeans_iters=kmeans_iters, dead_code_threshold=dead_code_threshold,
                l2_normalize=l2_normalize, deferred_update=deferred_update,
            )
            for _ in range(n_groups)
        )

    def _columns(self, g: int) -> slice:
        return slice(g * self.group_dim, (g + 1) * self.group_dim)

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        """``z [B, D, T]`` -> ``z_q [B, D, T]``, codes ``[B, G * n_q, T]`` (group-major)."""
        b, d, t = z.shape
        first = self.groups[0]
        layers_per_row = None
        if n_q is None and self.training and first.quantizer_dropout > 0:
            n_q, layers_per_row = first.draw_dropout(b, t, z.device)
        n_q = first.check_n_q(n_q)
        x = z.transpose(1, 2).reshape(b * t, d)
        results = [rvq.quantize_rows(x[:, self._columns(g)], n_q, layers_per_row) for g, rvq in enumerate(self.groups)]
        z_q = torch.cat([r.out for r in results], dim=1).view(b, t, d).transpose(1, 2)
        indices = torch.cat([r.indices for r in results], dim=1)  # [N, G * n_q], group-major
        codes = indices.view(b, t, -1).transpose(1, 2).contiguous()
        losses: dict[str, torch.Tensor] = {}
        for r in results:
            for name, value in r.losses.items():
                losses[name] = losses[name] + value if name in losses else value
        stats = {
            "usage": torch.cat([r.usage for r in results]),
            "perplexity": torch.cat([r.perplexity for r in results]),
            "n_q": float(n_q),
        }
        return BottleneckOutput(z_q, [codes], losses, stats)

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:
        """``z [B, D, T]`` -> ``[codes long [B, G * n_q, T]]`` (group-major)."""
        n_q = self.groups[0].check_n_q(n_q)
        b, d, t = z.shape
        x = z.transpose(1, 2).reshape(b * t, d)
        indices = torch.cat([rvq.encode_rows(x[:, self._columns(g)], n_q) for g, rvq in enumerate(self.groups)], dim=1)
        return [indices.view(b, t, -1).transpose(1, 2).contiguous()]

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:
        """``[codes long [B, G * n_q, T]]`` -> ``z_q [B, D, T]``."""
        codes = streams[0]
        b, k, t = codes.shape
        if k % self.n_groups:
            raise ValueError(f"grvq: {k} codebooks is not a multiple of n_groups={self.n_groups}")
        n_q = k // self.n_groups
        rows = codes.transpose(1, 2).reshape(b * t, k)
        parts = [rvq.decode_rows(rows[:, g * n_q : (g + 1) * n_q]) for g, rvq in enumerate(self.groups)]
        return torch.cat(parts, dim=1).view(b, t, self.dim).transpose(1, 2)

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        n_q = self.groups[0].check_n_q(n_q)
        return [StreamSpec("discrete", (self.codebook_size,) * (self.n_groups * n_q))]

    def sync_distributed(self, group=None) -> None:
        """Synchronise every layer of every group in one call (see ``vq``)."""
        sync_codebooks([layer for rvq in self.groups for layer in rvq.layers], group)
