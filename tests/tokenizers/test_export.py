"""Compressed checkpoints (core/checkpoint.py ``weights=``) on a real codec, and `audiolatent export`."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from audiolatent import CheckpointError, load_tokenizer
from audiolatent.cli.main import main
from audiolatent.core.checkpoint import INT8_MIN_NUMEL, save_checkpoint
from audiolatent.tokenizers.codec import build_codec


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    return build_codec("tiny-16k").eval()


def size(path):
    return (path / "model.safetensors").stat().st_size


def test_int8_and_float16_shrink_the_file_and_stay_close(codec, tmp_path):
    for fmt in ("float32", "float16", "int8"):
        save_checkpoint(codec, tmp_path / fmt, weights=fmt)
    assert size(tmp_path / "float16") < 0.55 * size(tmp_path / "float32")
    assert size(tmp_path / "int8") < 0.45 * size(tmp_path / "float32")  # codebooks and norms stay float32
    reference = codec.state_dict()
    parameters = dict(codec.named_parameters())
    for fmt in ("float16", "int8"):
        back = load_tokenizer(tmp_path / fmt)
        for name, value in back.state_dict().items():
            assert value.dtype == reference[name].dtype, name
            if not value.is_floating_point():
                assert torch.equal(value, reference[name]), name
                continue
            error = (value - reference[name]).abs()
            w = reference[name]
            if fmt == "int8" and name in parameters and w.ndim >= 2 and w.numel() >= INT8_MIN_NUMEL:
                # per output channel: at most half a quantisation step, max|w[o]| / 254
                step = w.reshape(w.shape[0], -1).abs().amax(1) / 127
                assert (error.reshape(w.shape[0], -1).amax(1) <= step / 2 + 1e-7).all(), name
                assert error.max() > 0, name  # really quantised
            elif fmt == "int8":
                assert torch.equal(value, w), name  # biases, norms and buffers are kept exactly
            else:
                assert torch.allclose(value, w, rtol=1e-3, atol=1e-6), name
    x = 0.1 * torch.randn(1, 1, 3200, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = codec.decode(codec.encode(x))
        y8 = load_tokenizer(tmp_path / "int8").decode(codec.encode(x))
    assert (y8 - y).pow(2).mean() < 1e-2 * y.pow(2).mean()  # same codes decode to nearly the same audio


def test_bad_format_and_corrupt_scales_are_named(codec, tmp_path):
    with pytest.raises(CheckpointError, match="weights must be one of"):
        save_checkpoint(codec, tmp_path / "x", weights="int4")
    save_checkpoint(codec, tmp_path / "int8", weights="int8")
    state = load_file(str(tmp_path / "int8" / "model.safetensors"))
    key = next(k for k in state if k.endswith(".__scale__"))
    state[key] = state[key][:1]
    save_file(state, str(tmp_path / "int8" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="corrupt int8 weights"):
        load_tokenizer(tmp_path / "int8")


def test_export_command(codec, tmp_path, capsys):
    codec.save(tmp_path / "ckpt")
    assert main(["export", str(tmp_path / "ckpt"), str(tmp_path / "small"), "--weights", "int8"]) == 0
    assert "int8 weights" in capsys.readouterr().out
    assert load_tokenizer(tmp_path / "small").config == codec.config
