"""Tests of audiolatent.lm.continuous: causality, KV-cached generation == full pass, loss plumbing."""

import pytest
import torch

from audiolatent.lm.continuous import ContinuousLM


def tiny(head: str) -> ContinuousLM:
    torch.manual_seed(0)
    return ContinuousLM(3, head, dim=32, num_layers=2, num_heads=2).eval()


def test_state_at_t_sees_only_earlier_frames():
    model = tiny("gaussian")
    x = torch.randn(1, 3, 8)
    changed = x.clone()
    changed[..., 4] += 1.0
    moved = (model.hidden(x) - model.hidden(changed)).abs().amax(dim=-1)[0] > 1e-6
    assert moved.tolist() == [False] * 5 + [True] * 3


@pytest.mark.parametrize("head", ["gaussian", "gmm", "flow"])
@pytest.mark.parametrize("n_prompt", [0, 3])
def test_generation_states_equal_the_full_pass(head, n_prompt):
    model = tiny(head)
    seen = []
    original = model.head.sample

    def recording_sample(h, generator=None):
        seen.append(h)
        return original(h, generator)

    model.head.sample = recording_sample
    prompt = torch.randn(2, 3, n_prompt)
    out = model.generate(prompt, 4, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, n_prompt + 4)
    assert torch.equal(out[..., :n_prompt], prompt)
    full = model.hidden(out)[:, n_prompt:]
    assert (torch.stack(seen, dim=1) - full).abs().max() <= 1e-5


def test_loss_reports_nll_per_frame_except_for_the_flow_head():
    x = torch.randn(2, 3, 6)
    gaussian = tiny("gaussian")
    result = gaussian.loss(x)
    nll = gaussian.head.nll(gaussian.hidden(x), x.transpose(1, 2))
    assert torch.allclose(result.nll_per_frame, nll.mean())
    assert result.n_frames == 12
    result.loss.backward()
    flow = tiny("flow").loss(x)
    assert flow.nll_per_frame is None and flow.loss.ndim == 0
    assert tiny("gmm").predict_mean(x).shape == x.shape
