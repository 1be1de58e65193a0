"""dMel: per-bin uniform quantisation of log-mel (src/audiolatent/tokenizers/dmel.py)."""

from __future__ import annotations

import math

import pytest
import torch

import audiolatent as al
from audiolatent.core.config import from_dict
from audiolatent.tokenizers.dmel import DMelConfig, DMelTokenizer, dequantize_log_mel, quantize_log_mel
from audiolatent.tokenizers.mel import MelConfig, MelTokenizer


@pytest.fixture(scope="module")
def dmel16():
    return al.load_tokenizer("dmel-16k")


def sine(freq_hz: float, seconds: float = 0.5, amplitude: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * 16000), dtype=torch.float64) / 16000
    return (amplitude * torch.sin(2 * math.pi * freq_hz * t)).float()[None, None]


@pytest.mark.parametrize("n", [1, 159, 160, 161, 16001])
def test_codes_shapes_and_range(dmel16, n):
    latent = dmel16.encode(0.3 * torch.randn(2, 1, n, generator=torch.Generator().manual_seed(n)))
    codes = latent.codes
    assert codes.shape == (2, 80, math.ceil(n / 160)) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 16
    assert latent["dmel"].codebook_sizes == (16,) * 80
    assert dmel16.decode(latent).shape == (2, 1, n)


def test_nominal_bitrate_is_32_kbps(dmel16):
    latent = dmel16.encode(torch.zeros(1, 1, 16000))
    assert latent.bits_per_second == 32000.0  # 100 frames/s x 80 bins x 4 bits
    assert dmel16.describe()["nominal_bits_per_second"] == 32000.0


def test_silence_is_code_zero_and_decodes_to_silence(dmel16):
    latent = dmel16.encode(torch.zeros(1, 1, 3200))
    assert int(latent.codes.abs().max()) == 0
    assert float(dmel16.decode(latent).abs().max()) == 0.0


def test_values_above_the_range_take_the_top_code():
    tok = DMelTokenizer(DMelConfig(max_log=0.0))
    codes = tok.encode(sine(1000.0, amplitude=1.0)).codes  # full-scale sine: log-mel peaks near 2.3
    assert int(codes.max()) == 15
    assert quantize_log_mel(torch.tensor([1e3, -1e3]), 16, math.log(1e-5), math.log(10)).tolist() == [15, 0]


def test_hand_computed_quantisation():
    # 5 levels over [-2, 2]: step 1, levels -2, -1, 0, 1, 2
    x = torch.tensor([[[-7.0, -1.6, -1.4, 0.49, 0.51, 1.9, 2.0, 9.0]]])
    codes = quantize_log_mel(x, 5, -2.0, 2.0)
    assert codes.tolist() == [[[0, 0, 1, 2, 3, 4, 4, 4]]]
    assert dequantize_log_mel(codes, 5, -2.0, 2.0).tolist() == [[[-2.0, -2.0, -1.0, 0.0, 1.0, 2.0, 2.0, 2.0]]]


def test_levels_quantise_to_themselves_and_error_is_half_a_step(dmel16):
    c = dmel16.config
    codes = torch.arange(16)[None, None].expand(1, 80, 16)
    assert torch.equal(dmel16.quantize(dmel16.dequantize(codes)), codes)
    step = (c.max_log - c.min_log) / 15
    assert step == pytest.approx(0.92103, abs=1e-5)
    x = torch.linspace(c.min_log, c.max_log, 1001)
    error = (dequantize_log_mel(quantize_log_mel(x, 16, c.min_log, c.max_log), 16, c.min_log, c.max_log) - x).abs()
    assert float(error.max()) <= step / 2 + 1e-5


def test_decode_is_the_mel_synthesis_of_the_levels(dmel16):
    x = sine(440.0)
    latent = dmel16.encode(x)
    mel = MelTokenizer(dmel16.config.mel)
    expected = mel.synthesize(dmel16.dequantize(latent.codes))[..., : x.shape[-1]]
    assert torch.equal(dmel16.decode(latent), expected)
    # encode is the mel analysis, quantised
    assert torch.equal(latent.codes, dmel16.quantize(mel.encode(x)["mel"].values))


def test_cannot_stream(dmel16):
    assert dmel16.causal is False and dmel16.lookahead is None
    with pytest.raises(al.StreamingError, match="whole signal"):
        with dmel16.streaming(1):
            pass


def test_save_load_round_trip(dmel16, tmp_path):
    x = sine(220.0) + 0.05 * torch.randn(1, 1, 8000, generator=torch.Generator().manual_seed(2))
    dmel16.save(tmp_path / "ckpt")
    loaded = al.load_tokenizer(str(tmp_path / "ckpt"))
    assert isinstance(loaded, DMelTokenizer) and loaded.config == dmel16.config
    a, b = dmel16.encode(x), loaded.encode(x)
    assert torch.equal(a.codes, b.codes)
    assert torch.equal(dmel16.decode(a), loaded.decode(b))


def test_latent_file_round_trip(dmel16, tmp_path):
    latent = dmel16.encode(sine(330.0))
    latent.save(tmp_path / "x.latent")
    again = al.Latent.load(tmp_path / "x.latent", expect_config_hash=dmel16.config_hash)
    assert torch.equal(dmel16.decode(again), dmel16.decode(latent))


def test_foreign_latents_are_refused(dmel16):
    mel_latent = al.load_tokenizer("mel-16k").encode(torch.zeros(1, 1, 1600))
    with pytest.raises(al.LatentError):
        dmel16.decode(mel_latent)
    eight_levels = al.Latent([al.Stream(torch.zeros(1, 80, 5, dtype=torch.long), 100.0, (8,) * 80, "dmel")], 16000)
    with pytest.raises(al.LatentError, match="declares 80 x 8 codes, this tokenizer has 80 x 16"):
        dmel16.decode(eight_levels)


def test_nested_config_and_hash():
    config = from_dict(DMelConfig, {"mel": {"n_mels": 40}, "n_levels": 8})
    assert isinstance(config.mel, MelConfig) and config.mel.n_mels == 40 and config.mel.hop_length == 160
    tok = DMelTokenizer(config)
    latent = tok.encode(torch.zeros(1, 1, 1600))
    assert latent.codes.shape == (1, 40, 10) and latent.bits_per_second == 100 * 40 * 3
    assert tok.config_hash != al.load_tokenizer("dmel-16k").config_hash
    with pytest.raises(al.ConfigError):
        DMelConfig(n_levels=1)
    with pytest.raises(al.ConfigError):
        DMelConfig(min_log=1.0, max_log=0.0)



def test_dmel_16k_pghi_shares_the_codes_and_decodes_without_iterations():
    pghi, gl = al.load_tokenizer("dmel-16k-pghi"), al.load_tokenizer("dmel-16k")
    t = torch.arange(16000) / 16000
    x = (0.3 * torch.sin(2 * math.pi * 440 * t))[None, None]
    codes = pghi.encode(x)
    assert torch.equal(codes["dmel"].values, gl.encode(x)["dmel"].values)
    y = pghi.decode(codes)
    assert y.shape == x.shape
    assert abs(int(torch.fft.rfft(y[0, 0]).abs().argmax()) - 440) <= 16  # the pitch survives
    assert float(pghi.decode(pghi.encode(torch.zeros(1, 1, 1600))).abs().max()) == 0.0
