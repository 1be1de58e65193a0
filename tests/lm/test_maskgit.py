"""Tests of audiolatent.lm.maskgit: SoundStorm-style decoding schedule, committed tokens, training."""

import pytest
import torch

from audiolatent.lm.maskgit import MASK_ID, MaskGIT, cosine_schedule

SIZES = (5, 6, 7)


def tiny() -> MaskGIT:
    torch.manual_seed(0)
    return MaskGIT(SIZES, dim=32, num_layers=2, num_heads=2).eval()


@pytest.mark.parametrize("steps", [[4, 3, 2], [1, 1, 1], [8, 8, 8]])
def test_decoding_fills_every_slot_in_the_stated_steps_and_never_changes_committed_tokens(steps):
    model = tiny()
    n_frames = 11
    codes, trace = model.generate(n_frames, batch_size=2, steps_per_codebook=steps,
                                  generator=torch.Generator().manual_seed(0), return_trace=True)
    assert len(trace) == sum(steps)
    assert not bool((codes == MASK_ID).any())
    for k in range(3):
        assert int(codes[:, k].max()) < SIZES[k] and int(codes[:, k].min()) >= 0
    previous = torch.full_like(codes, MASK_ID)
    step = 0
    for k, n_steps in enumerate(steps):
        for i in range(n_steps):
            current = trace[step]
            committed = previous != MASK_ID
            assert torch.equal(current[committed], previous[committed])  # committed never change
            assert not bool((current[:, k + 1 :] != MASK_ID).any())  # later codebooks untouched
            remaining = int((current[0, k] == MASK_ID).sum())
            expected = 0 if i == n_steps - 1 else int(n_frames * float(cosine_schedule((i + 1) / n_steps)))
            assert remaining <= expected
            assert bool(((current[:, k] == MASK_ID).sum(-1) == remaining).all())
            previous, step = current, step + 1
        assert not bool((previous[:, k] == MASK_ID).any())  # codebook k complete after its steps
    assert torch.equal(previous, codes)


def test_prompt_frames_are_kept():
    model = tiny()
    prompt = torch.randint(0, 5, (2, 3, 4))
    codes = model.generate(9, steps_per_codebook=3, prompt_codes=prompt, generator=torch.Generator().manual_seed(0))
    assert torch.equal(codes[..., :4], prompt)
    assert not bool((codes == MASK_ID).any())


def test_masked_training_loss_and_a_short_fit():
    model = tiny().train()
    # predictable structure: code (b, k, t) = (t + b + k) mod 5
    codes = (torch.arange(10)[None, None] + torch.arange(4)[:, None, None] + torch.arange(3)[None, :, None]) % 5

    def held_out_loss():
        with torch.no_grad():
            return sum(float(model.loss(codes, generator=torch.Generator().manual_seed(s)).loss) for s in range(4)) / 4

    result = model.loss(codes, generator=torch.Generator().manual_seed(0))
    assert result.levels.shape == (4,) and bool((result.n_masked >= 1).all())
    before = held_out_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(40):
        loss = model.loss(codes, generator=generator).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert held_out_loss() < 0.5 * before


def test_bidirectional_context_and_bad_steps():
    model = tiny()
    codes = torch.randint(0, 5, (1, 3, 6))
    changed = codes.clone()
    changed[0, 0, 5] = (changed[0, 0, 5] + 1) % 5
    assert (model(codes)[0][0, 0] - model(changed)[0][0, 0]).abs().max() > 0  # sees the future
    with pytest.raises(ValueError):
        model.generate(4, steps_per_codebook=[2, 2])
