"""Tests of audiolatent.nn.lstm."""

import pytest
import torch

from audiolatent.core.errors import StreamingError
from audiolatent.nn.latency import measure_lookahead
from audiolatent.nn.lstm import StreamingLSTM
from audiolatent.testing import check_streaming


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_lstm_streams_exactly(skip, num_layers):
    torch.manual_seed(0)
    lstm = StreamingLSTM(6, num_layers=num_layers, skip=skip)
    x = torch.randn(3, 6, 33)
    assert lstm(x).shape == x.shape
    for seed in range(3):
        assert check_streaming(lstm, x, multiple=1, seed=seed) <= 1e-5


def test_lstm_is_causal_and_checks_batch():
    torch.manual_seed(0)
    lstm = StreamingLSTM(4)
    assert lstm.lookahead == 0 and measure_lookahead(lstm, 30, 4, 1) == 0
    with lstm.streaming(2):
        with pytest.raises(StreamingError, match="batch size"):
            lstm(torch.randn(1, 4, 5))
