"""Winograd convolution and the block-GEMM strided convolution of offline time-major inference:
the algorithm is exact in float64, float32 stays within the bound prepare_for_inference documents,
and each path is taken where it should be and nowhere else."""

import pytest
import torch
import torch.nn.functional as F

import audiolatent.nn.conv as conv_module
from audiolatent.nn import winograd
from audiolatent.nn.conv import StreamingConv1d, relayout_for_time_major, to_time_major, use_winograd
from audiolatent.nn.seanet import SEANetDecoder, SEANetEncoder

#: float32 Winograd error allowed, relative to a layer's largest output (measured: 1e-5-4e-5 for F(6, 7))
WINOGRAD_TOL = 1e-4


def _reference(x, weight, bias, padding_left, dilation):
    """Zero-padded stride-1 correlation in float64: output t reads x[t - padding_left + k * dilation]."""
    span = (weight.shape[-1] - 1) * dilation
    padded = F.pad(x.double(), (padding_left, span - padding_left))
    return F.conv1d(padded, weight.double(), None if bias is None else bias.double(), dilation=dilation)


@pytest.mark.parametrize("m,r", [(6, 7), (6, 3)])
def test_toom_cook_matrices_compute_the_correlation_exactly(m, r):
    a_t, g, b_t = winograd.toom_cook(m, r)
    assert a_t.shape == (m, m + r - 1) and g.shape == (m + r - 1, r) and b_t.shape == (m + r - 1, m + r - 1)
    torch.manual_seed(0)
    for _ in range(5):
        d, k = torch.randn(m + r - 1, dtype=torch.float64), torch.randn(r, dtype=torch.float64)
        expected = torch.stack([(k * d[i : i + r]).sum() for i in range(m)])
        assert torch.allclose(a_t @ ((g @ k) * (b_t @ d)), expected, atol=1e-10)


def test_unknown_tiling_is_refused():
    with pytest.raises(ValueError, match="no Winograd points"):
        winograd.toom_cook(4, 5)


@pytest.mark.parametrize("r", [7, 3])
@pytest.mark.parametrize("dilation", [1, 2, 9])
@pytest.mark.parametrize("length", [5, 37, 300])
@pytest.mark.parametrize("causal", [True, False])
def test_winograd_conv_equals_direct_convolution(r, dilation, length, causal, monkeypatch):
    """Every tile/phase/edge case: lengths shorter than a tile, not a multiple of tiles or of the
    dilation, several blocks (BLOCK_ROWS small), a batch of two; exact in float64, within the bound in float32."""
    monkeypatch.setattr(winograd, "BLOCK_ROWS", 16)
    torch.manual_seed(0)
    c_in, c_out = 5, 4
    weight, bias = torch.randn(c_out, c_in, r), torch.randn(c_out)
    padding_left = (r - 1) * dilation if causal else (r - 1) * dilation // 2
    x = to_time_major(torch.randn(2, c_in, length))
    expected = _reference(x, weight, bias, padding_left, dilation)
    exact = winograd.conv1d_time_major(x.double(), winograd.transform_weight(weight.double()), bias.double(), r,
                                       padding_left, dilation)
    assert exact.shape == expected.shape == (2, c_out, length)
    assert (exact - expected).abs().max() <= 1e-9 * expected.abs().max()
    got = winograd.conv1d_time_major(x, winograd.transform_weight(weight), bias, r, padding_left, dilation)
    assert got.dtype == torch.float32 and conv_module.is_time_major(got)
    assert (got - expected).abs().max() <= WINOGRAD_TOL * expected.abs().max()
    fast = winograd.conv1d_time_major(x, winograd.transform_weight(weight, exact=False), None, r, padding_left, dilation)
    assert (fast - (expected - bias.double()[:, None])).abs().max() <= WINOGRAD_TOL * expected.abs().max()


def test_worthwhile_follows_the_measured_thresholds():
    assert winograd.worthwhile(7, 96, 96, 32000) and winograd.worthwhile(7, 64, 64, 32000)
    assert not winograd.worthwhile(7, 64, 32, 120000)  # too narrow: slower than oneDNN
    assert not winograd.worthwhile(3, 192, 192, 16000) and winograd.worthwhile(3, 384, 384, 4000)
    assert not winograd.worthwhile(7, 1024, 1536, 100)  # short signal through a wide layer
    assert not winograd.worthwhile(5, 512, 512, 4000)  # no tiling


def _spy(monkeypatch):
    calls = []
    real = winograd.conv1d_time_major
    monkeypatch.setattr(winograd, "conv1d_time_major", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


@pytest.mark.parametrize("causal", [True, False])
def test_a_conv_runs_winograd_only_where_enabled_and_stays_within_the_bound(causal, monkeypatch):
    calls = _spy(monkeypatch)
    torch.manual_seed(0)
    conv = StreamingConv1d(64, 64, 7, dilation=3, causal=causal).eval()
    x = torch.randn(1, 64, 500)
    expected = conv(x).detach()  # training path
    with torch.no_grad():
        conv(to_time_major(x))
        assert not calls  # not enabled
        use_winograd(conv)
        got = conv(to_time_major(x))
        assert calls == [1]
        assert (got - expected).abs().max() <= WINOGRAD_TOL * expected.abs().max()
        conv(x)  # channels-first input: the direct kernel
        assert calls == [1]
    conv(to_time_major(x))  # gradients on
    assert calls == [1]
    use_winograd(conv, False)
    with torch.no_grad():
        assert (conv(to_time_major(x)) - expected).abs().max() <= 1e-5
    assert calls == [1]


def test_a_strided_or_grouped_conv_never_enables_winograd():
    model = torch.nn.ModuleList([StreamingConv1d(64, 64, 7, stride=2), StreamingConv1d(64, 64, 7, groups=64),
                                 StreamingConv1d(64, 64, 5), StreamingConv1d(64, 64, 3)])
    use_winograd(model)
    assert [m.winograd for m in model] == [False, False, False, True]


DAC_LIKE = dict(dimension=64, n_filters=64, ratios=(2, 2), n_residual_layers=3, dilation_base=3, activation="snake",
                compress=1, causal=False, last_kernel_size=3, residual_kernel_size=7)


def test_a_seanet_stack_with_winograd_stays_within_the_bound(monkeypatch):
    calls = _spy(monkeypatch)
    torch.manual_seed(0)
    encoder, decoder = SEANetEncoder(**DAC_LIKE).eval(), SEANetDecoder(**DAC_LIKE).eval()
    x = 0.1 * torch.randn(1, 1, 200 * encoder.hop_length)
    with torch.inference_mode():
        z, audio = encoder(x), decoder(encoder(x))
        use_winograd(encoder), use_winograd(decoder)
        z_fast, audio_fast = encoder(x), decoder(z)
    assert len(calls) >= 12  # the residual convs of both stacks (64-256 channels)
    assert (z_fast - z).abs().max() <= WINOGRAD_TOL * z.abs().max()
    assert (audio_fast - audio).abs().max() <= WINOGRAD_TOL * audio.abs().max()


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kernel,stride", [(4, 2), (10, 5), (16, 8), (15, 5), (8, 8)])
@pytest.mark.parametrize("length", [80, 83])
@pytest.mark.parametrize("relaid", [False, True])
def test_block_gemm_strided_conv_equals_the_training_path(causal, kernel, stride, length, relaid, monkeypatch):
    monkeypatch.setattr(conv_module, "BLOCK_GEMM_MIN_DEPTH", 0)  # small shapes take the path too
    taken = []
    real = StreamingConv1d._block_gemm
    monkeypatch.setattr(StreamingConv1d, "_block_gemm", lambda self, x: taken.append(1) or real(self, x))
    torch.manual_seed(0)
    conv = StreamingConv1d(6, 5, kernel, stride, causal=causal).eval()
    x = torch.randn(2, 6, length)
    expected = conv(x)
    if relaid:
        relayout_for_time_major(conv, min_bytes=0)
    with torch.no_grad():
        got = conv(to_time_major(x))
    assert taken == [1]
    assert got.shape == expected.shape == (2, 5, -(-length // stride))
    assert (got - expected).abs().max() <= 1e-5
    assert conv_module.is_time_major(got)


def test_block_gemm_is_only_for_deep_rows_and_whole_stride_kernels():
    with torch.no_grad():
        x = to_time_major(torch.randn(1, 256, 64))
        assert StreamingConv1d(256, 8, 16, 8).eval()._block_gemm_applies(x)  # 8 x 256 = 2048 deep
        assert not StreamingConv1d(256, 8, 7, 4).eval()._block_gemm_applies(x)  # kernel not 2 strides
        assert not StreamingConv1d(256, 8, 4, 2).eval()._block_gemm_applies(x)  # 512 deep
        assert not StreamingConv1d(256, 8, 16, 8).eval()._block_gemm_applies(x.contiguous())  # channels-first
    assert not StreamingConv1d(256, 8, 16, 8).eval()._block_gemm_applies(x)  # gradients on


def test_winograd_weights_are_memoised_for_short_signals_only(monkeypatch):
    """A long signal transforms the weight per call (a few per cent of its convolution) instead of
    keeping n / r times the weight; a short one memoises it; both within the bound."""

    monkeypatch.setattr(conv_module, "WINOGRAD_MEMO_MAX_FRAMES", 50)  # long = from 350 frames
    torch.manual_seed(0)
    conv = use_winograd(StreamingConv1d(64, 64, 7).eval())
    for length, memoised in ((500, False), (200, True)):
        x = torch.randn(1, 64, length)
        expected = conv(x).detach()
        conv._weights.clear()
        with torch.no_grad():
            got = conv(to_time_major(x))
        assert ("winograd" in conv._weights._entries) == memoised
        assert (got - expected).abs().max() <= WINOGRAD_TOL * expected.abs().max()
