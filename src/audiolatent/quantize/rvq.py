"""Residual vector quantisation (SoundStream, Zeghidour et al. 2021; EnCodec; DAC).

Layer 1 quantises ``z``, layer i quantises what layers 1..i-1 left over; the reconstruction is
the sum of the layers' outputs. Using only the first ``n_q`` layers gives a lower bitrate from
the same model, and *quantizer dropout* trains for that: in training, with probability
``quantizer_dropout``, ``n_q`` is drawn uniformly from ``[1, n_codebooks]`` -- once per batch
(SoundStream), or per batch item with ``dropout_per_item=True`` (DAC; all layers are then
computed and the dropped ones masked, so every parameter is used in every step, which DDP
without ``find_unused_parameters`` needs when layers have parameters).

Shapes: ``z [B, D, T]`` -> one stream of codes ``long [B, n_q, T]`` (layer-major, coarse first),
each in ``[0, codebook_size)``. Losses (unweighted): ``commitment`` (and ``codebook`` when
``ema=False``), each the *sum* over layers of the layer's mean squared error. Stats: ``usage``
and ``perplexity`` ``[n_q]`` per layer, ``n_q``.

Codebook updates follow :mod:`audiolatent.quantize.vq`: ``sync_distributed`` synchronises all
layers with one all-reduce and at most one broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec, codebook_stats
from audiolatent.quantize.cache import TableCache, is_tracing
from audiolatent.quantize.registry import register_bottleneck
from audiolatent.quantize.vq import VectorQuantizer, sync_codebooks

#: layers' output tables of at most this many bytes in all are also kept stacked, so that decoding
#: is one summed gather; larger ones are gathered layer by layer, never copied again
STACK_MAX_BYTES = 16 << 20

__all__ = ["ResidualVQ", "RVQRowsResult"]


@dataclass
class RVQRowsResult:
    """What :meth:`ResidualVQ.quantize_rows` returns."""

    out: torch.Tensor  # [N, D], straight-through gradient to the input
    indices: torch.Tensor  # long [N, n_q]
    losses: dict[str, torch.Tensor]  # {"commitment": scalar, ("codebook": scalar)}
    usage: torch.Tensor  # [n_q]
    perplexity: torch.Tensor  # [n_q]
    first: torch.Tensor | None = None  # [N, D]: the first layer's output alone (straight-through)


@register_bottleneck
class ResidualVQ(Bottleneck):
    """``n_codebooks`` :class:`VectorQuantizer` layers applied to the running residual.

    Args:
        dim: channels D of ``z``.
        n_codebooks: number of layers N.
        codebook_size, codebook_dim, ema, decay, kmeans_init, kmeans_iters,
        dead_code_threshold, l2_normalize, deferred_update: per layer, see
            :class:`VectorQuantizer`.
        quantizer_dropout: probability, in training, of using a random ``n_q`` in [1, N].
        dropout_per_item: draw that ``n_q`` per batch item (DAC) instead of per batch.
    """

    kind = "rvq"

    def __init__(
        self,
        dim: int,
        n_codebooks: int = 8,
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
        if n_codebooks < 1:
            raise ConfigError(f"rvq: n_codebooks must be >= 1, got {n_codebooks}")
        if not 0.0 <= quantizer_dropout <= 1.0:
            raise ConfigError(f"rvq: quantizer_dropout must be in [0, 1], got {quantizer_dropout}")
        self.dim = dim
        self.n_codebooks = n_codebooks
        self.codebook_size = codebook_size
        self.quantizer_dropout = quantizer_dropout
        self.dropout_per_item = dropout_per_item
        self.layers = nn.ModuleList(
            VectorQuantizer(
                dim, codebook_size, codebook_dim, ema=ema, decay=decay, kmeans_init=kmeans_init,
                kmeans_iters=kmeans_iters, dead_code_threshold=dead_code_threshold,
                l2_normalize=l2_normalize, deferred_update=deferred_update,
            )
            for _ in range(n_codebooks)
        )
        self._cache = TableCache()
        self._offsets: dict[tuple[int, torch.device], torch.Tensor] = {}  # first row of each layer's table

    def check_n_q(self, n_q: int | None) -> int:
        """``n_q`` or all layers; ValueError outside ``[1, n_codebooks]``."""
        if n_q is None:
            return self.n_codebooks
        if not 1 <= n_q <= self.n_codebooks:
            raise ValueError(f"n_q must be in [1, {self.n_codebooks}], got {n_q}")
        return int(n_q)

    def draw_dropout(self, n_items: int, frames: int, device: torch.device) -> tuple[int, torch.Tensor | None]:
        """Quantizer dropout for one training batch: ``(n_q, layers_per_row)``.

        Per batch: ``(random or full n_q, None)``. Per item: ``(N, long [n_items * frames])``
        giving each row (item-major, as ``z.transpose(1, 2).reshape(-1, D)``) its layer count.
        """
        n = self.n_codebooks
        if self.dropout_per_item:
            drop = torch.rand(n_items) < self.quantizer_dropout
            counts = torch.where(drop, torch.randint(1, n + 1, (n_items,)), torch.full((n_items,), n))
            return n, counts.repeat_interleave(frames).to(device)
        if float(torch.rand(())) < self.quantizer_dropout:
            return int(torch.randint(1, n + 1, ())), None
        return n, None

    # ------------------------------------------------------------------ flat API [N, D] rows
    def quantize_rows(self, x: torch.Tensor, n_q: int, layers_per_row: torch.Tensor | None = None) -> RVQRowsResult:
        """Training/eval path on rows ``x [N, D]`` with the first ``n_q`` layers."""
        residual, out = x, torch.zeros_like(x)
        indices, usage, perplexity = [], [], []
        commitment = x.new_zeros(())
        codebook = first = None
        for i, layer in enumerate(self.layers[:n_q]):
            weight = None if layers_per_row is None else (layers_per_row > i).to(x.dtype)
            result = layer.quantize(residual, weight)
            q = result.out if weight is None else result.out * weight[:, None]
            first = q if first is None else first
            out = out + q
            residual = residual - q
            commitment = commitment + result.commitment
            if result.codebook is not None:
                codebook = result.codebook if codebook is None else codebook + result.codebook
            indices.append(result.indices)
            u, p = codebook_stats(result.indices, layer.codebook_size)
            usage.append(u)
            perplexity.append(p)
        losses = {"commitment": commitment}
        if codebook is not None:
            losses["codebook"] = codebook
        return RVQRowsResult(out, torch.stack(indices, dim=1), losses, torch.stack(usage), torch.stack(perplexity), first)

    @torch.no_grad()
    def encode_rows(self, x: torch.Tensor, n_q: int) -> torch.Tensor:
        """Rows ``[N, D]`` -> codes ``long [N, n_q]``."""
        codes = torch.empty(x.shape[0], n_q, dtype=torch.long, device=x.device)
        residual = x
        for i, layer in enumerate(self.layers[:n_q]):
            idx = layer.encode_rows(residual)
            codes[:, i] = idx
            if i + 1 < n_q:
                residual = residual - layer.decode_rows(idx)
        return codes

    def _stacked_tables(self) -> torch.Tensor:
        """``[N * K, D]``: every layer's output table, one after the other (cached at inference)."""
        sources = [t for layer in self.layers for t in (layer.embed, *layer.parameters())]
        return self._cache.get(self, "stack", sources, lambda: torch.cat([layer.output_table() for layer in self.layers]))

    def decode_rows(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``long [N, n_q]`` -> ``[N, D]``: a summed gather over all layers' tables (one gather from
        their stacked copy where that is at most :data:`STACK_MAX_BYTES`)."""
        n_q = self.check_n_q(codes.shape[1])
        if n_q == 1:
            return self.layers[0].decode_rows(codes[:, 0])
        if self._table_bytes() * n_q > STACK_MAX_BYTES:
            # the layers' own tables, gathered and summed in layer order (what embedding_bag adds):
            # a stacked copy would double tables that are already large (DAC-16k: 12 x 4 MiB)
            out = self.layers[0].decode_rows(codes[:, 0])
            for i in range(1, n_q):
                out += self.layers[i].decode_rows(codes[:, i])
            return out
        offsets = self._offsets.get((n_q, codes.device)) if not is_tracing() else None
        if offsets is None:  # made once per (n_q, device): a streamed frame should not rebuild it
            offsets = torch.arange(n_q, device=codes.device) * self.codebook_size
            if not is_tracing():  # a tracer's tensor must not outlive the trace
                self._offsets[(n_q, codes.device)] = offsets
        return F.embedding_bag(codes + offsets, self._stacked_tables()[: n_q * self.codebook_size], mode="sum")

    def _table_bytes(self) -> int:
        """Bytes of one layer's output table ``[K, D]`` (in its codebook's dtype)."""
        return self.codebook_size * self.dim * self.layers[0].embed.element_size()

    # ------------------------------------------------------------------ Bottleneck interface
    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        """``z [B, D, T]`` -> ``z_q [B, D, T]`` and codes ``[B, n_q, T]``.

        An explicit ``n_q`` is always honoured; quantizer dropout applies only when ``n_q``
        is None in training mode.
        """
        b, d, t = z.shape
        layers_per_row = None
        if n_q is None and self.training and self.quantizer_dropout > 0:
            n_q, layers_per_row = self.draw_dropout(b, t, z.device)
        n_q = self.check_n_q(n_q)
        result = self.quantize_rows(z.transpose(1, 2).reshape(b * t, d), n_q, layers_per_row)
        z_q = result.out.view(b, t, d).transpose(1, 2)
        codes = result.indices.view(b, t, n_q).transpose(1, 2).contiguous()
        stats = {"usage": result.usage, "perplexity": result.perplexity, "n_q": float(n_q)}
        first = result.first.view(b, t, d).transpose(1, 2)
        return BottleneckOutput(z_q, [codes], result.losses, stats, first_level=first)

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:
        """``z [B, D, T]`` -> ``[codes long [B, n_q, T]]``."""
        n_q = self.check_n_q(n_q)
        b, d, t = z.shape
        codes = self.encode_rows(z.transpose(1, 2).reshape(b * t, d), n_q)
        return [codes.view(b, t, n_q).transpose(1, 2).contiguous()]

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:
        """``[codes long [B, n_q, T]]`` (any ``n_q <= n_codebooks``) -> ``z_q [B, D, T]``."""
        codes = streams[0]
        b, n_q, t = codes.shape
        return self.decode_rows(codes.transpose(1, 2).reshape(b * t, n_q)).view(b, t, self.dim).transpose(1, 2)

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        return [StreamSpec("discrete", (self.codebook_size,) * self.check_n_q(n_q))]

    def sync_distributed(self, group=None) -> None:
        """Apply/synchronise the pending codebook updates of every layer (see ``vq``)."""
        sync_codebooks(list(self.layers), group)
