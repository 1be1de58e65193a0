"""NeuralCodec encoder/decoder registries: stft-convnext and vocos codecs stream, are causal, save/load."""

from __future__ import annotations

import pytest
import torch

from audiolatent.core.config import PACKAGED_CONFIGS, load_yaml
from audiolatent.core.errors import ConfigError
from audiolatent.core.registry import load_tokenizer
from audiolatent.nn.convnext import STFTConvNeXtEncoder, VocosDecoder
from audiolatent.nn.latency import measure_lookahead
from audiolatent.nn.seanet import SEANetEncoder
from audiolatent.testing import random_chunk_sizes
from audiolatent.tokenizers.codec import DECODERS, ENCODERS, NeuralCodec, build_codec, decoder_kwargs
from audiolatent.tokenizers.long import slice_latent

HOP = 32
CANDIDATES = PACKAGED_CONFIGS / "codecs" / "default-candidates"

SEANET = {"kind": "seanet", "dimension": 8, "n_filters": 2, "ratios": [4, 8], "residual_kernel_size": 3}
STFT_CONVNEXT = {"kind": "stft-convnext", "dimension": 8, "hop_length": HOP, "dim": 8, "n_layers": 2, "n_mels": 10, "downsample": 2}
VOCOS = {"kind": "vocos", "dim": 8, "n_layers": 2, "window": "asymmetric"}
PAIRS = {
    "stft-vocos": (STFT_CONVNEXT, VOCOS),
    "seanet-vocos": (SEANET, VOCOS),
    "stft-seanet": (STFT_CONVNEXT, {"kind": "seanet", "n_filters": 2, "ratios": [4, 8], "residual_kernel_size": 3}),
}


def tiny(pair: str, bottleneck: dict | None = None) -> NeuralCodec:
    encoder, decoder = PAIRS[pair]
    torch.manual_seed(0)
    config = {"sample_rate": 16000, "encoder": encoder, "decoder": decoder,
              "bottleneck": bottleneck or {"kind": "rvq", "n_codebooks": 2, "codebook_size": 16}}
    return build_codec(config).eval()


def audio(n: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return 0.3 * torch.randn(batch, 1, n, generator=torch.Generator().manual_seed(seed))


def test_registries_hold_the_kinds():
    assert ENCODERS["stft-convnext"] is STFTConvNeXtEncoder and ENCODERS["seanet"] is SEANetEncoder
    assert DECODERS["vocos"] is VocosDecoder
    codec = tiny("stft-vocos")
    assert isinstance(codec.encoder, STFTConvNeXtEncoder) and isinstance(codec.decoder, VocosDecoder)
    assert codec.decoder.dimension == 8 and codec.decoder.hop_length == HOP  # taken from the encoder


def test_decoder_kwargs_mirror_only_the_same_kind():
    config = build_codec({"encoder": SEANET, "decoder": {"n_filters": 4}}).config
    assert decoder_kwargs(config) == {**{k: v for k, v in SEANET.items() if k != "kind"}, "n_filters": 4}
    config = tiny("seanet-vocos").config
    assert decoder_kwargs(config) == {k: v for k, v in VOCOS.items() if k != "kind"}


@pytest.mark.parametrize("section", ["encoder", "decoder"])
def test_unknown_kind_is_a_config_error(section):
    config = {"encoder": dict(SEANET), "decoder": {}}
    config[section]["kind"] = "nope"
    with pytest.raises(ConfigError, match=f"codec.{section}: unknown kind 'nope'; known: .*seanet"):
        build_codec(config)


def test_bad_argument_is_a_config_error():
    with pytest.raises(ConfigError, match=r"codec.decoder \(vocos\)"):
        build_codec({"encoder": SEANET, "decoder": {**VOCOS, "ratios": [2]}})


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_streaming_encode_and_decode_equal_offline(pair):
    codec = tiny(pair)
    assert codec.causal and codec.lookahead == 0 and codec.hop_length == HOP
    x = audio(HOP * 12)
    offline = codec.encode(x)
    sizes = random_chunk_sizes(x.shape[-1], HOP, torch.Generator().manual_seed(1), max_units=4)
    with torch.no_grad(), codec.streaming(2):
        chunks, start = [], 0
        for size in sizes:
            chunks.append(codec.encode(x[..., start : start + size]).streams[0].values)
            start += size
    assert torch.equal(torch.cat(chunks, -1), offline.streams[0].values), "codes must be identical"
    decoded = codec.decode(offline)
    frame_sizes = random_chunk_sizes(12, 1, torch.Generator().manual_seed(2), max_units=4)
    with torch.no_grad(), codec.streaming(2):
        outs, start = [], 0
        for size in frame_sizes:
            outs.append(codec.decode(slice_latent(codec, offline, start, start + size)))
            start += size
    assert (torch.cat(outs, -1) - decoded).abs().max() <= 1e-5


@pytest.mark.parametrize("n", [1, HOP - 1, HOP * 3 + 5])
def test_frame_counts_are_ceil(n):
    codec = tiny("stft-vocos")
    latent = codec.encode(audio(n))
    assert latent.streams[0].values.shape[-1] == -(-n // HOP)
    assert codec.decode(latent).shape[-1] == n
    assert codec(audio(n))["audio"].shape[-1] == n


def test_round_trip_lookahead_is_measured():
    """Output sample n needs input up to n + hop - 1 + lookahead (= n + hop - 1 when causal).

    Probed through a continuous (VAE) bottleneck, whose output moves with any input change, in
    float64; an RVQ's argmin would hide small changes."""
    codec = tiny("stft-vocos", {"kind": "gaussian", "latent_dim": 4}).double()
    mid = HOP * 10
    measured = measure_lookahead(
        lambda x: codec.decode(codec.encode(x.double())), HOP * 20, 1, 1, positions=range(mid, mid + HOP), batch_size=HOP
    )
    assert measured == HOP - 1 + codec.lookahead == HOP - 1


@pytest.mark.parametrize("pair", ["stft-vocos", "seanet-vocos"])
def test_save_load_roundtrip_is_exact(pair, tmp_path):
    codec = tiny(pair)
    x = audio(HOP * 5 + 7)
    latent = codec.encode(x)
    y = codec.decode(latent)
    codec.save(tmp_path / "ckpt")
    loaded = load_tokenizer(tmp_path / "ckpt")
    assert isinstance(loaded, NeuralCodec) and loaded.config_hash == codec.config_hash
    again = loaded.encode(x)
    assert torch.equal(again.streams[0].values, latent.streams[0].values)
    assert torch.equal(loaded.decode(again), y)


def test_forward_trains_and_prepare_for_inference_keeps_outputs():
    codec = tiny("stft-vocos").train()
    x = audio(HOP * 6)
    out = codec(x)
    assert out["audio"].shape == x.shape and out["z"].shape == (2, 8, 6)
    out["audio"].pow(2).mean().backward()
    assert all(p.grad is not None for p in codec.decoder.parameters())
    codec.eval()
    before = codec.decode(codec.encode(x))
    assert torch.equal(codec.prepare_for_inference().decode(codec.encode(x)), before)


@pytest.mark.parametrize("path", sorted(CANDIDATES.glob("*.yaml")), ids=lambda p: p.stem)
def test_default_candidates_are_causal_50hz_and_at_most_1600_bps(path):
    data = load_yaml(path)
    codec = build_codec(path)
    assert codec.sample_rate == 16000 and codec.causal and codec.lookahead == 0
    assert (codec.hop_length + codec.lookahead) / codec.sample_rate <= 0.040
    bottleneck = data["bottleneck"]
    bits = bottleneck["n_codebooks"] * (bottleneck["codebook_size"] - 1).bit_length() * codec.frame_rate
    assert bits <= 1600
