"""Sampling a token from logits: temperature, top-k and nucleus (top-p) filtering.

Top-k as in Fan et al., 2018 ("Hierarchical Neural Story Generation"); top-p (nucleus) as in
Holtzman et al., 2020 ("The Curious Case of Neural Text Degeneration"). Seeded through an
explicit ``torch.Generator`` so generation is reproducible.

Random numbers are drawn on the generator's device (CPU without one) and then moved to the
tensors' device, so one CPU generator seeds the same draws on CPU and GPU.
"""

from __future__ import annotations

import torch

__all__ = ["filter_logits", "sample_from_logits", "seeded_randn", "seeded_rand", "seeded_multinomial"]


def _device_of(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def seeded_randn(shape, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal ``shape`` with ``like``'s device and dtype, drawn from ``generator``."""
    return torch.randn(shape, generator=generator, device=_device_of(generator)).to(like)


def seeded_rand(shape, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform [0, 1) ``shape`` with ``like``'s device and dtype, drawn from ``generator``."""
    return torch.rand(shape, generator=generator, device=_device_of(generator)).to(like)


def seeded_multinomial(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per row of ``probs [N, V]`` -> ``[N]`` long on ``probs``' device."""
    draws = torch.multinomial(probs.to(_device_of(generator)), 1, generator=generator)
    return draws[:, 0].to(probs.device)


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set to ``-inf`` every logit outside the top-k / the top-p nucleus. ``[..., V]`` -> same."""
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0.0 < top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # drop a token when the tokens before it already hold top_p of the mass (keeps >= 1 token)
        drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_from_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token per row: ``logits [..., V]`` -> ``[...]`` long. ``temperature <= 0``: argmax."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    probs = logits.softmax(dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    return seeded_multinomial(flat, generator).reshape(probs.shape[:-1])
