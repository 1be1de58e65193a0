"""Tests of audiolatent.nn.seanet: streaming, framing and lookahead of the SEANet stack."""

import pytest
import torch

from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.nn.latency import measure_lookahead
from audiolatent.nn.seanet import LayerOptions, ResidualUnit, SEANetDecoder, SEANetEncoder, build_sequence_model
from audiolatent.testing import check_streaming

TINY = dict(channels=1, dimension=6, n_filters=2, ratios=(2, 3), n_residual_layers=2, dilation_base=3)
SEQUENCE_MODELS = [None, {"kind": "lstm", "num_layers": 1}, {"kind": "transformer", "num_layers": 1, "num_heads": 2, "context": 3}]


@pytest.mark.parametrize("dilation", [1, 3, 9])
@pytest.mark.parametrize("true_skip", [True, False])
def test_residual_unit_streams_exactly(dilation, true_skip):
    torch.manual_seed(0)
    unit = ResidualUnit(4, 7, dilation, LayerOptions(activation="snake"), true_skip=true_skip)
    x = torch.randn(2, 4, 50)
    assert unit(x).shape == x.shape
    assert check_streaming(unit, x, multiple=1) <= 1e-5


@pytest.mark.parametrize("sequence_model", SEQUENCE_MODELS)
@pytest.mark.parametrize("extra_stride", [1, 2])
def test_causal_encoder_streams_exactly(sequence_model, extra_stride):
    torch.manual_seed(0)
    encoder = SEANetEncoder(**TINY, sequence_model=sequence_model, extra_stride=extra_stride)
    assert encoder.hop_length == 6 * extra_stride
    x = torch.randn(2, 1, encoder.hop_length * 14)
    assert encoder(x).shape == (2, 6, 14)
    for seed in range(2):
        assert check_streaming(encoder, x, multiple=encoder.hop_length, seed=seed) <= 1e-5


@pytest.mark.parametrize("sequence_model", SEQUENCE_MODELS)
@pytest.mark.parametrize("extra_stride", [1, 2])
def test_causal_decoder_streams_exactly(sequence_model, extra_stride):
    torch.manual_seed(0)
    decoder = SEANetDecoder(**TINY, sequence_model=sequence_model, extra_stride=extra_stride, final_activation="tanh")
    z = torch.randn(2, 6, 13)
    assert decoder(z).shape == (2, 1, 13 * decoder.hop_length)
    for seed in range(2):
        assert check_streaming(decoder, z, multiple=1, seed=seed) <= 1e-5


@pytest.mark.parametrize("extra_stride", [1, 2])
@pytest.mark.parametrize("n_samples", [1, 5, 6, 7, 61, 120])
def test_encoder_frames_and_decoder_samples(extra_stride, n_samples):
    encoder = SEANetEncoder(**TINY, extra_stride=extra_stride)
    decoder = SEANetDecoder(**TINY, extra_stride=extra_stride)
    hop = 6 * extra_stride
    z = encoder(torch.randn(1, 1, n_samples))
    assert z.shape[-1] == -(-n_samples // hop) == encoder.n_frames(n_samples)
    assert decoder(z).shape[-1] == z.shape[-1] * hop == decoder.n_samples(z.shape[-1])


def test_frame_rates_from_75_to_12_5_hz():
    for ratios, extra, rate in [((2, 4, 5, 8), 1, 75.0), ((4, 5, 6, 8), 1, 25.0), ((4, 5, 6, 8), 2, 12.5)]:
        encoder = SEANetEncoder(n_filters=1, dimension=2, ratios=ratios, extra_stride=extra)
        assert 24000 / encoder.hop_length == rate
    encoder = SEANetEncoder(n_filters=2, dimension=4)  # EnCodec layout at 24 kHz: 320 samples per frame
    assert encoder(torch.randn(1, 1, 321)).shape == (1, 4, 2)


@pytest.mark.parametrize("extra_stride", [1, 2])
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_non_causal_lookahead_is_measured_exactly(extra_stride, pad_mode):
    torch.manual_seed(0)
    options = dict(TINY, causal=False, pad_mode=pad_mode, extra_stride=extra_stride, activation="snake")
    encoder, decoder = SEANetEncoder(**options), SEANetDecoder(**options)
    assert encoder.lookahead > 0 and decoder.lookahead > 0
    # the lookahead is a maximum over inputs: a probe whose farthest contribution is at float
    # rounding level (compared exactly, atol 0) can read short for one seed, never long
    measured = [measure_lookahead(encoder, 1200, 1, encoder.hop_length, seed=seed) for seed in range(3)]
    assert max(measured) == encoder.lookahead
    measured = [measure_lookahead(decoder, 120, 6, decoder.hop_length, upsample=True, seed=seed) for seed in range(3)]
    assert max(measured) == decoder.lookahead


@pytest.mark.parametrize("sequence_model", SEQUENCE_MODELS)
def test_causal_lookahead_is_zero_by_probe(sequence_model):
    torch.manual_seed(0)
    encoder = SEANetEncoder(**TINY, sequence_model=sequence_model, extra_stride=2)
    decoder = SEANetDecoder(**TINY, sequence_model=sequence_model, extra_stride=2)
    assert encoder.lookahead == decoder.lookahead == 0
    assert measure_lookahead(encoder, 600, 1, encoder.hop_length) == 0
    assert measure_lookahead(decoder, 40, 6, decoder.hop_length, upsample=True) == 0


def test_causal_outputs_before_a_change_are_unchanged():
    torch.manual_seed(0)
    encoder, decoder = SEANetEncoder(**TINY), SEANetDecoder(**TINY)
    x = torch.randn(1, 1, 240)
    x2 = x.clone()
    x2[..., 120:] = torch.randn(1, 1, 120)  # samples from frame 20 on
    z, z2 = encoder(x), encoder(x2)
    assert torch.equal(z[..., :20], z2[..., :20]) and not torch.equal(z[..., 20], z2[..., 20])
    y, y2 = decoder(z), decoder(z2)
    assert torch.equal(y[..., :120], y2[..., :120]) and not torch.equal(y[..., 120:126], y2[..., 120:126])


def test_streaming_errors():
    encoder = SEANetEncoder(**TINY)
    with encoder.streaming(2):
        with pytest.raises(StreamingError, match="multiple of hop_length"):
            encoder(torch.randn(2, 1, 7))
        with pytest.raises(StreamingError, match="batch size"):
            encoder(torch.randn(1, 1, 6))
    for module in (SEANetEncoder(**TINY, causal=False), SEANetDecoder(**TINY, causal=False)):
        with pytest.raises(StreamingError, match="non-causal"):
            with module.streaming(1):
                pass


def test_unknown_sequence_model_kind():
    assert build_sequence_model(4, None) is None
    with pytest.raises(ConfigError, match="unknown sequence model"):
        build_sequence_model(4, {"kind": "mamba"})


def test_remove_weight_norm_keeps_outputs_and_streaming():
    from audiolatent.nn.conv import remove_weight_norm

    torch.manual_seed(0)
    decoder = SEANetDecoder(**TINY)
    z = torch.randn(1, 6, 9)
    with torch.no_grad():
        before = decoder(z)
        remove_weight_norm(decoder)
        after = decoder(z)
    assert not any("parametrizations" in key for key in decoder.state_dict())
    torch.testing.assert_close(after, before, atol=1e-6, rtol=0)
    assert check_streaming(decoder, z, multiple=1) <= 1e-5
