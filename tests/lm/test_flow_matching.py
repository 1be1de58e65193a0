"""Tests of audiolatent.lm.flow_matching: infill masking, integrators, and a toy 2-D mixture."""

import math

import pytest
import torch

from audiolatent.lm.flow_matching import InfillFlowMatching, span_mask


def tiny() -> InfillFlowMatching:
    torch.manual_seed(0)
    return InfillFlowMatching(2, dim=32, num_layers=1, num_heads=2)


def test_span_mask_is_one_contiguous_span_of_the_requested_fraction():
    mask = span_mask(50, 20, 0.3, 0.6, generator=torch.Generator().manual_seed(0))
    lengths = mask.sum(-1)
    assert bool((lengths >= 6).all()) and bool((lengths <= 12).all())
    for row in mask:
        idx = row.nonzero().flatten()
        assert int(idx[-1] - idx[0] + 1) == len(idx)


def test_masked_context_never_leaks_and_unmasked_frames_are_kept():
    model = tiny().eval()
    context = torch.randn(2, 2, 8)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[:, 3:6] = True
    changed = context.clone()
    changed[..., 3:6] += 5.0
    x_s, s = torch.randn(2, 2, 8), torch.tensor([0.3, 0.7])
    assert torch.equal(model.velocity(x_s, s, context, mask), model.velocity(x_s, s, changed, mask))
    out = model.sample(context, mask, n_steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[..., ~mask[0]], context[..., ~mask[0]])
    assert not torch.equal(out[..., 3:6], context[..., 3:6])


def test_loss_counts_masked_frames_only():
    model = tiny()
    x = torch.randn(3, 2, 6)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[0, 2] = True
    result = model.loss(x, mask, generator=torch.Generator().manual_seed(0))
    assert result.n_masked == 1 and result.loss.ndim == 0
    result.loss.backward()
    assert model.loss(x, generator=torch.Generator().manual_seed(0)).n_masked >= 3


def test_midpoint_integrates_more_accurately_than_euler():
    model = tiny()
    model.velocity = lambda x, s, context, mask: x  # dx/ds = x: x(1) = e x(0)
    context, mask = torch.zeros(1, 2, 3), torch.ones(1, 3, dtype=torch.bool)
    start = torch.randn(context.shape, generator=torch.Generator().manual_seed(0))
    errors = {}
    for method in ("euler", "midpoint"):
        out = model.sample(context, mask, n_steps=8, method=method, generator=torch.Generator().manual_seed(0))
        errors[method] = float((out - math.e * start).abs().max())
    assert errors["midpoint"] < 0.1 * errors["euler"]
    with pytest.raises(ValueError):
        model.sample(context, mask, method="rk4")


def test_learns_a_two_dimensional_mixture_from_scratch():
    model = tiny()
    data_gen = torch.Generator().manual_seed(0)

    def mixture(batch, n_frames):  # frames iid from (+-2, 0) + N(0, 0.5^2): mean 0, cov diag(4.25, 0.25)
        centre = torch.randint(0, 2, (batch, n_frames), generator=data_gen) * 4.0 - 2.0
        return torch.stack([centre, torch.zeros(batch, n_frames)], dim=1) + 0.5 * torch.randn(batch, 2, n_frames, generator=data_gen)

    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 300)
    everything = torch.ones(128, 2, dtype=torch.bool)
    for _ in range(300):
        loss = model.loss(mixture(128, 2), everything, generator=data_gen).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    model.eval()
    samples = model.sample(torch.zeros(1000, 2, 2), torch.ones(1000, 2, dtype=torch.bool), n_steps=16, method="midpoint",
                           generator=torch.Generator().manual_seed(1))
    frames = samples.transpose(1, 2).reshape(-1, 2)
    cov = torch.cov(frames.T)
    assert frames.mean(0).abs().max() < 0.25
    assert abs(float(cov[0, 0]) - 4.25) < 0.6 and abs(float(cov[1, 1]) - 0.25) < 0.1 and abs(float(cov[0, 1])) < 0.2
    assert 0.4 < float((frames[:, 0] > 0).float().mean()) < 0.6
