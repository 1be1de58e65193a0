import math

import pytest
import torch

from audiolatent import Latent, LatentError, Stream


def _rvq_latent(batch=2, frames=50):
    codes = torch.randint(0, 1024, (batch, 8, frames))
    return Latent([Stream(codes, 50.0, (1024,) * 8, "codes")], 16000, "test-tok", "abcd", torch.tensor([16000] * batch))


def test_nominal_bitrate_rvq():
    # 50 Hz x 8 codebooks x 10 bits = 4000 bits/s (EnCodec-style arithmetic)
    assert _rvq_latent().bits_per_second == 4000.0


def test_bitrate_mixed_sizes_and_multiscale():
    a = Stream(torch.zeros(1, 2, 12, dtype=torch.long), 12.5, (4096, 256))
    b = Stream(torch.zeros(1, 1, 47, dtype=torch.long), 47.0, (1000,), name="fine")
    lat = Latent([a, b], 24000)
    assert math.isclose(lat.bits_per_second, 12.5 * (12 + 8) + 47.0 * math.log2(1000))


def test_continuous_values_per_second():
    lat = Latent([Stream(torch.randn(1, 64, 21), 21.5, None)], 44100)
    assert lat.bits_per_second == 0.0 and lat.values_per_second == 64 * 21.5 and not lat.is_discrete


def test_save_load_round_trip(tmp_path):
    lat = _rvq_latent()
    lat.streams[0].lengths = torch.tensor([50, 31])
    lat.streams[0].durations = torch.rand(2, 50)
    lat.save(tmp_path / "x.latent")
    back = Latent.load(tmp_path / "x.latent")
    assert torch.equal(back.codes, lat.codes) and back.codes.dtype == torch.long
    assert back.streams[0].codebook_sizes == (1024,) * 8
    assert torch.equal(back.streams[0].lengths, torch.tensor([50, 31]))
    assert torch.equal(back.streams[0].durations, lat.streams[0].durations)
    assert torch.equal(back.num_samples, lat.num_samples)
    assert (back.tokenizer, back.config_hash, back.sample_rate) == ("test-tok", "abcd", 16000)


def test_load_checks_tokenizer(tmp_path):
    _rvq_latent().save(tmp_path / "x.latent")
    assert Latent.load(tmp_path / "x.latent", expect_config_hash="abcd").batch_size == 2
    with pytest.raises(LatentError, match="made by tokenizer 'test-tok'"):
        Latent.load(tmp_path / "x.latent", expect_config_hash="ffff")


def test_load_errors(tmp_path):
    with pytest.raises(LatentError, match="no such latent file"):
        Latent.load(tmp_path / "missing.latent")
    (tmp_path / "junk.latent").write_bytes(b"\x00" * 64)
    with pytest.raises(LatentError, match="not a readable latent file"):
        Latent.load(tmp_path / "junk.latent")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(LatentError, match="without an audiolatent header"):
        Latent.load(tmp_path / "plain.safetensors")


def test_stream_validation():
    with pytest.raises(LatentError, match="codebooks in values"):
        Stream(torch.zeros(1, 3, 5, dtype=torch.long), 50.0, (1024, 1024))
    with pytest.raises(LatentError, match="must be integers"):
        Stream(torch.zeros(1, 1, 5), 50.0, (16,))
    with pytest.raises(LatentError, match=r"\[B, K\|D, T\]"):
        Stream(torch.zeros(5), 50.0)
    with pytest.raises(LatentError, match="frame_rate"):
        Stream(torch.zeros(1, 1, 5), 0.0)
    with pytest.raises(LatentError, match="batch size"):
        Latent([Stream(torch.zeros(1, 1, 5), 50.0), Stream(torch.zeros(2, 1, 5), 50.0, name="b")], 16000)


def test_check_codes_out_of_range():
    s = Stream(torch.tensor([[[0, 15, 16]]]), 50.0, (16,))
    with pytest.raises(LatentError, match="outside"):
        s.check_codes()
