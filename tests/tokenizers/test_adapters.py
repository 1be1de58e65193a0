"""External codecs as tokenizers (tokenizers/adapters/): random weights here, the same code path as real ones.

No network: ``pretrained=False`` builds each official architecture from its config with seeded
random weights (codebooks re-randomised); the real weights load through ``from_pretrained``
where a user has them, and their absence is one clear line (tested with the hub offline).
"""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("transformers")

import audiolatent as al  # noqa: E402
from audiolatent.core.errors import AudioLatentError, ConfigError  # noqa: E402
from audiolatent.tokenizers.adapters import ADAPTERS, adapter_status  # noqa: E402
from audiolatent.tokenizers.adapters.base import AdapterConfig, AdapterTokenizer, meta_parameters  # noqa: E402
from audiolatent.tokenizers.adapters.encodec import scale_code, scale_value  # noqa: E402

#: name -> (sample rate, channels, base hop, {stream: (frames/s, codebooks or None)} at the default bitrate,
#:          nominal bits/s, million parameters of the full-size architecture)
EXPECTED = {
    "encodec-24k": (24000, 1, 320, {"codes": (75.0, 8)}, 6000, 14.85),  # published: ~15M
    "encodec-48k": (48000, 2, 48000, {"scale": (1.0, 1), "codes": (150.0, 4)}, 6012, 14.86),
    "dac-16k": (16000, 1, 320, {"codes": (50.0, 12)}, 6000, 74.14),
    "dac-24k": (24000, 1, 320, {"codes": (75.0, 32)}, 24000, 74.70),
    "dac-44k": (44100, 1, 512, {"codes": (44100 / 512, 9)}, 7751.95, 76.6),  # the DAC paper: 76M
    "mimi": (24000, 1, 1920, {"codes": (12.5, 8)}, 1100, 79.3),  # MimiConfig() = kyutai/mimi (32 codebook tables)
    "snac-24k": (24000, 1, 2048, {f"level{i}": (24000 / 512 / s, 1) for i, s in enumerate((4, 2, 1))}, 984.375, 19.84),
    "snac-32k": (32000, 1, 3072, {f"level{i}": (32000 / 384 / s, 1) for i, s in enumerate((8, 4, 2, 1))}, 1875, 54.55),
    "snac-44k": (44100, 1, 3072, {f"level{i}": (44100 / 384 / s, 1) for i, s in enumerate((8, 4, 2, 1))}, 2583.98, 54.55),
    "wavtokenizer-40": (24000, 1, 600, {"codes": (40.0, 1)}, 480, 72.11),
    "wavtokenizer-75": (24000, 1, 320, {"codes": (75.0, 1)}, 900, 71.75),
    "xcodec-hubert": (16000, 1, 320, {"codes": (50.0, 8)}, 4000, 160.7),
    "xcodec2": (16000, 1, 320, {"codes": (50.0, 1)}, 800, 629.28),
    "stable-audio-vae": (44100, 2, 2048, {"latent": (44100 / 2048, None)}, 0, 156.11),  # 64-d continuous
}
#: reduced configs of the same classes, for the codecs too big to build in CI at full size
REDUCED = {
    "xcodec-hubert": {"semantic_model_config": {"num_hidden_layers": 1, "hidden_size": 96, "num_attention_heads": 2,
                                                "intermediate_size": 192},
                      "acoustic_model_config": {"encoder_hidden_size": 16, "decoder_hidden_size": 128}, "codebook_dim": 352},
    "xcodec2": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2,
                "num_key_value_heads": 2, "head_dim": 32, "quantization_dim": 128,
                "semantic_model_config": {"hidden_size": 64, "num_hidden_layers": 1, "intermediate_size": 128,
                                          "num_attention_heads": 2, "output_hidden_size": 64}},
}
SHARED = ("encodec-24k", "encodec-48k", "dac-16k", "mimi", "snac-24k")  # used by several tests: built once


def build(name: str):
    if name in REDUCED:
        return AdapterTokenizer(AdapterConfig(name, pretrained=False, overrides=REDUCED[name]))
    return al.load_tokenizer(name, pretrained=False)


@pytest.fixture(scope="module")
def tokenizers():
    torch.manual_seed(0)
    return {name: build(name) for name in SHARED}


def test_every_adapter_of_the_issue_is_registered():
    assert set(ADAPTERS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_full_size_parameters_on_the_meta_device(name):
    assert meta_parameters(name) / 1e6 == pytest.approx(EXPECTED[name][-1], abs=0.6)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shapes_rates_and_round_trip_with_random_weights(tokenizers, name):
    tok = tokenizers[name] if name in tokenizers else build(name)
    rate, channels, hop, streams, bits, millions = EXPECTED[name]
    assert (tok.sample_rate, tok.channels, tok.hop_length) == (rate, channels, hop)
    if name not in REDUCED:
        assert sum(p.numel() for p in tok.parameters()) / 1e6 == pytest.approx(millions, abs=0.6)
    assert tok.name == f"{name} (random weights{', reduced' if name in REDUCED else ''})"
    assert tok.weights["source"] == "random"
    seconds = 2.3 if name == "encodec-48k" else 0.5
    x = 0.1 * torch.randn(1, channels, int(rate * seconds) + 77, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        latent = tok.encode(x)
        got = {s.name: (s.frame_rate, s.values.shape[1] if s.is_discrete else None) for s in latent.streams}
        assert list(got) == list(streams)
        for stream, (frame_rate, codebooks) in streams.items():
            assert got[stream] == (pytest.approx(frame_rate), codebooks)
        for s in latent.streams:  # the framing rule, per stream: ceil(N / stream hop) frames
            assert s.num_frames == math.ceil(x.shape[-1] / hop) * round(s.frame_rate * hop / rate)
        assert latent.bits_per_second == pytest.approx(bits, abs=0.01)
        assert tok.describe()["nominal_bits_per_second"] == (pytest.approx(bits, abs=0.01) if bits else None)
        main = max(latent.streams, key=lambda s: s.num_frames)
        if main.is_discrete:
            assert main.values.dtype == torch.long
            assert len(main.values[0, 0].unique()) > 5  # re-randomised codebooks: not one code everywhere
        audio = tok.decode(latent)
    assert audio.shape == x.shape and torch.isfinite(audio).all()


def _library_codes(tok, x):
    """What the wrapped library itself returns for ``x`` at the tokenizer's bitrate."""
    name, model = tok.config.name, tok.model
    if name == "encodec-24k":
        return model.encode(x, bandwidth=6.0).audio_codes[0]
    if name == "dac-16k":
        return model.encode(x, n_quantizers=12).audio_codes
    if name in ("wavtokenizer-75", "xcodec-hubert"):
        return model.encode(x).audio_codes
    if name == "snac-24k":
        return model.encode(x)
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["encodec-24k", "dac-16k", "wavtokenizer-75", "xcodec-hubert", "snac-24k"])
def test_codes_equal_what_the_wrapped_library_returns(tokenizers, name):
    tok = tokenizers[name] if name in tokenizers else build(name)
    x = 0.1 * torch.randn(1, 1, tok.hop_length * 12, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours, theirs = tok.encode(x), _library_codes(tok, x)
    if name.startswith("snac"):
        assert all(torch.equal(s.values[:, 0], t) for s, t in zip(ours.streams, theirs))
    else:
        assert torch.equal(ours.streams[0].values, theirs)


def test_encodec_48k_chunks_like_the_library_and_carries_its_scale(tokenizers):
    tok = tokenizers["encodec-48k"]
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(1, 2, 2 * 48000, generator=gen) * torch.tensor([0.02, 0.5]).repeat_interleave(48000)
    with torch.no_grad():
        latent = tok.encode(x)
        theirs = tok.model.encode(x, bandwidth=6.0)  # 1 s chunks at a 0.99 s stride, each with its RMS scale
    scale, codes = latent["scale"].values, latent["codes"].values
    # the first chunk is the same 1 s in both: equal codes, and the 12-bit scale within 0.3 % of the library's
    assert torch.equal(codes[..., :150], theirs.audio_codes[0])
    assert float(scale_value(scale[0, 0, 0])) == pytest.approx(float(theirs.audio_scales[0]), rel=3e-3)
    assert float(scale_value(scale[0, 0, 1]) / scale_value(scale[0, 0, 0])) == pytest.approx(25.0, rel=0.01)
    with torch.no_grad():  # chunks are independent: streaming in whole seconds equals offline
        with tok.streaming(1):
            parts = [tok.encode(x[..., i * 48000 : (i + 1) * 48000]) for i in range(2)]
    assert torch.equal(torch.cat([p["codes"].values for p in parts], -1), codes)
    assert torch.equal(torch.cat([p["scale"].values for p in parts], -1), scale)


def test_scale_codes_round_trip_within_a_third_of_a_percent():
    scales = torch.logspace(-7, 1.5, 200, dtype=torch.float64)
    back = scale_value(scale_code(scales)).double()
    assert ((back / scales - 1).abs() < 2.8e-3).all()
    assert scale_code(torch.tensor([1e-8, 1e9])).tolist() == [54, 4095]  # silence (the library's 1e-8) fits; loud clamps


def test_snac_levels_are_coarse_to_fine_and_decode_whole_windows():
    tok = build("snac-32k")  # local attention over 32-frame windows: decode pads the codes to whole windows
    x = 0.1 * torch.randn(1, 1, 3072 * 5 + 10, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        latent = tok.encode(x)
        audio = tok.decode(latent)
    assert [s.num_frames for s in latent.streams] == [6, 12, 24, 48]
    assert audio.shape == x.shape and torch.isfinite(audio).all()
    assert al.load_tokenizer("snac-24k@0.98kbps", pretrained=False).n_q == 3
    with pytest.raises(ConfigError, match="not a bitrate it has"):
        al.load_tokenizer("snac-24k@2q", pretrained=False)


def test_the_stable_audio_vae_gives_its_posterior_mean_and_no_bitrate():
    tok = build("stable-audio-vae")
    x = 0.1 * torch.randn(1, 2, 2048 * 4, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        latent = tok.encode(x)
        mean = tok.model.encode(x).latent_dist.mean
    assert not latent.is_discrete and torch.equal(latent["latent"].values, mean)
    assert latent.values_per_second == pytest.approx(64 * 44100 / 2048)
    with pytest.raises(ConfigError, match="continuous latent"):
        al.load_tokenizer("stable-audio-vae@4q", pretrained=False)


def test_kaldi_fbank_frames_peak_and_scale():
    from audiolatent.tokenizers.adapters.xcodec2 import _mel, features, kaldi_fbank

    t = torch.arange(16000, dtype=torch.float64) / 16000
    tone = torch.sin(2 * math.pi * 1000 * t) * 2**14
    fb = kaldi_fbank(tone)
    assert fb.shape == (1 + (16000 - 400) // 160, 80)
    mel_low, mel_high = _mel(torch.tensor(20.0)), _mel(torch.tensor(8000.0))
    centres = mel_low + (mel_high - mel_low) / 81 * torch.arange(1, 81)
    assert int(fb.mean(0).argmax()) == int((centres - _mel(torch.tensor(1000.0))).abs().argmin())
    louder = kaldi_fbank(2 * tone)
    assert torch.allclose(louder - fb, torch.full_like(fb, math.log(4)), atol=1e-3)  # power: x2 amplitude = +log 4
    # the extractor's framing: N samples -> ceil((N + 1) / 320) stacked frames of 160 features
    values, feats = features(0.1 * torch.randn(2, 1, 320 * 7))
    assert values.shape == (2, 1, 320 * 8) and feats.shape == (2, 8, 160)


def test_bitrates_by_name_and_their_errors():
    enc = al.load_tokenizer("encodec-24k@1.5kbps", pretrained=False)
    assert enc.n_q == 2 and enc.name == "encodec-24k@2q (random weights)"
    assert enc.encode(torch.zeros(1, 1, 24000)).bits_per_second == 1500.0
    assert al.load_tokenizer("dac-16k@4q", pretrained=False).n_q == 4
    with pytest.raises(ConfigError, match="not a bitrate it has"):
        al.load_tokenizer("encodec-24k@5q", pretrained=False)
    with pytest.raises(ConfigError, match="not a whole number of codebooks"):
        al.load_tokenizer("encodec-24k@1kbps", pretrained=False)
    with pytest.raises(ConfigError, match="bitrate .* or a number of"):
        al.load_tokenizer("encodec-24k@fast", pretrained=False)


def test_a_lower_bitrate_latent_decodes_and_a_foreign_one_is_refused(tokenizers):
    tok = tokenizers["dac-16k"]
    x = 0.1 * torch.randn(1, 1, 3200, generator=torch.Generator().manual_seed(3))
    latent = tok.encode(x)
    low = al.Latent([al.Stream(latent.streams[0].values[:, :4], 50.0, (1024,) * 4, "codes")], 16000)
    assert tok.decode(low).shape == x.shape
    forged = al.Latent([al.Stream(latent.streams[0].values, 50.0, (2048,) * 12, "codes")], 16000)
    with pytest.raises(AudioLatentError, match="12 x 2048"):
        tok.decode(forged)


def test_the_encodec_encoder_is_causal(tokenizers):
    tok = tokenizers["encodec-24k"]
    gen = torch.Generator().manual_seed(4)
    x = 0.1 * torch.randn(1, 1, 24000, generator=gen)
    t = 37 * 320
    y = x.clone()
    y[..., t:] = 0.1 * torch.randn(1, 1, 24000 - t, generator=gen)
    with torch.no_grad():
        a, b = tok.encode(x).streams[0].values, tok.encode(y).streams[0].values
    changed = (a != b).any(1)[0].nonzero().flatten()
    assert int(changed[0]) == 37  # frames before the change keep their codes


@pytest.mark.parametrize("name, hub_id", [("encodec-24k", "facebook/encodec_24khz"), ("snac-24k", "hubertsiuzdak/snac_24khz"),
                                          ("stable-audio-vae", "stabilityai/stable-audio-open-1.0")])
def test_missing_weights_are_one_line_naming_the_hub_id(monkeypatch, tmp_path, name, hub_id):
    import huggingface_hub.constants

    # the hub reads its environment at import: set the constants too, or it retries the network for ~25 s
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(AudioLatentError, match=hub_id) as info:
        al.load_tokenizer(name)
    assert "\n" not in str(info.value) and "pretrained=False" in str(info.value)
    assert "not cached" in adapter_status(name)


def test_list_names_every_adapter_with_its_status(capsys):
    from audiolatent.cli.main import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ADAPTERS:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert "external" in line and "[" in line


def test_the_bench_runs_with_two_adapters_and_records_their_weights(tmp_path):
    from audiolatent.bench.runner import run_bench
    from audiolatent.data import builtin_corpus, read_manifest, write_manifest

    entries = [e for e in read_manifest(builtin_corpus("speech_real")) if e.split == "test"][:2]
    write_manifest(entries, tmp_path / "m.jsonl")
    results = run_bench(["encodec-24k@3kbps", "dac-16k@2q", "snac-24k"], data=tmp_path / "m.jsonl",
                        metrics=["mel_distance", "rate"], preset="quick", progress=False, pretrained=False)
    rows = results["tokenizers"]
    assert set(rows) == {"encodec-24k@4q (random weights)", "dac-16k@2q (random weights)", "snac-24k (random weights)"}
    assert rows["snac-24k (random weights)"]["rate"]["bits_per_second"] == pytest.approx(984.375)
    assert rows["snac-24k (random weights)"]["weights"]["package"] == "snac"
    assert rows["dac-16k@2q (random weights)"]["rate"]["bits_per_second"] == 1000.0
    assert all(r["weights"]["source"] == "random" for r in rows.values())
    assert all(r["distortion"]["mel_distance"] is not None for r in rows.values())


def test_mimi_streams_chunk_by_chunk_with_the_offline_codes(tokenizers):
    tok = tokenizers["mimi"]
    gen = torch.Generator().manual_seed(5)
    x = 0.1 * torch.randn(1, 1, 1920 * 16, generator=gen)
    with torch.no_grad():
        offline = tok.encode(x).streams[0].values
        parts, start = [], 0
        with tok.streaming(1):
            while start < x.shape[-1]:
                size = 1920 * int(torch.randint(1, 4, (1,), generator=gen))  # 80 to 240 ms chunks
                parts.append(tok.encode(x[..., start : start + size]).streams[0].values)
                start += size
            with pytest.raises(AudioLatentError, match="decode offline"):
                tok.decode(tok.encode(x[..., :1920]))
    assert torch.equal(torch.cat(parts, -1), offline)
    assert tok.encode(x).bits_per_second == 1100.0  # 12.5 Hz x 8 x 11 bits: the released 1.1 kbps
    with pytest.raises(AudioLatentError, match="not wired"):
        with tokenizers["dac-16k"].streaming(1):
            pass
