"""Tests of audiolatent.lm.token_lm: KV-cached generation == full forward, causality, loss units."""

import math

import pytest
import torch
import torch.nn.functional as F

from audiolatent.lm.patterns import PATTERNS
from audiolatent.lm.token_lm import TokenLM

SIZES = (5, 7, 6)


def tiny(pattern: str, n_codebooks: int = 3) -> TokenLM:
    torch.manual_seed(0)
    return TokenLM(SIZES[:n_codebooks], pattern=pattern, dim=32, num_layers=2, num_heads=2, depth_dim=32, depth_heads=2).eval()


def order_key(model: TokenLM, n_frames: int) -> torch.Tensor:
    """[K, T]: code (k, t) may only depend on codes with a strictly smaller key."""
    if model.pattern.depth:
        return torch.arange(n_frames)[None] * model.n_codebooks + torch.arange(model.n_codebooks)[:, None]
    return model._frame_steps(n_frames, torch.device("cpu"))


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("n_codebooks", [1, 3])
@pytest.mark.parametrize("n_prompt", [0, 3])
def test_incremental_decoding_logits_equal_full_forward(pattern, n_codebooks, n_prompt):
    model = tiny(pattern, n_codebooks)
    prompt = torch.randint(0, 5, (2, n_codebooks, n_prompt), generator=torch.Generator().manual_seed(1))
    codes, logits = model.generate(prompt, 4, generator=torch.Generator().manual_seed(2), return_logits=True)
    assert codes.shape == (2, n_codebooks, n_prompt + 4)
    assert torch.equal(codes[..., :n_prompt], prompt)
    for k, (incremental, full) in enumerate(zip(logits, model(codes))):
        assert full.shape == (2, n_prompt + 4, SIZES[k])
        assert (incremental - full).abs().max() <= 1e-5


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_logits_depend_only_on_codes_the_pattern_places_before(pattern):
    model, n_frames = tiny(pattern), 5
    codes = torch.randint(0, 5, (1, 3, n_frames), generator=torch.Generator().manual_seed(0))
    key = order_key(model, n_frames)
    base = model(codes)
    for k_changed in range(3):
        for t_changed in range(n_frames):
            changed = codes.clone()
            changed[0, k_changed, t_changed] = (changed[0, k_changed, t_changed] + 1) % 5
            for k, (a, b) in enumerate(zip(base, model(changed))):
                moved = (a - b).abs().amax(dim=-1)[0] > 1e-6  # [T]
                allowed = key[k] > key[k_changed, t_changed]
                assert not bool((moved & ~allowed).any()), (k_changed, t_changed, k)


def test_delay_step_has_zero_gradient_to_later_inputs():
    model = tiny("delay")
    captured = {}

    def keep(module, inputs, output):
        output.retain_grad()
        captured["embedding"] = output  # [B, K', S, dim]

    model.embedding.register_forward_hook(keep)
    n_frames, step = 6, 4
    codes = torch.randint(0, 5, (1, 3, n_frames), generator=torch.Generator().manual_seed(0))
    logits = model(codes)
    # code (k, t) of the delay pattern sits at step t + k
    target = sum(logits[k][0, step - k].sum() for k in range(3) if 0 <= step - k < n_frames)
    target.backward()
    grad = captured["embedding"].grad[0].abs().sum(dim=(0, 2))  # [S] per input step
    assert bool((grad[step + 1 :] == 0).all())
    assert bool((grad[: step + 1] > 0).all())


def test_loss_is_cross_entropy_per_codebook_in_nats_and_bits():
    model = tiny("delay")
    codes = torch.randint(0, 5, (2, 3, 6), generator=torch.Generator().manual_seed(0))
    result = model.loss(codes)
    logits = model(codes)
    expected = torch.stack([F.cross_entropy(lg.reshape(-1, lg.shape[-1]), codes[:, k].reshape(-1)) for k, lg in enumerate(logits)])
    assert torch.allclose(result.nats_per_codebook, expected)
    assert torch.allclose(result.bits_per_codebook, expected / math.log(2))
    assert torch.allclose(result.bits_per_frame, (expected / math.log(2)).sum())
    assert result.tokens_per_codebook.tolist() == [12, 12, 12]
    result.loss.backward()


def test_generation_is_seeded_and_greedy_equals_top_1():
    model = tiny("flat")
    prompt = torch.zeros(1, 3, 2, dtype=torch.long)
    a = model.generate(prompt, 5, generator=torch.Generator().manual_seed(3))
    b = model.generate(prompt, 5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    greedy = model.generate(prompt, 5, temperature=0)
    assert torch.equal(greedy, model.generate(prompt, 5, top_k=1, generator=torch.Generator().manual_seed(9)))
    for k, size in enumerate(SIZES):
        assert int(a[:, k].max()) < size


def test_prompt_with_wrong_codebook_count_raises():
    with pytest.raises(ValueError, match="codebooks"):
        tiny("delay").generate(torch.zeros(1, 2, 3, dtype=torch.long), 2)
