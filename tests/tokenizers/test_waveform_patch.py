"""The encoder-free reference: raw samples in patches, exactly invertible, streaming, on the bench."""

from __future__ import annotations

import pytest
import torch

import audiolatent as al
from audiolatent.bench.streaming import measure_streaming
from audiolatent.core.errors import ConfigError
from audiolatent.tokenizers.waveform_patch import WaveformPatchConfig, WaveformPatchTokenizer


def test_round_trip_is_exact_and_rates_are_the_sample_rate():
    tok = al.load_tokenizer("waveform-patch-16k")
    x = torch.randn(2, 1, 16000 + 123, generator=torch.Generator().manual_seed(0)) * 0.3
    latent = tok.encode(x)
    assert latent.streams[0].values.shape == (2, 320, 51) and not latent.is_discrete
    assert tok.frame_rate == 50.0 and latent.values_per_second == 16000.0
    assert torch.equal(tok.decode(latent), x)
    assert torch.equal(latent.streams[0].values[0, :, 1], x[0, 0, 320:640])  # frame t = samples [tP, (t+1)P)
    info = tok.describe()
    assert info["causal"] is True and info["lookahead_samples"] == 0 and info["algorithmic_latency_ms"] == 20.0


def test_stereo_patches_are_channel_major():
    tok = WaveformPatchTokenizer(WaveformPatchConfig(sample_rate=8000, patch=4, channels=2))
    x = torch.arange(16, dtype=torch.float32).reshape(1, 2, 8) / 16
    values = tok.encode(x).streams[0].values
    assert values.shape == (1, 8, 2)
    assert torch.equal(values[0, :, 0], torch.cat([x[0, 0, :4], x[0, 1, :4]]))
    assert torch.equal(tok.decode(tok.encode(x)), x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_equals_offline_for_random_chunk_sizes(seed):
    tok = al.load_tokenizer("waveform-patch-16k")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 1, 320 * 40, generator=gen) * 0.3
    offline = tok.encode(x)
    codes, audio, start = [], [], 0
    with tok.streaming(1):
        while start < x.shape[-1]:
            size = 320 * int(torch.randint(1, 7, (1,), generator=gen))
            chunk = tok.encode(x[..., start : start + size])
            codes.append(chunk.streams[0].values)
            audio.append(tok.decode(chunk))
            start += size
    assert torch.equal(torch.cat(codes, -1), offline.streams[0].values)
    assert torch.equal(torch.cat(audio, -1), x)


def test_the_streaming_probe_measures_causal_and_zero_lookahead():
    report = measure_streaming(al.load_tokenizer("waveform-patch-16k"), seconds=0.5, probe_seconds=0.2, repeats=1, max_chunks=10)
    assert report["causal"] is True and report["probed_lookahead_samples"] <= 0


def test_bad_configs_are_refused():
    with pytest.raises(ConfigError, match="patch"):
        WaveformPatchConfig(patch=0)
    with pytest.raises(ConfigError, match="channels"):
        WaveformPatchConfig(channels=1.5)
