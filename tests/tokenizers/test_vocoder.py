"""The vocoder codecs: the fixed log-mel frontend is mel-16k's analysis, and it streams with its lookahead."""

from __future__ import annotations

import pytest
import torch

from audiolatent.bench.streaming import probe_encoder_lookahead, probe_round_trip_lookahead
from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.core.registry import load_tokenizer
from audiolatent.testing import random_chunk_sizes
from audiolatent.tokenizers.codec import build_codec
from audiolatent.tokenizers.vocoder import StreamingLogMel

TINY = ("decoder.dim=32", "decoder.n_layers=2")
PAIRS = [("mel-16k-vocoder", "mel-16k"), ("dmel-16k-vocoder", "dmel-16k")]


@pytest.fixture(scope="module", params=PAIRS, ids=[p[0] for p in PAIRS])
def pair(request):
    torch.manual_seed(0)
    name, reference = request.param
    return build_codec(name, TINY).eval(), load_tokenizer(reference)


def _speechlike(n: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Noise through a slowly varying gain, with digital silence at the start (the mel floor)."""
    gen = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.randn(batch, 1, n, generator=gen) * (1 + torch.sin(torch.arange(n) / 800.0))
    x[..., :400] = 0
    return x


@pytest.mark.parametrize("n", [160, 1000, 16000 + 37])
def test_latent_is_the_reference_tokenizers(pair, n):
    codec, reference = pair
    x = _speechlike(n)
    with torch.no_grad():
        ours, theirs = codec.encode(x), reference.encode(x)
    assert [s.name for s in ours.streams] == [s.name for s in theirs.streams]
    a, b = ours.streams[0], theirs.streams[0]
    assert a.values.shape == b.values.shape == (2, 80, -(-n // 160))
    assert a.codebook_sizes == b.codebook_sizes
    assert a.values.dtype == b.values.dtype
    assert torch.allclose(a.values.float(), b.values.float(), atol=1e-5, rtol=0)
    assert codec.decode(ours).shape == x.shape


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chunked_streaming_then_flush_equals_offline(pair, seed):
    codec, _ = pair
    n = 160 * 157
    x = _speechlike(n, seed=seed)
    sizes = random_chunk_sizes(n, 160, torch.Generator().manual_seed(seed), max_units=9)
    with torch.no_grad():
        offline = codec.encode(x)
        offline_audio = codec.decode(offline)
        frames, audio, start = [], [], 0
        with codec.streaming(2):
            for size in sizes:
                latent = codec.encode(x[..., start : start + size])
                start += size
                frames.append(latent.streams[0].values)
                audio.append(codec.decode(latent))
            tail = codec.flush_encode()
            frames.append(tail.streams[0].values)
            audio.append(codec.decode(tail))
    streamed = torch.cat(frames, dim=-1)
    assert streamed.shape == offline.streams[0].values.shape
    # bit for bit: the frontend computes every frame in float64, and the pghi decoder runs one
    # frame per call (its heap integration could flip a near-tie on float noise)
    assert torch.equal(streamed, offline.streams[0].values)
    assert torch.cat(audio, dim=-1).shape == offline_audio.shape
    assert torch.equal(torch.cat(audio, dim=-1), offline_audio)


def test_a_chunk_waits_for_its_lookahead():
    enc = StreamingLogMel()
    assert enc.lookahead == 512 - 160  # centred 1024-sample window, hop 160
    with enc.streaming(1):
        counts = [enc(torch.zeros(1, 1, 160)).shape[-1] for _ in range(6)]
        assert enc.flush().shape[-1] == 6 - sum(counts)
    # frame t is complete once sample t * 160 + 511 has arrived
    assert counts == [0, 0, 0, 1, 1, 1]


def test_declared_lookahead_is_probed(pair):
    codec, reference = pair
    n = 16000
    assert codec.lookahead == 352
    probed = probe_encoder_lookahead(codec, n)
    if reference.name == "mel-16k":
        assert probed == 352  # the last non-zero sample of the window
    else:  # a perturbation under the window's near-zero tail seldom moves an 8 dB level
        assert 300 < probed <= 352
    assert 0 < probe_round_trip_lookahead(codec, n) <= codec.lookahead
    assert codec.algorithmic_latency_ms == pytest.approx(52.0)  # + the decoder's declared delay of two hops
    assert codec.delay == 320
    assert not codec.causal  # it reads ahead; it streams with that lookahead


def test_flush_misuse_is_a_clear_error(pair):
    codec, _ = pair
    with pytest.raises(StreamingError, match="streaming mode"):
        codec.flush_encode()
    with torch.no_grad(), codec.streaming(1):
        codec.encode(torch.zeros(1, 1, 320))
        codec.flush_encode()
        with pytest.raises(StreamingError, match="ended by flush"):
            codec.encode(torch.zeros(1, 1, 160))
        with pytest.raises(StreamingError, match="already called"):
            codec.flush_encode()
        codec.reset_streaming()
        assert codec.encode(torch.zeros(1, 1, 640)).streams[0].num_frames == 1


def test_a_causal_codec_holds_nothing_back():
    codec = build_codec("tiny-16k").eval()
    with torch.no_grad(), codec.streaming(1):
        codec.encode(torch.zeros(1, 1, codec.hop_length))
        assert codec.flush_encode() is None


def test_bad_frontend_configs():
    with pytest.raises(ConfigError, match="mono only"):
        StreamingLogMel(channels=2)
    with pytest.raises(ConfigError, match="unknown argument"):
        StreamingLogMel(n_ftt=1024)
    with pytest.raises(ConfigError, match="hop_length"):
        StreamingLogMel(hop_length=600)  # 2 * hop > win_length: MelConfig's own check


def test_long_audio_is_streamed_and_flushed(pair):
    """encode_long / decode_long take the streaming path (the decoder's left context is long, so
    overlapping windows would not match) and equal one offline pass."""
    from audiolatent.tokenizers.long import decode_long, encode_long

    codec, _ = pair
    assert codec.streamable
    x = _speechlike(160 * 203 + 11, batch=1)
    with torch.no_grad():
        offline = codec.encode(x)
        chunked = encode_long(codec, x, chunk_seconds=0.33)
        assert chunked.streams[0].values.shape == offline.streams[0].values.shape
        assert (chunked.streams[0].values.float() - offline.streams[0].values.float()).abs().max() <= 1e-5
        assert torch.equal(chunked.num_samples, offline.num_samples)
        audio = decode_long(codec, offline, chunk_seconds=0.27)
    assert audio.shape == x.shape
    assert (audio - codec.decode(offline)).abs().max() <= 1e-5


@pytest.mark.parametrize("recipe", ["mel-16k-vocoder", "dmel-16k-vocoder", "mel-16k-vocoder-phase", "mel-16k-vocoder-gan"])
def test_the_trainer_trains_only_the_decoder(tmp_path, recipe):
    """The packaged recipe trains (two steps of a tiny decoder on tones): the fixed frontend has no
    weights, the decoder's change, and the checkpoint loads back as a streamable vocoder. The
    adversarial stage's discriminator (shrunk) trains beside it."""
    import numpy as np

    from audiolatent.core.audio import save_audio
    from audiolatent.train.config import load_train_config
    from audiolatent.train.trainer import Trainer

    t = np.arange(8000) / 16000
    for i in range(3):
        save_audio(tmp_path / "data" / f"tone{i}.wav", torch.tensor(0.3 * np.sin(2 * np.pi * (110 + 90 * i) * t),
                                                                    dtype=torch.float32)[None], 16000)
    config = load_train_config(recipe, [
        "model.decoder.dim=16", "model.decoder.n_layers=1", "model.decoder.intermediate_dim=32", "steps=2",
        "data.crop_seconds=0.2", "data.batch_size=2", "data.train_split=null", "data.eval_split=null",
        "data.cache=false", "eval_every=0", "checkpoint_every=0", "log_every=1",
        "losses.mel_options.window_lengths=[64,256]", "losses.mel_options.n_mels=[16,32]",
    ] + (["discriminators=[{kind: mpd, periods: [2, 3], channels: [4, 8]}]"] if recipe.endswith("-gan") else []))
    trainer = Trainer(config, [str(tmp_path / "data")], tmp_path / "run", progress=False)
    assert (trainer.discriminators is not None) == recipe.endswith("-gan")
    assert sum(p.numel() for p in trainer.codec.encoder.parameters()) == 0
    before = {k: v.clone() for k, v in trainer.codec.decoder.state_dict().items()}
    trainer.fit()
    after = trainer.codec.decoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    logged = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert ("loss/discriminator" in logged) == recipe.endswith("-gan")
    codec = load_tokenizer(tmp_path / "run" / "checkpoints" / "step_000002")
    assert codec.streamable and codec.lookahead == 352
    assert codec.decode(codec.encode(torch.zeros(1, 1, 1600))).shape == (1, 1, 1600)


def test_the_declared_delay_is_what_training_compares_against(pair):
    """The pghi vocoders' decoder lags by two hops: ``forward`` returns the input delayed by
    ``delay`` samples as the target, and in training the head synthesises with that target's phase."""
    codec, _ = pair
    x = _speechlike(1600, batch=1)
    d = codec.delay
    assert d == 320
    codec.train()
    try:
        out = codec(x)
    finally:
        codec.eval()
    assert out["target"].shape == x.shape == out["audio"].shape
    assert torch.equal(out["target"][..., d:], x[..., :-d]) and not out["target"][..., :d].any()
    no_delay = build_codec("tiny-16k").eval()
    with torch.no_grad():
        assert no_delay.delay == 0 and no_delay(x)["target"] is x


def test_a_bad_delay_is_refused():
    with pytest.raises(ValueError, match="delay_frames"):
        build_codec("mel-16k-vocoder", (*TINY, "decoder.delay_frames=-1"))


def test_the_bench_counts_the_declared_delay_in_the_latency(pair):
    """The probe measures how far an output sample reads ahead of its own (delayed) time, so the
    bench adds the declared delay to both latencies: 32 ms of analysis + 20 ms of delay."""
    from audiolatent.bench.streaming import measure_streaming

    codec, _ = pair
    result = measure_streaming(codec, seconds=0.5, max_chunks=10, repeats=1)
    assert result["delay_samples"] == 320
    assert result["declared_algorithmic_latency_ms"] == pytest.approx(52.0)
    assert result["consistent"]
    assert 30.0 < result["algorithmic_latency_ms"] <= 52.0
