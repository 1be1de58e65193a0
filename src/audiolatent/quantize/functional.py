"""Small functions shared by the bottlenecks: straight-through rounding, masked MSE, k-means.

Rows are ``[N, d]`` tensors (frames flattened over batch and time).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

__all__ = ["is_distributed", "straight_through", "masked_mse", "kmeans", "kmeans_plus_plus"]


def is_distributed(group=None) -> bool:
    """True when torch.distributed is initialised with more than one rank in ``group``."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1


def straight_through(value: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``value`` in the forward pass, identity gradient to ``source`` (bit-exact value)."""
    return value.detach() + (source - source.detach())


def masked_mse(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error of rows ``a, b [N, d]``, counting only rows with ``weight [N] > 0``."""
    if weight is None:
        return F.mse_loss(a, b)
    per_row = (a - b).pow(2).mean(dim=1)
    return (per_row * weight).sum() / weight.sum().clamp_min(1.0)


def kmeans_plus_plus(samples: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``long [k]`` of k-means++ seeds (Arthur & Vassilvitskii 2007) among ``samples [N, d]``.

    Each next seed is drawn with probability proportional to its squared distance to the
    nearest seed so far, so well-separated clusters each get a seed. With N <= k every sample
    is a seed and the rest are drawn with replacement.
    """
    n = samples.shape[0]
    device = samples.device
    if n <= k:
        return torch.cat([torch.randperm(n, device=device), torch.randint(0, n, (k - n,), device=device)])
    picks = torch.empty(k, dtype=torch.long, device=device)
    picks[0] = torch.randint(0, n, (), device=device)
    nearest = (samples - samples[picks[0]]).pow(2).sum(1)
    for i in range(1, k):
        picks[i] = torch.multinomial(nearest + 1e-30, 1)[0]  # + tiny: all-duplicate samples stay drawable
        nearest = torch.minimum(nearest, (samples - samples[picks[i]]).pow(2).sum(1))
    return picks


def kmeans(samples: torch.Tensor, k: int, iters: int, cosine: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on ``samples [N, d]``: returns centroids ``[k, d]`` and counts ``[k]``.

    Seeds by k-means++; a cluster that empties keeps its previous centroid. ``cosine``
    assigns by dot product of unit vectors (and renormalises the centroids).
    """
    centroids = samples[kmeans_plus_plus(samples, k)].clone()
    counts = torch.zeros(k, device=samples.device)
    for _ in range(max(iters, 1)):
        if cosine:
            assign = (samples @ centroids.t()).argmax(dim=1)
        else:
            assign = torch.addmm(centroids.pow(2).sum(1), samples, centroids.t(), alpha=-2.0).argmin(dim=1)
        counts = torch.bincount(assign, minlength=k).to(samples.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, assign, samples)
        new = sums / counts.clamp_min(1.0)[:, None]
        if cosine:
            new = F.normalize(new, dim=1)
        centroids = torch.where(counts[:, None] > 0, new, centroids)
    return centroids, counts
