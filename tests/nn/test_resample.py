"""Tests of audiolatent.nn.resample: Mimi-style learned frame-rate changes."""

import pytest
import torch

from audiolatent.core.errors import StreamingError
from audiolatent.nn.latency import measure_lookahead
from audiolatent.nn.resample import ConvDownsample1d, ConvTrUpsample1d
from audiolatent.testing import check_streaming


@pytest.mark.parametrize("stride", [2, 3, 4])
@pytest.mark.parametrize("channel_wise", [True, False])
def test_resample_blocks_stream_exactly(stride, channel_wise):
    torch.manual_seed(0)
    down = ConvDownsample1d(4, stride, channel_wise=channel_wise)
    up = ConvTrUpsample1d(4, stride, channel_wise=channel_wise)
    x = torch.randn(2, 4, stride * 17)
    assert down(x).shape == (2, 4, 17)
    assert up(x).shape == (2, 4, stride * stride * 17)
    for seed in range(2):
        assert check_streaming(down, x, multiple=stride, seed=seed) <= 1e-5
        assert check_streaming(up, x, multiple=1, seed=seed) <= 1e-5


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("stride", [2, 3])
def test_resample_lookahead_and_odd_lengths(causal, stride):
    torch.manual_seed(0)
    down = ConvDownsample1d(2, stride, causal=causal)
    up = ConvTrUpsample1d(2, stride, causal=causal)
    assert down(torch.randn(1, 2, 7)).shape == (1, 2, -(-7 // stride))
    assert measure_lookahead(down, 60, 2, stride) == down.lookahead == (0 if causal else stride // 2)
    assert measure_lookahead(up, 30, 2, stride, upsample=True) == up.lookahead == (0 if causal else stride - stride // 2)
    if not causal:
        with pytest.raises(StreamingError):
            with down.streaming(1):
                pass
