"""NeuralCodec: streaming contract, lookahead, save/load, n_q, long audio, example config shapes."""

from __future__ import annotations

import math

import pytest
import torch

from audiolatent.core.config import PACKAGED_CONFIGS, load_yaml, packaged_configs
from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.core.registry import load_tokenizer
from audiolatent.nn.latency import measure_lookahead
from audiolatent.testing import random_chunk_sizes
from audiolatent.tokenizers.codec import NeuralCodec, build_codec
from audiolatent.tokenizers.long import decode_long, encode_long, slice_latent

CONFIGS = PACKAGED_CONFIGS / "codecs"
TINY = CONFIGS / "tiny-16k.yaml"

#: tiny variants of tiny-16k (sections replaced), one per bottleneck family / architecture feature
TINY_VARIANTS = {
    "rvq": {},
    "fsq": {"bottleneck": {"kind": "fsq", "levels": [5, 5, 5]}},
    "vae": {"bottleneck": {"kind": "gaussian", "latent_dim": 8}},
    "transformer-12.5hz": {"encoder": {"extra_stride": 4, "sequence_model": {"kind": "transformer", "num_layers": 1, "num_heads": 2, "context": 16}}},
    "msrvq": {"bottleneck": {"kind": "msrvq", "strides": [4, 2, 1], "codebook_size": 64}},
    "split-rvq": {"bottleneck": {"kind": "split-rvq", "n_codebooks": 3, "codebook_size": 32}},
    "query-pool-12.5hz": {"bottleneck": {"kind": "query-pool", "stride": 4,
                                         "quantizer": {"kind": "rvq", "n_codebooks": 2, "codebook_size": 32}}},
}


def tiny_config(variant: str = "rvq", **encoder) -> dict:
    data = load_yaml(TINY)
    for section, values in TINY_VARIANTS[variant].items():
        data[section] = values if section == "bottleneck" else {**data[section], **values}
    data["encoder"].update(encoder)
    return data


#: published shapes the example configs imitate: (parameters, base frame rate Hz); see configs/codecs/README.md
REFERENCES = {
    "encodec-24k": (14.85e6, 75.0),
    "dac-16k": (74.18e6, 50.0),
    "dac-24k": (74.71e6, 75.0),
    "soundstream-16k": (8.4e6, 50.0),
    "mimi-like-24k": (79.3e6, 12.5),
    "snac-like-24k": (19.8e6, 11.72),
    "stable-audio-vae-44k": (156e6, 21.5),
    "sq-codec-16k": (None, 50.0),
}


def tiny(variant: str = "rvq") -> NeuralCodec:
    torch.manual_seed(0)
    return build_codec(tiny_config(variant)).eval()


def audio(n: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return 0.3 * torch.randn(batch, 1, n, generator=torch.Generator().manual_seed(seed))


def stacked(latent) -> torch.Tensor:
    """All streams at the finest rate, stacked on channels (float) so chunks concatenate in time."""
    finest = max(s.frame_rate for s in latent.streams)
    return torch.cat([s.values.float().repeat_interleave(round(finest / s.frame_rate), dim=-1) for s in latent.streams], 1)


@pytest.mark.parametrize("variant", sorted(TINY_VARIANTS))
def test_encode_streams_like_offline(variant):
    codec = tiny(variant)
    x = audio(codec.hop_length * 12)
    offline = codec.encode(x)
    sizes = random_chunk_sizes(x.shape[-1], codec.hop_length, torch.Generator().manual_seed(1), max_units=3)
    with torch.no_grad(), codec.streaming(2):
        chunks, start = [], 0
        for size in sizes:
            chunks.append(stacked(codec.encode(x[..., start : start + size])))
            start += size
    streamed = torch.cat(chunks, dim=-1)
    diff = (streamed - stacked(offline)).abs().max()
    if offline.is_discrete:
        assert diff == 0, "codes must be identical"
    else:
        assert diff <= 1e-5


@pytest.mark.parametrize("variant", sorted(TINY_VARIANTS))
def test_decode_streams_like_offline(variant):
    codec = tiny(variant)
    x = audio(codec.hop_length * 12)
    latent = codec.encode(x)
    offline = codec.decode(latent)
    sizes = random_chunk_sizes(12, 1, torch.Generator().manual_seed(2), max_units=4)
    with torch.no_grad(), codec.streaming(2):
        outs, start = [], 0
        for size in sizes:
            outs.append(codec.decode(slice_latent(codec, latent, start, start + size)))
            start += size
    assert (torch.cat(outs, -1) - offline).abs().max() <= 1e-5


def test_msrvq_streaming_needs_whole_blocks():
    codec = tiny("msrvq")
    assert codec.hop_length == 4 * codec.encoder_hop
    assert [s.frame_rate for s in codec.encode(audio(codec.hop_length)).streams] == [12.5, 25.0, 50.0]
    with codec.streaming(1), pytest.raises(StreamingError, match="multiple of 1280"):
        codec.encode(audio(codec.encoder_hop, batch=1))


@pytest.mark.parametrize("causal", [True, False])
def test_lookahead_is_measured(causal):
    """Round trip audio -> audio needs input up to sample n + hop - 1 + lookahead for output n.

    Probed in float64 (in float32 the faintest edge dependencies can round away) on a hop-8
    variant, so that every phase of the hop is probed cheaply.
    """
    torch.manual_seed(0)
    codec = build_codec(tiny_config("vae", causal=causal, ratios=[2, 4])).eval().double()
    assert codec.causal is causal and (codec.lookahead == 0) is causal
    hop = codec.hop_length
    n = 16 * hop + 4 * codec.lookahead
    mid = n // 2 - (n // 2) % hop
    measured = measure_lookahead(
        lambda x: codec.decode(codec.encode(x.double())), n, 1, 1, positions=range(mid, mid + hop), batch_size=hop
    )
    assert measured == hop - 1 + codec.lookahead
    if not causal:
        with pytest.raises(StreamingError), codec.streaming(1):
            pass


@pytest.mark.parametrize("variant", sorted(TINY_VARIANTS))
def test_save_load_roundtrip_is_exact(variant, tmp_path):
    codec = tiny(variant)
    x = audio(codec.hop_length * 3 + 17)
    latent = codec.encode(x)
    y = codec.decode(latent)
    assert y.shape == x.shape
    codec.save(tmp_path / "ckpt")
    loaded = load_tokenizer(tmp_path / "ckpt")
    assert isinstance(loaded, NeuralCodec) and loaded.config_hash == codec.config_hash
    again = loaded.encode(x)
    for a, b in zip(latent.streams, again.streams):
        assert torch.equal(a.values, b.values)
    assert torch.equal(loaded.decode(again), y)


def test_n_q_selects_bitrate():
    codec = tiny("rvq")
    x = audio(codec.hop_length * 5)
    full, half = codec.encode(x), codec.encode(x, n_q=2)
    assert full.bits_per_second == 4 * 8 * 50 and half.bits_per_second == 2 * 8 * 50
    assert torch.equal(half.streams[0].values, full.streams[0].values[:, :2])
    assert codec.decode(half).shape == x.shape


def test_forward_for_training():
    torch.manual_seed(0)
    codec = build_codec(TINY).train()
    x = audio(1000)  # not a whole number of frames: padded inside, output trimmed back
    out = codec(x)
    assert out["audio"].shape == x.shape
    assert out["z"].shape == out["z_q"].shape == (2, 32, 4)
    assert "commitment" in out["losses"] and out["stats"]["usage"].shape == (4,)
    out["audio"].pow(2).mean().backward()
    assert all(p.grad is not None for p in codec.encoder.parameters())


def test_prepare_for_inference_keeps_outputs():
    codec = tiny("fsq")
    x = audio(codec.hop_length * 4)
    before = codec.decode(codec.encode(x))
    n_params = codec.num_parameters()
    codec.prepare_for_inference()
    assert codec.num_parameters() < n_params  # g and v folded into one weight
    assert (codec.decode(codec.encode(x)) - before).abs().max() <= 1e-5


def test_config_errors_are_clear():
    data = tiny_config()
    data["encoder"]["channels"] = 2
    with pytest.raises(ConfigError, match="top level"):
        build_codec(data)
    with pytest.raises(ConfigError, match="unknown"):
        build_codec({"sample_rate": 16000, "nope": 1})


@pytest.mark.parametrize("variant", ["rvq", "msrvq"])
def test_long_audio_causal_equals_single_pass(variant):
    codec = tiny(variant)
    x = audio(codec.hop_length * 9 + 123)
    offline = codec.encode(x)
    chunked = encode_long(codec, x, chunk_seconds=2 * codec.hop_length / codec.sample_rate)
    assert torch.equal(stacked(chunked), stacked(offline))
    assert torch.equal(chunked.num_samples, offline.num_samples)
    assert all(torch.equal(a.lengths, b.lengths) for a, b in zip(chunked.streams, offline.streams))
    y = decode_long(codec, offline, chunk_seconds=0.05)
    assert y.shape == x.shape and (y - codec.decode(offline)).abs().max() <= 1e-5


def test_long_audio_noncausal_matches_single_pass():
    """Non-causal: overlapping windows with lookahead + hop of context; agreement to 1e-4."""
    torch.manual_seed(0)
    codec = build_codec(tiny_config("vae", causal=False)).eval()
    x = audio(codec.hop_length * 40 + 5, batch=1)
    offline = codec.encode(x)
    chunked = encode_long(codec, x, chunk_seconds=0.1)
    assert (chunked.streams[0].values - offline.streams[0].values).abs().max() <= 1e-4
    y = decode_long(codec, offline, chunk_seconds=0.1)
    assert (y - codec.decode(offline)).abs().max() <= 1e-4
    with pytest.raises(StreamingError):
        encode_long(load_tokenizer("mel-16k"), x)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_example_config_shape(name):
    """Parameters and frame rate within 10% of the codec each config imitates (meta device: no memory)."""
    with torch.device("meta"):
        codec = build_codec(CONFIGS / f"{name}.yaml")
    params, frame_rate = REFERENCES[name]
    assert math.isclose(codec.frame_rate, frame_rate, rel_tol=0.1)
    if params is not None:
        assert math.isclose(codec.num_parameters(), params, rel_tol=0.1), codec.num_parameters()


@pytest.mark.slow
@pytest.mark.parametrize("name", packaged_configs("codecs"))
def test_example_config_runs_and_round_trips(name, tmp_path):
    """Every shipped config builds, encodes, decodes, and reloads from a checkpoint bit-exactly."""
    torch.manual_seed(0)
    codec = build_codec(name).eval()
    x = audio(codec.hop_length * 2, batch=1)
    with torch.inference_mode():
        latent = codec.encode(x)
        recon = codec.decode(latent)
    assert recon.shape == x.shape and torch.isfinite(recon).all()
    # the finest stream runs at the encoder's rate over its own stride (query-pool: every stream at 1 / stride)
    stride = codec.bottleneck.stream_specs()[-1].stride
    assert latent.streams[-1].frame_rate == codec.sample_rate / (codec.encoder_hop * stride)
    codec.save(tmp_path / name)
    back = load_tokenizer(tmp_path / name)
    with torch.inference_mode():
        latent_back = back.encode(x)
        assert all(torch.equal(a.values, b.values) for a, b in zip(latent.streams, latent_back.streams))
        assert torch.equal(back.decode(latent_back), recon)


def test_encode_any_and_decode_any_chunk_long_signals_like_one_pass():
    from audiolatent.core.registry import load_tokenizer
    from audiolatent.tokenizers.long import decode_any, encode_any

    tok = load_tokenizer("codec-16k-default")
    x = audio(16000 * 3)
    with torch.no_grad():
        offline = tok.encode(x)
        chunked = encode_any(tok, x, long_seconds=1.0, chunk_seconds=0.5)  # 3 s > 1 s: six 0.5 s chunks
        assert torch.equal(chunked.streams[0].values, offline.streams[0].values)
        assert torch.equal(chunked.num_samples, offline.num_samples)
        a, b = tok.decode(offline), decode_any(tok, offline, long_seconds=1.0, chunk_seconds=0.5)
    assert a.shape == b.shape == x.shape and torch.allclose(a, b, atol=1e-4)
    mel = load_tokenizer("mel-16k")  # Griffin-Lim needs the whole signal: one pass whatever the length
    assert torch.equal(encode_any(mel, x, long_seconds=1.0).streams[0].values, mel.encode(x).streams[0].values)
