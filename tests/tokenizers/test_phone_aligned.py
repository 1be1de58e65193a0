"""codec-16k-varrate-phones: the shipped variable-rate codec with one segment per phone of an
alignment (the text-aligned comparison point of issue 17), and the bench that gives it the alignments."""

import json

import pytest
import torch

from audiolatent import load_tokenizer
from audiolatent.core.audio import load_audio
from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.data.corpus import builtin_corpus
from audiolatent.data.manifest import read_manifest
from audiolatent.tokenizers.aligned import phone_starts
from audiolatent.tokenizers.pretrained import PHONE_ALIGNED_CODEC

FOUR = [["pau", 0.0, 0.22], ["f", 0.22, 0.329], ["ao", 0.329, 0.513], ["r", 0.513, 0.576], ["pau", 0.576, 0.677]]


@pytest.fixture(scope="module")
def codec():
    return load_tokenizer(PHONE_ALIGNED_CODEC)


@pytest.fixture(scope="module")
def aligned():
    """A speech_aligned test file of at least 2 s: its audio ``[1, 1, N]`` and its phones."""
    entry = next(e for e in read_manifest(builtin_corpus("speech_aligned")) if e.split == "test" and e.duration >= 2.0)
    audio, _ = load_audio(entry.path, sample_rate=16000, mono=True)
    return audio[None] if audio.dim() == 2 else audio, entry.phones


def test_phone_onsets_round_to_the_frame_that_holds_them():
    # 50 frames/s: 0.22 s -> 11, 0.329 -> 16.45 -> 16, 0.513 -> 25.65 -> 26, 0.576 -> 28.8 -> 29
    assert phone_starts(FOUR, 34, 50.0).nonzero()[:, 0].tolist() == [0, 11, 16, 26, 29]
    assert phone_starts([["a", 0.1, 0.2], ["b", 0.104, 0.3]], 20, 50.0).nonzero()[:, 0].tolist() == [0, 5]  # one frame
    with pytest.raises(ConfigError, match="start time"):
        phone_starts([["a", -1.0, 0.2]], 20, 50.0)


@torch.no_grad()
def test_one_segment_per_phone_split_at_the_codecs_longest_segment(codec, aligned):
    audio, phones = aligned
    latent = codec.encode_aligned(audio, phones)
    frame_rate, longest = 50.0, codec.codec.bottleneck.max_length
    n_frames = -(-audio.shape[-1] // codec.hop_length)
    onsets = sorted({round(start * frame_rate) for _, start, _ in phones} | {0})
    ends = onsets[1:] + [n_frames]
    expected = [min(longest, e - s - k) for s, e in zip(onsets, ends) for k in range(0, e - s, longest)]
    durations = latent.streams[1].values[0, 0] + 1
    assert durations.tolist() == expected
    assert int(latent.streams[0].lengths[0]) == len(expected) >= len(phones) - 1
    assert latent.streams[0].durations[0].sum().item() == pytest.approx(n_frames / frame_rate)
    out = codec.decode(latent)
    assert out.shape == audio.shape and torch.isfinite(out).all() and out.abs().max() > 0
    # the same weights, other boundaries: the router's segments differ from the phones'
    routed = codec.codec.encode(audio)
    assert routed.streams[1].values.shape != latent.streams[1].values.shape or not torch.equal(
        routed.streams[1].values, latent.streams[1].values)


def test_it_is_offline_and_refuses_audio_without_an_alignment(codec, aligned):
    audio, phones = aligned
    assert not codec.causal and codec.lookahead is None and not codec.streamable
    with pytest.raises(ConfigError, match="needs a phone alignment"):
        codec.encode(audio)
    with pytest.raises(StreamingError, match="does not stream"):
        codec.streaming(1)
    with pytest.raises(ConfigError, match="alignment"):
        codec.encode_aligned(torch.cat([audio, audio]), phones)  # two items, one alignment
    assert codec.describe()["streams"]  # the silence probe is one (split) pause
    with pytest.raises(ConfigError, match="not a checkpoint"):
        codec.save("/nonexistent/never-written")


def test_the_bench_passes_each_files_alignment_and_refuses_data_without_any(codec, tmp_path):
    from audiolatent.bench.runner import run_bench

    rows = [json.loads(line) for line in builtin_corpus("speech_aligned").read_text().splitlines()]
    test = [r for r in rows if r["split"] == "test"][:2]
    folder = builtin_corpus("speech_aligned").parent
    manifest = tmp_path / "aligned.jsonl"
    manifest.write_text("".join(json.dumps({**r, "path": str(folder / r["path"])}) + "\n" for r in test))
    results = run_bench([PHONE_ALIGNED_CODEC], data=manifest, metrics=["mel_distance", "rate"], progress=False,
                        cache=False)
    row = results["tokenizers"][PHONE_ALIGNED_CODEC]
    phones_per_second = sum(len(r["phones"]) for r in test) / sum(r["duration"] for r in test)
    tokens = row["rate"]["tokens_per_second_spread"]["mean"] / 8  # 7 codebooks + the duration per segment
    assert 0.7 * phones_per_second < tokens < 1.3 * phones_per_second
    assert row["distortion"]["mel_distance"] < 1.0
    plain = tmp_path / "plain.jsonl"
    plain.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "phones"} | {"path": str(folder / r["path"])})
                             + "\n" for r in test))
    with pytest.raises(ConfigError, match="speech_aligned"):
        run_bench([PHONE_ALIGNED_CODEC], data=plain, metrics=["rate"], progress=False, cache=False)
