"""Multi-scale residual vector quantisation (SNAC, Siuzdak et al. 2024).

Layer i works at a coarser frame rate: the residual is average-pooled by ``strides[i]`` frames
along time, quantised by a :class:`~audiolatent.quantize.vq.VectorQuantizer`, repeated back
to the base rate (nearest-neighbour upsampling) and subtracted. With ``strides=(4, 2, 1)`` the
first layer spends one code per 4 base frames on slow structure, the last one code per frame.

Shapes: ``z [B, D, T]`` with ``T`` a multiple of ``max(strides)`` (ValueError otherwise) ->
one stream per layer, codes ``long [B, 1, T / strides[i]]`` in ``[0, codebook_size)``, with
``StreamSpec.stride = strides[i]``. ``n_q`` keeps the first (coarsest) ``n_q`` layers.

Lookahead: coarse code j of layer i summarises base frames ``[j*s_i, (j+1)*s_i)``, so the
code covering a frame depends on up to ``s_i - 1`` *later* base frames: a streaming encoder
must wait for a whole ``max(strides)`` block (``max(strides) - 1`` frames of lookahead).

Losses (unweighted, summed over layers): ``commitment`` (and ``codebook`` when ``ema=False``).
Stats: ``usage`` and ``perplexity`` ``[n_q]`` per layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec, codebook_stats
from audiolatent.quantize.registry import register_bottleneck
from audiolatent.quantize.vq import VectorQuantizer, sync_codebooks

__all__ = ["MultiScaleRVQ"]


def _pool(x: torch.Tensor, stride: int) -> torch.Tensor:
    """``[B, T, D] -> [B, T / stride, D]`` mean over consecutive blocks of ``stride`` frames."""
    if stride == 1:
        return x
    b, t, d = x.shape
    return x.reshape(b, t // stride, stride, d).mean(dim=2)


def _upsample(x: torch.Tensor, stride: int) -> torch.Tensor:
    """``[B, T', D] -> [B, T' * stride, D]`` repeating each frame ``stride`` times."""
    if stride == 1:
        return x
    b, t, d = x.shape
    return x[:, :, None, :].expand(b, t, stride, d).reshape(b, t * stride, d)


@register_bottleneck
class MultiScaleRVQ(Bottleneck):
    """Residual VQ whose layer i runs at ``1 / strides[i]`` of the base frame rate.

    Args:
        dim: channels D of ``z``.
        strides: temporal stride of each layer, coarse to fine, e.g. ``(4, 2, 1)``.
        codebook_size, codebook_dim, ema, decay, kmeans_init, kmeans_iters,
        dead_code_threshold, l2_normalize, deferred_update: per layer, see
            :class:`~audiolatent.quantize.vq.VectorQuantizer` (SNAC: 4096 codes,
            ``codebook_dim=8``, ``l2_normalize=True``, ``ema=False``).
    """

    kind = "msrvq"

    def __init__(
        self,
        dim: int,
        strides: Sequence[int] = (4, 2, 1),
        codebook_size: int = 4096,
        codebook_dim: int | None = None,
        ema: bool = True,
        decay: float = 0.99,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 2.0,
        l2_normalize: bool = False,
        deferred_update: bool | None = None,
    ) -> None:
        super().__init__()
        strides = tuple(int(s) for s in strides)
        if not strides or any(s < 1 for s in strides):
            raise ConfigError(f"msrvq: strides must be a non-empty list of positive ints, got {list(strides)}")
        self.dim = dim
        self.strides = strides
        self.codebook_size = codebook_size
        self.layers = nn.ModuleList(
            VectorQuantizer(
                dim, codebook_size, codebook_dim, ema=ema, decay=decay, kmeans_init=kmeans_init,
                kmeans_iters=kmeans_iters, dead_code_threshold=dead_code_threshold,
                l2_normalize=l2_normalize, deferred_update=deferred_update,
            )
            for _ in strides
        )

    def check_n_q(self, n_q: int | None) -> int:
        if n_q is None:
            return len(self.strides)
        if not 1 <= n_q <= len(self.strides):
            raise ValueError(f"n_q must be in [1, {len(self.strides)}], got {n_q}")
        return int(n_q)

    def _check_length(self, t: int) -> None:
        block = max(self.strides)
        if t % block:
            raise ValueError(
                f"msrvq: input length {t} frames is not a multiple of the largest stride {block}; "
                f"pad or crop to {t - t % block} or {t + block - t % block} frames"
            )

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        """``z [B, D, T]`` -> ``z_q [B, D, T]``, streams ``[B, 1, T / s_i]`` per layer."""
        n_q = self.check_n_q(n_q)
        b, d, t = z.shape
        self._check_length(t)
        residual = z.transpose(1, 2)  # [B, T, D]
        out = torch.zeros_like(residual)
        streams, usage, perplexity = [], [], []
        commitment = z.new_zeros(())
        codebook = None
        for layer, stride in zip(self.layers[:n_q], self.strides):
            pooled = _pool(residual, stride)
            result = layer.quantize(pooled.reshape(-1, d))
            q = _upsample(result.out.view(b, t // stride, d), stride)
            out = out + q
            residual = residual - q
            commitment = commitment + result.commitment
            if result.codebook is not None:
                codebook = result.codebook if codebook is None else codebook + result.codebook
            streams.append(result.indices.view(b, 1, t // stride))
            u, p = codebook_stats(result.indices, layer.codebook_size)
            usage.append(u)
            perplexity.append(p)
        losses = {"commitment": commitment}
        if codebook is not None:
            losses["codebook"] = codebook
        stats = {"usage": torch.stack(usage), "perplexity": torch.stack(perplexity)}
        return BottleneckOutput(out.transpose(1, 2), streams, losses, stats)

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:
        """``z [B, D, T]`` -> ``n_q`` streams ``long [B, 1, T / strides[i]]``."""
        n_q = self.check_n_q(n_q)
        b, d, t = z.shape
        self._check_length(t)
        residual = z.transpose(1, 2)
        streams = []
        for i, (layer, stride) in enumerate(zip(self.layers[:n_q], self.strides)):
            idx = layer.encode_rows(_pool(residual, stride).reshape(-1, d))
            streams.append(idx.view(b, 1, t // stride))
            if i + 1 < n_q:
                residual = residual - _upsample(layer.decode_rows(idx).view(b, t // stride, d), stride)
        return streams

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:
        """The first ``n_q`` streams (``[B, 1, T / strides[i]]`` each) -> ``z_q [B, D, T]``."""
        n_q = self.check_n_q(len(streams))
        b, t = streams[0].shape[0], streams[0].shape[-1] * self.strides[0]
        out = None
        for layer, stride, codes in zip(self.layers[:n_q], self.strides, streams):
            if codes.shape[-1] * stride != t:
                raise ValueError(f"msrvq: stream lengths {[s.shape[-1] for s in streams]} do not match strides {self.strides}")
            q = _upsample(layer.decode_rows(codes.reshape(b, -1)), stride)
            out = q if out is None else out + q
        return out.transpose(1, 2)

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        n_q = self.check_n_q(n_q)
        return [
            StreamSpec("discrete", (self.codebook_size,), stride=s, name=f"scale{i}")
            for i, s in enumerate(self.strides[:n_q])
        ]

    def sync_distributed(self, group=None) -> None:
        """Synchronise every layer's codebook in one call (see ``vq``)."""
        sync_codebooks(list(self.layers), group)
