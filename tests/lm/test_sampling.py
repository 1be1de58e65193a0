"""Tests of audiolatent.lm.sampling: top-k / top-p filters and seeded draws."""

import torch

from audiolatent.lm.sampling import filter_logits, sample_from_logits


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 4.0, 3.0, 2.0]])
    kept = torch.isfinite(filter_logits(logits, top_k=2))
    assert kept.tolist() == [[False, True, True, False]]


def test_top_p_keeps_the_smallest_nucleus_and_at_least_one():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = torch.isfinite(filter_logits(probs.log(), top_p=0.7))
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(probs.log(), top_p=0.01)).tolist() == [[True, False, False, False]]


def test_samples_follow_filters_and_seed():
    logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(0))
    draws = sample_from_logits(logits, top_k=3, generator=torch.Generator().manual_seed(1))
    top3 = logits.topk(3, dim=-1).indices
    assert bool((draws[:, None] == top3).any(dim=-1).all())
    again = sample_from_logits(logits, top_k=3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(draws, again)
    assert torch.equal(sample_from_logits(logits, temperature=0), logits.argmax(dim=-1))
