"""k-means units: a fixed codebook of centroids fitted beforehand on a teacher's features.

The discrete units of HuBERT-style semantic tokenizers (Lakhotia et al. 2021, "Generative Spoken
Language Modeling"; Polyak et al. 2021): each frame of a frozen teacher's features is replaced by
the index of its nearest centroid (squared L2), and decoded as that centroid. The centroids come
from :func:`audiolatent.tokenizers.units.fit_kmeans` (``audiolatent fit kmeans``), or from the
checkpoint, where they are a buffer. Nothing here learns, so a decoder trained behind these
units sees exactly the codes the tokenizer emits.

Shapes: ``z [B, D, T]`` -> codes ``long [B, 1, T]`` in ``[0, k)`` -> ``z_q [B, D, T]``. Stats:
``usage`` and ``perplexity`` of the codes in the batch. No losses, nothing to sync.
"""

from __future__ import annotations

import os

import torch

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import Bottleneck, BottleneckOutput, StreamSpec, codebook_stats
from audiolatent.quantize.registry import register_bottleneck

__all__ = ["KMeansUnits", "load_centroids", "CENTROIDS_KEY"]

CENTROIDS_KEY = "centroids"


def load_centroids(path: str | os.PathLike) -> torch.Tensor:
    """The ``[k, D]`` centroids stored under ``"centroids"`` in a safetensors file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise ConfigError(f"kmeans: cannot read centroids from {path} ({' '.join(str(exc).split())[:160]}); "
                          "make them with `audiolatent fit kmeans`") from None
    if CENTROIDS_KEY not in tensors or tensors[CENTROIDS_KEY].dim() != 2:
        raise ConfigError(f"kmeans: {path} holds no [k, D] tensor named {CENTROIDS_KEY!r}")
    return tensors[CENTROIDS_KEY].float()


@register_bottleneck
class KMeansUnits(Bottleneck):
    """Nearest of ``codebook_size`` fixed centroids (see the module docstring).

    Args:
        dim: channels D of ``z`` (the teacher's feature size).
        codebook_size: number of units k.
        centroids: safetensors file from ``audiolatent fit kmeans``; None leaves zeros, to be
            filled from a checkpoint.
        name: name of the codes stream.
    """

    kind = "kmeans"

    def __init__(self, dim: int, codebook_size: int = 500, centroids: str | None = None, name: str = "units") -> None:
        super().__init__()
        if codebook_size < 2:
            raise ConfigError(f"kmeans: codebook_size must be >= 2, got {codebook_size}")
        self.dim, self.codebook_size, self.name = dim, codebook_size, name
        table = torch.zeros(codebook_size, dim)
        if centroids is not None:
            table = load_centroids(centroids)
            if tuple(table.shape) != (codebook_size, dim):
                raise ConfigError(f"kmeans: {centroids} holds {tuple(table.shape)} centroids; the config asks for "
                                  f"codebook_size {codebook_size} x dim {dim}")
        self.register_buffer("centroids", table)

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:
        """``z [B, D, T]`` -> codes ``long [B, 1, T]``."""
        flat = z.transpose(1, 2).reshape(-1, self.dim).to(self.centroids.dtype)
        table = self.centroids
        distance = torch.addmm(table.pow(2).sum(1), flat, table.t(), alpha=-2.0)  # |c|^2 - 2 z.c (+ |z|^2)
        return [distance.argmin(1).view(z.shape[0], 1, z.shape[-1])]

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:
        """Codes ``[B, 1, T]`` -> centroids ``[B, D, T]``."""
        return self.centroids[streams[0][:, 0]].transpose(1, 2)

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        if self.training and not bool(self.centroids.any()):
            raise ConfigError("kmeans: the centroids are all zero (none were given); fit them with `audiolatent fit "
                              "kmeans` and pass the file as bottleneck.centroids")
        codes = self.encode(z)[0]
        usage, perplexity = codebook_stats(codes, self.codebook_size)
        return BottleneckOutput(self.decode([codes]).to(z.dtype), [codes], {}, {"usage": usage, "perplexity": perplexity})

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        return [StreamSpec("discrete", (self.codebook_size,), name=self.name)]
