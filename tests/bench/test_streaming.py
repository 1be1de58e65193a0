import math
from dataclasses import dataclass

import pytest
import torch

from audiolatent.bench.streaming import measure_streaming, probe_round_trip_lookahead
from audiolatent.core.latent import Stream
from audiolatent.core.tokenizer import Tokenizer
from audiolatent.nn.conv import StreamingConv1d, StreamingConvTranspose1d
from tests.core.toy import ToyTokenizer


@dataclass
class ConvConfig:
    hop_length: int = 8
    kernel_size: int = 16
    causal: bool = True
    dim: int = 4


class ConvTokenizer(Tokenizer):
    """Continuous latent from one strided conv; decoder one transposed conv (nn/ streaming blocks)."""

    kind = "bench-conv-test"
    config_class = ConvConfig

    def __init__(self, config: ConvConfig) -> None:
        super().__init__(config)
        torch.manual_seed(0)
        c = config
        self.encoder = StreamingConv1d(1, c.dim, c.kernel_size, c.hop_length, causal=c.causal)
        self.decoder = StreamingConvTranspose1d(c.dim, 1, c.kernel_size, c.hop_length, causal=c.causal)

    sample_rate = property(lambda self: 16000)
    hop_length = property(lambda self: self.config.hop_length)
    causal = property(lambda self: self.config.causal)
    lookahead = property(lambda self: self.encoder.lookahead + self.decoder.lookahead)

    def _encode(self, audio):
        return [Stream(self.encoder(audio), self.frame_rate, None, "latent")]

    def _decode(self, streams):
        return self.decoder(streams[0].values)


class WholeSignalTokenizer(ToyTokenizer):
    """Declares lookahead None (like Griffin-Lim)."""

    lookahead = property(lambda self: None)
    causal = property(lambda self: False)


class LyingTokenizer(ConvTokenizer):
    """A non-causal conv tokenizer that claims to be causal: the probe must catch it."""

    causal = property(lambda self: True)
    lookahead = property(lambda self: 0)


def check_timings(result):
    for key in ("encode_rtf", "decode_rtf"):
        assert result[key] > 0 and math.isfinite(result[key])


def test_toy_tokenizer_is_causal_with_lookahead_zero():
    result = measure_streaming(ToyTokenizer(), seconds=0.25, max_chunks=50, repeats=1)
    assert result["causal"] and result["consistent"]
    assert result["lookahead_samples"] == 0
    assert result["algorithmic_latency_ms"] == pytest.approx(1000 * 4 / 16000)
    assert result["chunk_compute_fraction"] > 0 and math.isfinite(result["chunk_compute_fraction"])
    check_timings(result)


def test_causal_conv_tokenizer():
    result = measure_streaming(ConvTokenizer(ConvConfig()), seconds=0.1, max_chunks=50, repeats=1)
    assert result["causal"] and result["lookahead_samples"] == 0 and result["consistent"]
    assert result["probed_lookahead_samples"] <= 0  # a causal round trip may probe below zero; reported clamped
    assert result["algorithmic_latency_ms"] == pytest.approx(1000 * 8 / 16000)
    check_timings(result)


@pytest.mark.parametrize("hop,kernel", [(8, 16), (4, 11), (1, 5)])
def test_non_causal_conv_is_detected_with_its_lookahead(hop, kernel):
    tok = ConvTokenizer(ConvConfig(hop_length=hop, kernel_size=kernel, causal=False))
    assert tok.lookahead > 0
    result = measure_streaming(tok, seconds=0.05, repeats=1)
    assert not result["causal"]
    assert result["lookahead_samples"] == tok.lookahead
    assert result["consistent"]
    assert result["algorithmic_latency_ms"] == pytest.approx(1000 * (hop + tok.lookahead) / 16000)
    assert result["chunk_compute_fraction"] is None  # non-causal convs cannot stream
    assert any("streaming not supported" in note for note in result["notes"])
    check_timings(result)


def test_a_false_causality_claim_is_caught():
    tok = LyingTokenizer(ConvConfig(causal=False))
    assert probe_round_trip_lookahead(tok, 800) == 8
    result = measure_streaming(tok, seconds=0.05, repeats=1)
    assert not result["causal"] and not result["consistent"]


def test_whole_signal_tokenizer_is_not_probed():
    result = measure_streaming(WholeSignalTokenizer(), seconds=0.05, repeats=1)
    assert result["causal"] is False
    assert result["lookahead_samples"] == "whole signal"
    assert result["algorithmic_latency_ms"] is None and result["chunk_compute_fraction"] is None
    check_timings(result)
