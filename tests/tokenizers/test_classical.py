"""Opus and Codec2 reference tokenizers: honest bitrate, lengths, delay, registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
import torch

from audiolatent.bench.align import estimate_delay
from audiolatent.bench.distortion import mel_distance
from audiolatent.bench.rate import rate_metrics
from audiolatent.core.registry import list_tokenizers, load_tokenizer
from audiolatent.tokenizers import classical
from audiolatent.tokenizers.classical import ClassicalCodecUnavailable, codec2_available, opus_available

needs_opus = pytest.mark.skipif(not opus_available(), reason="pip install av (PyAV with libopus)")
needs_codec2 = pytest.mark.skipif(not codec2_available(), reason="pip install pycodec2")

NOMINAL = {"opus-6k": 6000, "opus-12k": 12000, "opus-24k": 24000, "codec2-3200": 3200, "codec2-1600": 1600,
           "codec2-700c": 700}


SPEECH = Path(__file__).resolve().parents[2] / "src" / "audiolatent" / "corpus" / "speech_real" / "audio"


@pytest.fixture(scope="module")
def speech() -> torch.Tensor:
    """3.5 s of built-in speech at 16 kHz, ``[1, 1, N]``."""
    audio, sr = sf.read(str(SPEECH / "at-tone-time-exactly.flac"), dtype="float32")
    assert sr == 16000
    return torch.from_numpy(audio)[None, None]


def _needs(name: str):
    return needs_opus if name.startswith("opus") else needs_codec2


def test_names_are_registered_as_classical():
    families = {e.name: e.family for e in list_tokenizers()}
    assert all(families.get(name) == "classical" for name in NOMINAL)


@pytest.mark.parametrize("name", [pytest.param(n, marks=_needs(n)) for n in NOMINAL])
def test_bitrate_is_honest_and_length_is_kept(name, speech):
    tok = load_tokenizer(name)
    audio = speech[..., :24007]  # not a whole number of packets
    latent = tok.encode(audio)
    stream = latent.streams[0]
    valid_packets = int(stream.lengths[0])
    bytes_per_packet = sum(s.bit_length() - 1 for s in stream.codebook_sizes) / 8
    measured = valid_packets * bytes_per_packet * 8 / (audio.shape[-1] / tok.sample_rate)
    assert measured == pytest.approx(NOMINAL[name], rel=0.2)
    assert latent.bits_per_second == pytest.approx(NOMINAL[name])
    assert rate_metrics([latent])["entropy_bits_per_second"] <= NOMINAL[name] + 1e-6
    recon = tok.decode(latent)
    assert recon.shape == audio.shape
    assert float(mel_distance(audio, recon, tok.sample_rate)[0]) < 1.2


@needs_opus
def test_opus_output_is_aligned_with_its_input(speech):
    tok = load_tokenizer("opus-12k")
    recon = tok.decode(tok.encode(speech))
    delay, peak = estimate_delay(speech, recon, 1000)
    assert abs(delay) <= 2 and peak > 0.9
    assert tok.lookahead >= 104 and not tok.causal


@needs_opus
def test_opus_declared_lookahead_covers_the_probe():
    from audiolatent.bench.streaming import probe_round_trip_lookahead

    tok = load_tokenizer("opus-6k")
    measured = probe_round_trip_lookahead(tok, 8000, windows=1, batch_size=64)
    assert measured is not None and measured <= tok.lookahead


@needs_codec2
@pytest.mark.parametrize("name", ["codec2-3200", "codec2-700c"])
def test_codec2_encoder_is_probed_and_its_round_trip_declared(name):
    from audiolatent.bench.streaming import measure_streaming, probe_encoder_lookahead

    tok = load_tokenizer(name)
    assert tok.deterministic is False
    a, b = (tok.encode(torch.randn(1, 1, 4000, generator=torch.Generator().manual_seed(0))) for _ in range(2))
    assert torch.equal(a.streams[0].values, b.streams[0].values)  # the encoder alone is deterministic
    encoder = probe_encoder_lookahead(tok, 8000)
    assert isinstance(encoder, int) and encoder <= tok.lookahead
    result = measure_streaming(tok, seconds=0.5, probe_seconds=0.5, repeats=1)
    assert result["encoder_lookahead_samples"] == encoder and result["consistent"]
    assert result["lookahead_samples"] == tok.lookahead and result["probed"] is False
    assert result["algorithmic_latency_ms"] == pytest.approx(tok.algorithmic_latency_ms)


def test_missing_library_names_the_install(monkeypatch):
    def fail(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(classical.importlib, "import_module", fail)
    with pytest.raises(ClassicalCodecUnavailable, match="pip install pycodec2"):
        classical.Codec2Tokenizer()
    with pytest.raises(ClassicalCodecUnavailable, match="pip install av"):
        classical.OpusTokenizer()
