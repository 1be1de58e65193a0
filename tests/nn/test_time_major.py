"""The offline inference path of the SEANet stack: time-major activations, in-kernel padding,
transposed convolutions as shifted GEMMs and in-place activations give the values of the
training (channels-first, out-of-place) path to float rounding."""

import pytest
import torch

from torch import nn

from audiolatent.nn.activations import Snake, activate_
from audiolatent.nn.conv import StreamingConv1d, StreamingConvTranspose1d, is_time_major, to_time_major
from audiolatent.nn.seanet import SEANetDecoder, SEANetEncoder

TOL = 1e-5


def test_time_major_layout_helpers():
    x = torch.randn(2, 3, 10)
    assert not is_time_major(x)
    y = to_time_major(x)
    assert is_time_major(y) and torch.equal(y, x) and y.shape == x.shape
    assert to_time_major(y) is y
    mono = to_time_major(torch.randn(2, 1, 10))  # one channel: the layout is marked by its strides
    assert is_time_major(mono) and not is_time_major(torch.randn(2, 1, 10))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kernel,stride,dilation", [(7, 1, 1), (3, 1, 9), (4, 2, 1), (10, 5, 1), (1, 1, 1), (16, 8, 1)])
@pytest.mark.parametrize("length", [80, 83])
def test_conv_inference_paths_equal_the_training_path(causal, kernel, stride, dilation, length):
    torch.manual_seed(0)
    conv = StreamingConv1d(6, 5, kernel, stride, dilation, causal=causal).eval()
    x = torch.randn(2, 6, length)
    expected = conv(x)  # gradients on: pad then convolve, channels-first
    with torch.no_grad():
        plain, major = conv(x), conv(to_time_major(x))
    assert plain.shape == major.shape == expected.shape == (2, 5, -(-length // stride))
    assert (plain - expected).abs().max() <= TOL
    assert (major - expected).abs().max() <= TOL
    assert is_time_major(major)


def test_conv_from_one_channel_stays_time_major_and_reflect_padding_falls_back():
    torch.manual_seed(0)
    first = StreamingConv1d(1, 4, 7).eval()
    x = torch.randn(2, 1, 50)
    with torch.no_grad():
        y = first(to_time_major(x))
    assert is_time_major(y) and (y - first(x)).abs().max() <= TOL
    reflect = StreamingConv1d(3, 4, 7, causal=False, pad_mode="reflect").eval()
    x = torch.randn(2, 3, 50)
    with torch.no_grad():
        assert (reflect(to_time_major(x)) - reflect(x).detach()).abs().max() <= TOL


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kernel,stride", [(4, 2), (10, 5), (16, 8), (5, 5), (15, 5), (7, 3)])
def test_transposed_conv_gemm_path_equals_the_kernel(causal, kernel, stride):
    torch.manual_seed(0)
    convtr = StreamingConvTranspose1d(6, 4, kernel, stride, causal=causal).eval()
    x = torch.randn(3, 6, 21)
    expected = convtr(x)
    with torch.no_grad():
        major = convtr(to_time_major(x))
    assert major.shape == expected.shape == (3, 4, 21 * stride)
    assert (major - expected).abs().max() <= TOL
    if kernel % stride == 0:
        assert is_time_major(major)
    trained = convtr(to_time_major(x).requires_grad_())  # gradients on: the kernel path, differentiable
    assert (trained - expected).abs().max() <= TOL
    trained.sum().backward()


def test_snake_inference_equals_training_path():
    torch.manual_seed(0)
    snake = Snake(5)
    with torch.no_grad():
        snake.alpha.copy_(torch.randn(1, 5, 1))
        snake.alpha[0, 2, 0] = 0.0  # the eps guard
    x = torch.randn(2, 5, 40)
    expected = snake(x)
    with torch.no_grad():
        got = snake(to_time_major(x))
    assert (got - expected).abs().max() <= TOL and is_time_major(got)


ENCODEC_LIKE = dict(dimension=8, n_filters=4, ratios=(2, 4), n_residual_layers=1, residual_kernel_size=3, compress=2,
                    true_skip=False, sequence_model={"kind": "lstm", "num_layers": 2})
DAC_LIKE = dict(dimension=8, n_filters=4, ratios=(2, 5), n_residual_layers=3, dilation_base=3, activation="snake",
                compress=1, causal=False, last_kernel_size=3)


@pytest.mark.parametrize("kwargs", [ENCODEC_LIKE, DAC_LIKE], ids=["encodec-like", "dac-like"])
def test_seanet_inference_path_equals_training_path(kwargs):
    torch.manual_seed(0)
    encoder, decoder = SEANetEncoder(**kwargs).eval(), SEANetDecoder(**kwargs).eval()
    x = torch.randn(2, 1, 10 * encoder.hop_length + 3)
    z = encoder(x)
    audio = decoder(z)
    x_before, z_before = x.clone(), z.detach().clone()
    with torch.inference_mode():
        z_fast, audio_fast = encoder(x), decoder(z.detach())
    assert torch.equal(x, x_before) and torch.equal(z.detach(), z_before)  # in-place work never touches the inputs
    assert z_fast.is_contiguous() and audio_fast.is_contiguous()
    assert (z_fast - z).abs().max() <= TOL
    assert (audio_fast - audio).abs().max() <= TOL


@pytest.mark.parametrize("module", [nn.ELU(0.7), nn.LeakyReLU(0.2), nn.SiLU(), nn.Tanh(), nn.GELU(), nn.Identity(), Snake(3)])
def test_in_place_activation_equals_the_module(module):
    x = torch.randn(2, 3, 30)
    expected = module(x)
    with torch.no_grad():
        got = activate_(module, x.clone())
    assert (got - expected).abs().max() <= 1e-6


@pytest.mark.parametrize("kwargs", [ENCODEC_LIKE, DAC_LIKE], ids=["encodec-like", "dac-like"])
def test_seanet_inference_path_runs_under_cpu_autocast(kwargs):
    torch.manual_seed(0)
    encoder, decoder = SEANetEncoder(**kwargs).eval(), SEANetDecoder(**kwargs).eval()
    x = torch.randn(1, 1, 10 * encoder.hop_length)
    with torch.inference_mode():
        reference = decoder(encoder(x))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            audio = decoder(encoder(x))
    assert audio.shape == reference.shape
    assert (audio.float() - reference).abs().max() <= 0.05 * reference.abs().max()  # bf16 rounding, not a wrong path


@pytest.mark.parametrize("accumulate", [False, True])
def test_pointwise_gemm_writes_the_conv_into_the_buffer(accumulate):
    from audiolatent.nn.seanet import _pointwise_gemm

    torch.manual_seed(0)
    conv = StreamingConv1d(6, 4, 1).eval()
    x, start = to_time_major(torch.randn(2, 6, 30)), to_time_major(torch.randn(2, 4, 30))
    expected = conv(x) + (start if accumulate else 0)
    out = start.clone()
    with torch.no_grad():
        assert _pointwise_gemm(conv, x, out, accumulate)  # the GEMM path is taken, not skipped
        assert not _pointwise_gemm(StreamingConv1d(6, 4, 3).eval(), x, out.clone(), accumulate)  # not 1x1
    assert (out - expected.detach()).abs().max() <= TOL
    assert not _pointwise_gemm(conv, x, out, accumulate)  # gradients on: refused


def _relaid(module):
    from audiolatent.nn.conv import relayout_for_time_major

    return relayout_for_time_major(module, min_bytes=0)  # every weight counts as large here


@pytest.mark.parametrize("kernel,stride,dilation", [(7, 1, 3), (16, 8, 1), (1, 1, 1)])
def test_relaid_out_conv_weights_give_the_same_values_on_every_path(kernel, stride, dilation):
    """relayout_for_time_major re-stores a weight, same values: offline (both layouts), a one-frame
    and a multi-frame streaming step still give the original conv's outputs, and the time-major
    path reads the weight itself (no reordered copy)."""
    torch.manual_seed(0)
    conv = StreamingConv1d(6, 5, kernel, stride, dilation).eval()
    x = torch.randn(1, 6, 16 * stride)
    with torch.no_grad():
        expected = conv(x)
        with conv.streaming(1):
            streamed_before = torch.cat([conv(x[..., i : i + stride]) for i in range(0, x.shape[-1], stride)], -1)
        values = conv.conv.weight.detach().clone()
        _relaid(conv)
        assert torch.equal(conv.conv.weight, values) and conv.conv.weight.stride(1) == 1
        assert conv._weight_2d_time_major().data_ptr() == conv.conv.weight.data_ptr()  # a view, not a copy
        assert (conv(to_time_major(x)) - expected).abs().max() <= TOL
        assert (conv(x) - expected).abs().max() <= TOL
        for chunk in (stride, 4 * stride):  # one frame (matrix-vector) and several
            with conv.streaming(1):
                streamed = torch.cat([conv(x[..., i : i + chunk]) for i in range(0, x.shape[-1], chunk)], -1)
            assert (streamed - streamed_before).abs().max() <= TOL
    assert (conv(x) - expected).abs().max() <= TOL  # training path too


@pytest.mark.parametrize("kernel,stride", [(16, 8), (10, 5)])
def test_relaid_out_transposed_conv_reads_its_phases_in_place(kernel, stride):
    torch.manual_seed(0)
    convtr = StreamingConvTranspose1d(6, 4, kernel, stride).eval()
    x = torch.randn(1, 6, 12)
    with torch.no_grad():
        expected = convtr(x)
        with convtr.streaming(1):
            streamed_before = torch.cat([convtr(x[..., i : i + 1]) for i in range(12)], -1)
        _relaid(convtr)
        assert convtr._phase_weights().data_ptr() == convtr.convtr.weight.data_ptr()
        assert (convtr(to_time_major(x)) - expected).abs().max() <= TOL
        assert (convtr(x) - expected).abs().max() <= TOL
        with convtr.streaming(1):
            streamed = torch.cat([convtr(x[..., i : i + 3]) for i in range(0, 12, 3)], -1)
        assert (streamed - streamed_before).abs().max() <= TOL


def test_a_codec_prepared_with_every_weight_relaid_encodes_decodes_and_streams_the_same(monkeypatch):
    """prepare_for_inference relays the weights above MEMO_MAX_BYTES; with the limit at 0 (every conv
    weight relaid) a causal codec's offline and one-frame streaming outputs do not change."""
    import audiolatent.nn.conv as conv_module
    from audiolatent.testing import assert_codec_streams_like_offline
    from audiolatent.tokenizers.codec import build_codec

    torch.manual_seed(0)
    codec = build_codec("tiny-16k").eval()
    x = 0.1 * torch.randn(1, 1, 20 * codec.hop_length)
    with torch.inference_mode():
        codes = codec.encode(x)
        audio = codec.decode(codes)
    monkeypatch.setattr(conv_module, "MEMO_MAX_BYTES", 0)
    codec.prepare_for_inference()
    convs = [m for m in codec.modules() if isinstance(m, (StreamingConv1d, StreamingConvTranspose1d)) and m.weight.shape[1] > 1]
    assert convs and all(m.weight.stride(1) == 1 for m in convs)
    with torch.inference_mode():
        assert torch.equal(codec.encode(x).streams[0].values, codes.streams[0].values)
        assert (codec.decode(codes) - audio).abs().max() <= TOL
    assert_codec_streams_like_offline(codec, x)


def test_snake_into_a_buffer_is_the_module_bit_for_bit():
    from audiolatent.nn.activations import activate_into

    torch.manual_seed(0)
    snake = Snake(5)
    with torch.no_grad():
        snake.alpha.copy_(torch.randn(1, 5, 1))
    x = to_time_major(torch.randn(2, 5, 40))
    with torch.no_grad():
        expected = snake(x)
        for module in (snake, nn.ELU(0.7), nn.Tanh()):
            out = torch.empty_like(x)
            got = activate_into(module, x, out)
            assert got.data_ptr() == out.data_ptr() and torch.equal(got, module(x))
    out = torch.zeros_like(x)
    trained = activate_into(snake, x, out)  # gradients on: the module's forward, out untouched
    assert trained.requires_grad and (trained - expected).abs().max() <= TOL and not out.any()


def test_residual_units_reuse_the_dead_input_of_the_unit_before(monkeypatch):
    """In a decoder block's chain, units 2 and 3 write their first activation into a dead buffer
    (the input of the unit before) instead of a fresh one, and the decoder's output is unchanged."""
    import audiolatent.nn.seanet as seanet

    torch.manual_seed(0)
    decoder = SEANetDecoder(**DAC_LIKE).eval()
    z = torch.randn(1, 8, 6)
    expected = decoder(z).detach()
    calls = []
    real = seanet.activate_into
    monkeypatch.setattr(seanet, "activate_into", lambda m, x, out: calls.append(out.data_ptr()) or real(m, x, out))
    with torch.inference_mode():
        got = decoder(z)
    # 3 units per block: all but the first reuse; the second block's first unit also reuses the
    # dead input of its transposed conv (8 x 30 values, as many as its 4 x 60 output), the first
    # block's does not (16 x 6 < 8 x 30)
    assert len(calls) == 2 * len(DAC_LIKE["ratios"]) + 1
    assert (got - expected).abs().max() <= TOL


def test_the_first_unit_of_an_encoder_block_reuses_the_strided_conv_input_of_the_block_before(monkeypatch):
    """EnCodec-like encoder (ratios 2, 4; channels double as time shrinks): the second block's unit
    writes its first activation into the dead input of the first block's strided conv, and the
    latent is unchanged; a streaming encoder never hands a conv's input on (it may be its state)."""
    import audiolatent.nn.seanet as seanet

    torch.manual_seed(0)
    encoder = SEANetEncoder(**ENCODEC_LIKE).eval()
    x = torch.randn(1, 1, 40 * encoder.hop_length)
    expected = encoder(x).detach()
    calls = []
    real = seanet.activate_into
    monkeypatch.setattr(seanet, "activate_into", lambda m, x, out: calls.append(out.shape) or real(m, x, out))
    with torch.inference_mode():
        got = encoder(x)
    assert calls == [torch.Size([1, 8, 40 * encoder.hop_length // 2])]  # block 2's unit; block 1's has no dead buffer
    assert (got - expected).abs().max() <= TOL


def test_buffer_like_views_a_dead_storage_only_where_it_fits():
    from audiolatent.nn.seanet import _buffer_like

    like = torch.randn(1, 3, 5).transpose(1, 2).contiguous().transpose(1, 2)  # time-major [1, 3, 5]
    view = _buffer_like(torch.empty(20), like)
    assert view.shape == like.shape and view.stride() == like.stride()
    assert _buffer_like(torch.empty(14), like) is None  # too small
    assert _buffer_like(torch.empty(20, dtype=torch.float64), like) is None
    assert _buffer_like(None, like) is None
    assert _buffer_like(torch.empty(40), torch.randn(1, 3, 10)[..., ::2]) is None  # gapped layout
    assert _buffer_like(torch.empty(40), torch.randn(3, 1).expand(3, 4)) is None  # overlapping
