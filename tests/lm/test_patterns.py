"""Tests of audiolatent.lm.patterns: exact build/revert, layouts and the registry."""

import pytest
import torch

from audiolatent.lm.patterns import PATTERNS, DelayPattern, FlatPattern, VallePattern, get_pattern


@pytest.mark.parametrize("name", sorted(PATTERNS))
@pytest.mark.parametrize("n_codebooks", range(1, 9))
@pytest.mark.parametrize("n_frames", [1, 7])
def test_build_and_revert_are_exact_inverses(name, n_codebooks, n_frames):
    pattern = get_pattern(name, n_codebooks, pad_id=-5)
    codes = torch.randint(0, 1000, (3, n_codebooks, n_frames), generator=torch.Generator().manual_seed(n_codebooks))
    sequence, valid = pattern.build(codes)
    assert sequence.shape == (3, pattern.n_streams, pattern.n_steps(n_frames))
    assert valid.shape == sequence.shape[1:]
    assert int(valid.sum()) == n_codebooks * n_frames  # every code placed exactly once
    assert bool((sequence[:, ~valid] == -5).all())
    assert torch.equal(pattern.revert(sequence, n_frames), codes)


def test_delay_layout_matches_musicgen():
    codes = torch.tensor([[[1, 2, 3], [4, 5, 6]]])
    sequence, valid = DelayPattern(2, pad_id=-1).build(codes)
    assert sequence.tolist() == [[[1, 2, 3, -1], [-1, 4, 5, 6]]]
    assert valid.tolist() == [[True, True, True, False], [False, True, True, True]]


def test_flat_is_frame_major_single_stream():
    codes = torch.tensor([[[1, 2, 3], [4, 5, 6]]])
    pattern = FlatPattern(2)
    sequence, _ = pattern.build(codes)
    assert sequence.tolist() == [[[1, 4, 2, 5, 3, 6]]]
    assert pattern.codebook_of_step(6).tolist() == [0, 1, 0, 1, 0, 1]


def test_valle_puts_codebook_zero_first_then_the_rest_in_parallel():
    codes = torch.tensor([[[1, 2], [3, 4], [5, 6]]])
    sequence, valid = VallePattern(3, pad_id=0).build(codes)
    assert sequence.tolist() == [[[1, 2, 0, 0], [0, 0, 3, 4], [0, 0, 5, 6]]]


def test_depth_is_parallel_with_a_flag():
    assert PATTERNS["depth"].depth and not PATTERNS["parallel"].depth
    codes = torch.randint(0, 5, (2, 3, 4))
    assert torch.equal(get_pattern("depth", 3).build(codes)[0], codes)


def test_known_mask_marks_prompt_slots():
    known = DelayPattern(2).known_mask(2, 4)
    assert known.tolist() == [[True, True, False, False, False], [False, True, True, False, False]]


def test_unknown_pattern_and_wrong_shapes_raise():
    with pytest.raises(ValueError, match="unknown codebook pattern"):
        get_pattern("spiral", 2)
    with pytest.raises(ValueError):
        DelayPattern(2).build(torch.zeros(1, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError):
        DelayPattern(2).revert(torch.zeros(1, 2, 4, dtype=torch.long), 4)
