import pytest
import torch

from audiolatent import AudioError, CheckpointError, LatentError, RegistryError, StreamingError, load_tokenizer
from audiolatent.testing import random_chunk_sizes, stream_chunks

from .toy import ToyConfig, ToyTokenizer


@pytest.mark.parametrize("n", [1, 3, 4, 5, 17, 1601])
def test_framing_rule_and_trim(n):
    tok = ToyTokenizer()
    x = torch.rand(2, 1, n) - 0.5
    latent = tok.encode(x)
    assert latent.codes.shape == (2, 1, -(-n // 4))
    assert tok.decode(latent).shape == (2, 1, n)
    assert latent.num_samples.tolist() == [n, n]


def test_lengths_of_padded_batch():
    latent = ToyTokenizer().encode(torch.zeros(2, 1, 16), lengths=torch.tensor([16, 9]))
    assert latent.streams[0].lengths.tolist() == [4, 3]


def test_streaming_equals_offline():
    tok = ToyTokenizer()
    x = torch.rand(1, 1, 400) - 0.5
    offline = tok.encode(x).codes
    sizes = random_chunk_sizes(400, 4, torch.Generator().manual_seed(1))
    with tok.streaming(1):
        streamed = stream_chunks(lambda c: tok.encode(c).codes, x, sizes)
    assert torch.equal(offline, streamed)


def test_streaming_errors():
    tok = ToyTokenizer()
    with tok.streaming(1):
        with pytest.raises(StreamingError, match="multiple of the hop"):
            tok.encode(torch.zeros(1, 1, 6))
        with pytest.raises(StreamingError, match="batch size 1"):
            tok.encode(torch.zeros(2, 1, 8))
        with pytest.raises(StreamingError, match="nested"):
            with tok.streaming(1):
                pass
    assert not tok.is_streaming


def test_decode_refuses_latent_of_other_config():
    a, b = ToyTokenizer(), ToyTokenizer(ToyConfig(levels=16))
    with pytest.raises(LatentError, match="another config"):
        b.decode(a.encode(torch.zeros(1, 1, 8)))


def test_encode_rejects_bad_audio():
    tok = ToyTokenizer()
    with pytest.raises(AudioError, match="unsupported channel layout"):
        tok.encode(torch.zeros(1, 2, 8))
    with pytest.raises(AudioError, match="shape"):
        tok.encode(torch.zeros(8))


def test_describe_reports_measured_rate():
    info = ToyTokenizer().describe()
    assert info["frame_rate"] == 4000 and info["nominal_bits_per_second"] == 4000 * 8
    assert info["algorithmic_latency_ms"] == pytest.approx(1000 * 4 / 16000)


def test_checkpoint_round_trip(tmp_path):
    tok = ToyTokenizer(ToyConfig(levels=64))
    with torch.no_grad():
        tok.gain.fill_(0.5)
    tok.save(tmp_path / "ckpt")
    back = load_tokenizer(tmp_path / "ckpt")
    assert isinstance(back, ToyTokenizer) and back.config == tok.config
    x = torch.rand(1, 1, 64) - 0.5
    assert torch.equal(back.decode(back.encode(x)), tok.decode(tok.encode(x)))
    assert back.config_hash == tok.config_hash


def test_checkpoint_errors(tmp_path):
    tok = ToyTokenizer()
    tok.save(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"corrupt")
    with pytest.raises(CheckpointError, match="corrupt weights"):
        load_tokenizer(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_tokenizer(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "config.yaml").write_text("kind: toy-test\nconfig: {levels: 16, bogus: 1}\n")
    with pytest.raises(CheckpointError, match="bogus"):
        load_tokenizer(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "config.yaml").write_text("kind: [unclosed\n")
    with pytest.raises(CheckpointError, match="invalid YAML"):
        load_tokenizer(tmp_path / "ckpt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.yaml"):
        load_tokenizer(tmp_path / "empty")


def test_unknown_name():
    with pytest.raises(RegistryError, match="unknown tokenizer 'no-such-thing'"):
        load_tokenizer("no-such-thing")
