"""Tests of audiolatent.nn.transformer: banded causal attention, KV cache, RoPE positions."""

import pytest
import torch

from audiolatent.core.errors import StreamingError
from audiolatent.nn.latency import measure_lookahead
from audiolatent.nn.transformer import StreamingMultiheadAttention, StreamingTransformer
from audiolatent.testing import check_streaming


@pytest.mark.parametrize("context", [1, 3, 7, None])
@pytest.mark.parametrize("positional_embedding", ["rope", "none"])
def test_transformer_streams_exactly_past_the_context(context, positional_embedding):
    torch.manual_seed(0)
    model = StreamingTransformer(16, num_layers=2, num_heads=2, context=context, positional_embedding=positional_embedding)
    x = torch.randn(2, 16, 45)  # longer than every context
    for seed in range(3):
        assert check_streaming(model, x, multiple=1, seed=seed) <= 1e-5


def test_transformer_with_layer_scale_streams_and_keeps_shape():
    torch.manual_seed(0)
    model = StreamingTransformer(8, num_layers=1, num_heads=2, dim_feedforward=12, context=4, layer_scale=0.01)
    x = torch.randn(1, 8, 20)
    assert model(x).shape == x.shape
    assert check_streaming(model, x, multiple=1) <= 1e-5


def test_each_frame_attends_to_exactly_the_last_context_frames():
    torch.manual_seed(0)
    context = 4
    model = StreamingTransformer(8, num_layers=1, num_heads=2, context=context)
    x = torch.randn(1, 8, 12)
    x2 = x.clone()
    x2[..., 2] += 1.0
    changed = (model(x) - model(x2)).abs().amax(dim=1)[0] > 0
    assert changed.nonzero().flatten().tolist() == list(range(2, 2 + context))


def test_kv_cache_is_bounded_by_the_context():
    model = StreamingTransformer(8, num_layers=2, num_heads=2, context=5)
    with model.streaming(1):
        for _ in range(6):
            model(torch.randn(1, 8, 3))
        for attn in model.modules():
            if isinstance(attn, StreamingMultiheadAttention):
                state = attn._streaming_state
                assert state.keys.shape[2] == 4 and state.values.shape[2] == 4 and state.offset == 18


def test_transformer_is_causal_by_probe():
    torch.manual_seed(0)
    model = StreamingTransformer(8, num_layers=2, num_heads=2, context=6)
    assert model.lookahead == 0
    assert measure_lookahead(model, 40, 8, 1) == 0


def test_transformer_streaming_batch_size_is_checked():
    model = StreamingTransformer(8, num_layers=1, num_heads=2)
    with model.streaming(2):
        with pytest.raises(StreamingError, match="batch size"):
            model(torch.randn(1, 8, 3))


def test_invalid_transformer_configurations():
    with pytest.raises(ValueError, match="multiple"):
        StreamingTransformer(10, num_heads=3)
    with pytest.raises(ValueError, match="context"):
        StreamingTransformer(8, num_heads=2, context=0)
    with pytest.raises(ValueError, match="positional_embedding"):
        StreamingTransformer(8, num_heads=2, positional_embedding="learned")
