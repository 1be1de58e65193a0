"""Split residual VQ: a semantic quantiser beside an acoustic RVQ (Mimi, Défossez et al. 2024).

Mimi's split RVQ quantises the encoder output ``z`` twice, in parallel: one plain VQ (the
*semantic* quantiser, whose output a teacher is distilled into during training) and an RVQ of
``n_codebooks - 1`` levels (the *acoustic* quantisers), both on the same ``z``; the latent is
the sum of the two outputs. Putting the semantic level beside rather than before the acoustic
residual keeps the distillation from fighting reconstruction in the residual chain: the
acoustic RVQ is free to encode all of ``z``.

Codes: one stream ``long [B, n_q, T]``, the semantic code first, then the acoustic levels, so a
split RVQ is a drop-in for an ``rvq`` of the same size (same bitrate, same stream layout).
``n_q = 1`` keeps the semantic code alone. Quantizer dropout (training, ``n_q=None``) acts on
the acoustic levels only, drawing 1 to ``n_codebooks - 1`` of them; the semantic level is
always kept. Losses: the two parts' ``commitment`` (and ``codebook``) summed. Stats: ``usage``
and ``perplexity`` per level (semantic first), ``n_q``. ``first_level`` in the output is the
semantic quantiser's output (straight-through), which the ``distill`` and ``phone`` losses of
:mod:`audiolatent.train.semantic` shape.
"""

from __future__ import annotations

import torch

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec
from audiolatent.quantize.registry import register_bottleneck
from audiolatent.quantize.rvq import ResidualVQ

__all__ = ["SplitRVQ"]


@register_bottleneck
class SplitRVQ(Bottleneck):
    """A 1-level semantic VQ and an ``n_codebooks - 1``-level acoustic RVQ on the same ``z``.

    Args:
        dim: channels D of ``z``.
        n_codebooks: levels in all (>= 2): 1 semantic + ``n_codebooks - 1`` acoustic.
        codebook_size, codebook_dim, ema, decay, kmeans_init, kmeans_iters, dead_code_threshold,
        l2_normalize, deferred_update: per level, as :class:`~audiolatent.quantize.rvq.ResidualVQ`.
        quantizer_dropout, dropout_per_item: of the acoustic RVQ.
    """

    kind = "split-rvq"

    def __init__(self, dim: int, n_codebooks: int = 4, codebook_size: int = 256, codebook_dim: int | None = None,
                 quantizer_dropout: float = 0.0, dropout_per_item: bool = False, ema: bool = True, decay: float = 0.99,
                 kmeans_init: bool = True, kmeans_iters: int = 10, dead_code_threshold: float = 2.0,
                 l2_normalize: bool = False, deferred_update: bool | None = None) -> None:
        super().__init__()
        if n_codebooks < 2:
            raise ConfigError(f"split-rvq: n_codebooks must be >= 2 (1 semantic + at least 1 acoustic), got {n_codebooks}")
        common = dict(codebook_size=codebook_size, codebook_dim=codebook_dim, ema=ema, decay=decay, kmeans_init=kmeans_init,
                      kmeans_iters=kmeans_iters, dead_code_threshold=dead_code_threshold, l2_normalize=l2_normalize,
                      deferred_update=deferred_update)
        self.dim, self.n_codebooks, self.codebook_size = dim, n_codebooks, codebook_size
        self.semantic = ResidualVQ(dim, 1, **common)
        self.acoustic = ResidualVQ(dim, n_codebooks - 1, quantizer_dropout=quantizer_dropout,
                                   dropout_per_item=dropout_per_item, **common)

    check_n_q = ResidualVQ.check_n_q  # ``n_q`` or all levels; ValueError outside ``[1, n_codebooks]``

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        """``z [B, D, T]`` -> ``z_q`` = semantic + acoustic outputs, codes ``[B, n_q, T]``."""
        semantic = self.semantic(z, 1)
        parts = [semantic]
        if n_q is None or self.check_n_q(n_q) > 1:
            parts.append(self.acoustic(z, None if n_q is None else n_q - 1))  # None: the acoustic dropout may apply
        z_q = sum(part.z_q for part in parts)
        codes = torch.cat([part.streams[0] for part in parts], dim=1)
        losses: dict[str, torch.Tensor] = {}
        for part in parts:
            for name, value in part.losses.items():
                losses[name] = losses[name] + value if name in losses else value
        stats = {"usage": torch.cat([part.stats["usage"] for part in parts]),
                 "perplexity": torch.cat([part.stats["perplexity"] for part in parts]), "n_q": float(codes.shape[1])}
        return BottleneckOutput(z_q, [codes], losses, stats, first_level=semantic.z_q)

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:
        """``z [B, D, T]`` -> ``[codes long [B, n_q, T]]`` (semantic code first)."""
        n_q = self.check_n_q(n_q)
        codes = self.semantic.encode(z, 1)[0]
        if n_q > 1:
            codes = torch.cat([codes, self.acoustic.encode(z, n_q - 1)[0]], dim=1)
        return [codes]

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:
        """``[codes long [B, n_q, T]]`` (any ``n_q <= n_codebooks``) -> ``z_q [B, D, T]``."""
        codes = streams[0]
        self.check_n_q(codes.shape[1])
        z_q = self.semantic.decode([codes[:, :1]])
        if codes.shape[1] > 1:
            z_q = z_q + self.acoustic.decode([codes[:, 1:]])
        return z_q

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        return [StreamSpec("discrete", (self.codebook_size,) * self.check_n_q(n_q))]

    def sync_distributed(self, group=None) -> None:
        """Apply/synchronise the pending codebook updates of both parts."""
        self.semantic.sync_distributed(group)
        self.acoustic.sync_distributed(group)
