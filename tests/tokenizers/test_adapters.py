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

#: name -> (sample rate, hop, frames/s, codebooks at the default bitrate, million parameters)
EXPECTED = {
    "encodec-24k": (24000, 320, 75.0, 8, 14.85),  # published: ~15M
    "dac-16k": (16000, 320, 50.0, 12, 74.14),
    "dac-24k": (24000, 320, 75.0, 32, 74.70),
    "dac-44k": (44100, 512, 44100 / 512, 9, 76.6),  # the DAC paper: 76M
    "mimi": (24000, 1920, 12.5, 8, 79.3),  # MimiConfig() defaults = kyutai/mimi's architecture (32 codebook tables)
}


@pytest.fixture(scope="module")
def tokenizers():
    torch.manual_seed(0)
    return {name: al.load_tokenizer(name, pretrained=False) for name in EXPECTED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shapes_rates_and_round_trip_with_random_weights(tokenizers, name):
    tok = tokenizers[name]
    rate, hop, frame_rate, n_q, millions = EXPECTED[name]
    assert (tok.sample_rate, tok.hop_length, tok.frame_rate) == (rate, hop, frame_rate)
    assert sum(p.numel() for p in tok.parameters()) / 1e6 == pytest.approx(millions, abs=0.6)
    assert tok.name == f"{name} (random weights)" and tok.weights["source"] == "random"
    x = 0.1 * torch.randn(1, 1, rate // 2 + 77, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        latent = tok.encode(x)
        codes = latent.streams[0].values
        assert codes.shape == (1, n_q, math.ceil(x.shape[-1] / hop)) and codes.dtype == torch.long
        assert latent.bits_per_second == pytest.approx(frame_rate * n_q * math.log2(tok.spec.codebook_size))
        assert len(codes[0, 0].unique()) > 5  # re-randomised codebooks: not one code everywhere
        audio = tok.decode(latent)
    assert audio.shape == x.shape and torch.isfinite(audio).all()


@pytest.mark.parametrize("name", ["encodec-24k", "dac-16k"])
def test_codes_equal_what_the_wrapped_library_returns(tokenizers, name):
    tok = tokenizers[name]
    x = 0.1 * torch.randn(1, 1, tok.hop_length * 40, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = tok.encode(x).streams[0].values
        if name.startswith("encodec"):
            theirs = tok.model.encode(x, bandwidth=6.0).audio_codes[0]
        else:
            theirs = tok.model.encode(x, n_quantizers=12).audio_codes
    assert torch.equal(ours, theirs)


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


def test_missing_weights_are_one_line_naming_the_hub_id(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(AudioLatentError, match="facebook/encodec_24khz") as info:
        al.load_tokenizer("encodec-24k")
    assert "\n" not in str(info.value) and "pretrained=False" in str(info.value)
    assert "not cached" in adapter_status("encodec-24k")


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
    results = run_bench(["encodec-24k@3kbps", "dac-16k@2q"], data=tmp_path / "m.jsonl", metrics=["mel_distance", "rate"],
                        preset="quick", progress=False, pretrained=False)
    rows = results["tokenizers"]
    assert set(rows) == {"encodec-24k@4q (random weights)", "dac-16k@2q (random weights)"}
    assert rows["dac-16k@2q (random weights)"]["rate"]["bits_per_second"] == 1000.0
    assert all(r["weights"]["source"] == "random" and r["weights"]["package"] == "transformers" for r in rows.values())
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
