"""Tests of audiolatent.nn.latency on maps whose lookahead is known by construction."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.nn.latency import downsampling_lookahead, measure_lookahead, upsampling_lookahead


def shift_left(x, n):  # y[i] = x[i + n]: needs n samples of future
    return F.pad(x[..., n:], (0, n))


def test_rate_preserving_shift():
    assert measure_lookahead(lambda x: shift_left(x, 3), 50, 1, 1) == 3
    assert measure_lookahead(lambda x: x, 50, 1, 1) == 0
    assert measure_lookahead(lambda x: F.pad(x, (2, 0))[..., :-2], 50, 1, 1) == -2  # a pure delay


@pytest.mark.parametrize("hop", [1, 2, 5])
@pytest.mark.parametrize("future", [0, 1, 4, 7])
def test_downsampling_frame_reading_its_window_plus_future(hop, future):
    # frame j = sum of samples [j * hop, (j + 1) * hop + future)
    def fn(x):
        padded = F.pad(x, (0, future))
        return F.avg_pool1d(padded, hop + future, stride=hop) if future or hop > 1 else padded

    assert measure_lookahead(fn, 80, 1, hop) == future


@pytest.mark.parametrize("hop", [1, 3, 4])
@pytest.mark.parametrize("early", [0, 2, 5])
def test_upsampling_sample_needing_a_later_frame(hop, early):
    # nearest-neighbour upsampling (causal), then output shifted so frame j is needed `early` samples before j * hop
    def fn(z):
        return shift_left(z.repeat_interleave(hop, dim=-1), early)

    assert measure_lookahead(fn, 30, 2, hop, upsample=True) == early


class Layer(nn.Module):
    def __init__(self, stride, lookahead):
        super().__init__()
        self.stride, self.lookahead = stride, lookahead


def test_composition_rules():
    layers = [Layer(1, 3), Layer(2, 1), nn.ELU(), Layer(3, 2), Layer(1, 4)]
    # down: input steps of each layer are 1, 1, 2, 2, 6 samples
    assert downsampling_lookahead(layers) == 3 + 1 + 2 * 2 + 4 * 6
    # up: output steps of each layer, counted from the end, are 6, 3, 1, 1 (stride applies after its lookahead)
    assert upsampling_lookahead(layers) == 4 * 1 + 2 * 1 + 1 * 3 + 3 * 6
    with pytest.raises(TypeError):
        downsampling_lookahead([nn.Conv1d(1, 1, 3)])


def test_probe_position_errors():
    with pytest.raises(ValueError, match="probe"):
        measure_lookahead(lambda x: x, 10, 1, 1, positions=[10])
    with pytest.raises(ValueError, match="move the probe"):
        measure_lookahead(lambda x: shift_left(x, 8), 20, 1, 1, positions=[3])
    with pytest.raises(RuntimeError, match="no output changed"):
        measure_lookahead(lambda x: x[..., :4], 20, 1, 1)


def test_positions_whose_change_reaches_no_output_can_be_skipped():
    import pytest
    import torch

    from audiolatent.nn.latency import measure_lookahead

    def frames_of_sums(x):  # each 8-sample frame -> the sign of its first 6 samples' sum: the last 2 never matter
        return x.reshape(x.shape[0], 1, -1, 8)[..., :6].sum(-1).sign()

    positions = [120 + d for d in range(8)]  # the last frame: a change from sample 126 or 127 reaches nothing
    with pytest.raises(RuntimeError, match="no output changed"):
        measure_lookahead(frames_of_sums, 128, 1, 8, positions=positions)
    assert measure_lookahead(frames_of_sums, 128, 1, 8, positions=positions, skip_unchanged=True) <= 0
    with pytest.raises(RuntimeError, match="any probe position"):
        measure_lookahead(frames_of_sums, 128, 1, 8, positions=[126, 127], skip_unchanged=True)


def test_a_signal_dependent_reach_is_found_on_the_base_signal_that_shows_it():
    """y[i] = x[i + 4] where the input is quiet, x[i] elsewhere: on noise (loud everywhere) the
    map looks causal; on a quiet base the 4 samples of future show. A wrong base shape is refused."""
    def fn(x):
        quiet = x.abs() < 0.05
        return torch.where(quiet, shift_left(x, 4), x)

    assert measure_lookahead(fn, 60, 1, 1, positions=[30]) <= 0
    assert measure_lookahead(fn, 60, 1, 1, positions=[30], base=torch.zeros(1, 1, 60)) == 4
    with pytest.raises(ValueError, match="base must be"):
        measure_lookahead(fn, 60, 1, 1, base=torch.zeros(1, 60))
