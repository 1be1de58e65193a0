"""Tests of audiolatent.nn.conv: framing, streaming contract, declared vs measured lookahead."""

import pytest
import torch

from audiolatent.core.errors import StreamingError
from audiolatent.nn.conv import StreamingConv1d, StreamingConvTranspose1d, pad1d
from audiolatent.nn.latency import measure_lookahead
from audiolatent.testing import check_streaming

CONV_CASES = [  # kernel, stride, dilation, groups
    (7, 1, 1, 1),
    (3, 1, 3, 1),
    (4, 2, 1, 1),
    (10, 5, 1, 1),
    (2, 2, 1, 2),
    (5, 2, 2, 2),
    (1, 1, 1, 1),
    (3, 3, 1, 1),
]


@pytest.mark.parametrize("kernel,stride,dilation,groups", CONV_CASES)
@pytest.mark.parametrize("norm", ["none", "weight_norm"])
def test_causal_conv_streams_exactly(kernel, stride, dilation, groups, norm):
    torch.manual_seed(0)
    conv = StreamingConv1d(4, 6, kernel, stride, dilation, groups, causal=True, norm=norm)
    x = torch.randn(2, 4, stride * 41)
    for seed in range(3):
        assert check_streaming(conv, x, multiple=stride, seed=seed) <= 1e-5


@pytest.mark.parametrize("kernel,stride,dilation,groups", CONV_CASES)
@pytest.mark.parametrize("causal", [True, False])
def test_conv_frames_are_ceil_of_length_over_stride(kernel, stride, dilation, groups, causal):
    conv = StreamingConv1d(2, 2, kernel, stride, dilation, groups, causal=causal)
    for n in (1, 2, stride, stride + 1, 37, 64):
        assert conv(torch.randn(1, 2, n)).shape == (1, 2, -(-n // stride)) == (1, 2, conv.n_frames(n))


def test_streaming_call_returns_chunk_over_stride_frames():
    conv = StreamingConv1d(1, 3, 8, 4)
    with conv.streaming(1):
        for n in (4, 12, 8, 0, 40):
            assert conv(torch.randn(1, 1, n)).shape == (1, 3, n // 4)


@pytest.mark.parametrize("kernel,stride,dilation,groups", CONV_CASES)
@pytest.mark.parametrize("causal", [True, False])
def test_conv_measured_lookahead_equals_declared(kernel, stride, dilation, groups, causal):
    torch.manual_seed(0)
    conv = StreamingConv1d(2, 4, kernel, stride, dilation, groups, causal=causal)
    assert measure_lookahead(conv, 120, 2, stride) == conv.lookahead
    if causal:
        assert conv.lookahead == 0
    else:
        assert conv.lookahead == ((kernel - 1) * dilation + 1 - stride) // 2


def test_causal_conv_outputs_before_a_change_are_unchanged():
    torch.manual_seed(0)
    conv = StreamingConv1d(1, 2, 6, 3)
    x = torch.randn(1, 1, 60)
    x2 = x.clone()
    x2[..., 30:] += 1.0
    y, y2 = conv(x), conv(x2)
    assert torch.equal(y[..., :10], y2[..., :10])  # frame 9 ends at sample 29
    assert not torch.equal(y[..., 10], y2[..., 10])


TRANSPOSED_CASES = [(4, 2, 1), (10, 5, 1), (3, 1, 1), (2, 2, 1), (5, 2, 1), (3, 2, 2), (8, 4, 1)]


@pytest.mark.parametrize("kernel,stride,dilation", TRANSPOSED_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_causal_transposed_conv_streams_exactly(kernel, stride, dilation, bias):
    torch.manual_seed(0)
    convtr = StreamingConvTranspose1d(4, 3, kernel, stride, dilation, bias=bias, norm="weight_norm")
    x = torch.randn(2, 4, 29)
    for seed in range(3):
        assert check_streaming(convtr, x, multiple=1, seed=seed) <= 1e-5


@pytest.mark.parametrize("kernel,stride,dilation", TRANSPOSED_CASES)
@pytest.mark.parametrize("causal", [True, False])
def test_transposed_conv_shapes_and_lookahead(kernel, stride, dilation, causal):
    torch.manual_seed(0)
    convtr = StreamingConvTranspose1d(3, 2, kernel, stride, dilation, causal=causal)
    for t in (1, 2, 7):
        assert convtr(torch.randn(1, 3, t)).shape == (1, 2, t * stride) == (1, 2, convtr.n_samples(t))
    assert measure_lookahead(convtr, 40, 3, stride, upsample=True) == convtr.lookahead
    expected = 0 if causal else (kernel - 1) * dilation + 1 - stride - ((kernel - 1) * dilation + 1 - stride) // 2
    assert convtr.lookahead == expected


def test_causal_transposed_conv_is_the_head_of_the_full_output():
    torch.manual_seed(0)
    convtr = StreamingConvTranspose1d(2, 2, 6, 2)
    x = torch.randn(1, 2, 9)
    full = convtr.convtr(x)
    assert torch.equal(convtr(x), full[..., : 9 * 2])


@pytest.mark.parametrize("module", [StreamingConv1d(2, 2, 5, causal=False), StreamingConvTranspose1d(2, 2, 4, 2, causal=False)])
def test_non_causal_modules_refuse_to_stream(module):
    with pytest.raises(StreamingError, match="non-causal"):
        with module.streaming(1):
            pass
    assert not module.is_streaming


def test_streaming_errors_for_batch_and_chunk_size():
    conv = StreamingConv1d(1, 1, 4, 2)
    with conv.streaming(2):
        with pytest.raises(StreamingError, match="batch size"):
            conv(torch.randn(3, 1, 4))
        with pytest.raises(StreamingError, match="multiple of the stride"):
            conv(torch.randn(2, 1, 5))
    convtr = StreamingConvTranspose1d(1, 1, 4, 2)
    with convtr.streaming(2):
        with pytest.raises(StreamingError, match="batch size"):
            convtr(torch.randn(1, 1, 4))


def test_invalid_configurations():
    with pytest.raises(ValueError, match="stride"):
        StreamingConv1d(1, 1, 2, 3)
    with pytest.raises(ValueError, match="zeros"):
        StreamingConv1d(1, 1, 3, causal=True, pad_mode="reflect")
    with pytest.raises(ValueError, match="norm"):
        StreamingConv1d(1, 1, 3, norm="batch")


def test_reflect_padding_handles_short_inputs():
    x = torch.arange(3.0).view(1, 1, 3)
    assert pad1d(x, 4, 4, "reflect").shape == (1, 1, 11)
    conv = StreamingConv1d(1, 1, 9, causal=False, pad_mode="reflect")
    assert conv(torch.randn(1, 1, 2)).shape == (1, 1, 2)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("kernel,stride,dilation,groups", [(7, 1, 1, 6), (3, 1, 2, 6), (4, 2, 1, 1), (5, 1, 2, 1), (1, 1, 1, 1)])
def test_small_chunk_paths_stream_exactly(batch, kernel, stride, dilation, groups):
    """One-frame chunks (matrix-vector path), a few frames (depthwise taps) and long chunks
    (the convolution kernel) all continue one another and equal the offline output."""
    torch.manual_seed(0)
    conv = StreamingConv1d(6, 6, kernel, stride, dilation, groups, causal=True)
    x = torch.randn(batch, 6, stride * 40)
    offline = conv(x)
    sizes = [1, 1, 3, 1, 12, 2, 1, 19]
    with torch.no_grad(), conv.streaming(batch):
        outs, start = [], 0
        for size in sizes:
            outs.append(conv(x[..., start : start + size * stride]))
            start += size * stride
    assert (torch.cat(outs, -1) - offline).abs().max() <= 1e-5


def test_folded_weight_norm_equals_the_parametrised_computation_and_follows_updates():
    torch.manual_seed(0)
    for module in (StreamingConv1d(4, 6, 5, 2, norm="weight_norm"), StreamingConvTranspose1d(4, 6, 5, 2, norm="weight_norm")):
        inner = module.conv if isinstance(module, StreamingConv1d) else module.convtr
        x = torch.randn(2, 4, 20)
        trained = module(x)  # training mode, gradients on: the parametrisation itself
        trained.sum().backward()
        g, v = inner.parametrizations.weight.original0, inner.parametrizations.weight.original1
        assert g.grad is not None and v.grad is not None  # training still reaches g and v
        module.eval()
        with torch.no_grad():
            folded = module.weight
            assert module.weight is folded  # computed once, reused
            assert torch.equal(folded, inner.weight)  # equal to the unfolded g * v / ||v||
            assert torch.equal(module(x), trained.detach())
            g.mul_(2.0)  # an optimiser step or load_state_dict writes in place: the fold follows
            assert module.weight is not folded and torch.equal(module.weight, inner.weight)
        module.train()
        assert module.weight.requires_grad  # training mode never uses the cached fold
