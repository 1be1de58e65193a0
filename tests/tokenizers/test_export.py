"""`audiolatent export`: compressed checkpoints (core/checkpoint.py ``weights=``) on a real codec, and the streaming
step exported for deployment (tokenizers/export.py)."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from torch.nn.utils import parametrize

from audiolatent import CheckpointError, ExportError, load_tokenizer
from audiolatent.cli.main import EXPORT_FORMATS, STEP_PARTS, main
from audiolatent.core.audio import load_audio
from audiolatent.core.checkpoint import INT8_MIN_NUMEL, save_checkpoint
from audiolatent.core.config import load_yaml, resolve_config
from audiolatent.core.errors import OutputError
from audiolatent.data import builtin_corpus, read_manifest
from audiolatent.tokenizers.codec import build_codec
from audiolatent.tokenizers.export import (
    FORMATS, MANIFEST_FILE, PARTS, StreamingStep, export_streaming_step, load_exported_step,
)
from audiolatent.tokenizers.pretrained import DEFAULT_CODEC


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


# --- the streaming step exported for deployment (tokenizers/export.py, `audiolatent export --format ...`) ---


#: float32 rounding: the exported step multiplies the int8-exact weights in float32 where eager runs them through
#: FBGEMM's fp16-weight GEMM (nn/matvec.py), a different summation order (measured: 2e-7 to 2e-6 on speech)
AUDIO_ATOL = 1e-5


@pytest.fixture(scope="module")
def default_codec():
    return load_tokenizer(DEFAULT_CODEC)


@pytest.fixture(scope="module")
def speech():
    """The first 3 s of the built-in speech_real test split, files concatenated, [1, 1, 48000]."""
    parts, total = [], 0
    for entry in read_manifest(builtin_corpus("speech_real")):
        if entry.split == "test" and total < 48000:
            audio, _ = load_audio(entry.path, sample_rate=16000, mono=True)
            parts.append(audio.reshape(1, 1, -1))
            total += parts[-1].shape[-1]
    return torch.cat(parts, dim=-1)[..., :48000]


@pytest.fixture(scope="module")
def tiny_lstm_codec():
    """A random causal SEANet codec with an LSTM (its hidden and cell states are exported too)."""
    config = load_yaml(resolve_config("tiny-16k", "codecs"))
    config["encoder"]["sequence_model"] = {"kind": "lstm", "num_layers": 1}
    torch.manual_seed(0)
    return build_codec(config).eval()


def eager_stream(codec, audio, frames):
    """Codes [1, n_q, T] and audio of ``codec.streaming()`` on chunks of ``frames`` hops."""
    size = frames * codec.hop_length
    codes, out = [], []
    with torch.inference_mode(), codec.streaming(1):
        for i in range(0, audio.shape[-1], size):
            latent = codec.encode(audio[..., i : i + size])
            codes.append(latent.streams[0].values)
            out.append(codec.decode(latent))
    return torch.cat(codes, -1), torch.cat(out, -1)


def exported_stream(step, first_inputs):
    """Run an exported step over ``first_inputs`` from its saved zero state; outputs concatenated per position."""
    state, outputs = step.initial_state(), []
    n_outputs = len(step.manifest["outputs"]) - len(state)
    with torch.inference_mode():
        for x in first_inputs:
            out = list(step(x, *state))
            outputs.append(out[:n_outputs])
            state = out[n_outputs:]
    return [torch.cat(column, -1) for column in zip(*outputs)]


def chunks(audio, size):
    return [audio[..., i : i + size] for i in range(0, audio.shape[-1], size)]


@pytest.mark.parametrize(("fmt", "frames"), [("export", 1), ("torchscript", 3)])
def test_exported_default_codec_step_equals_eager_streaming(default_codec, speech, tmp_path, fmt, frames):
    out = export_streaming_step(default_codec, tmp_path / "step", fmt, chunk_frames=frames)
    step = load_exported_step(out)  # the saved file, loaded back
    codes, audio = exported_stream(step, chunks(speech, frames * 320))
    ref_codes, ref_audio = eager_stream(default_codec, speech, frames)
    assert codes.dtype == torch.long and codes.shape == ref_codes.shape == (1, 4, 150)
    assert torch.equal(codes, ref_codes)
    assert audio.shape == ref_audio.shape == speech.shape
    assert float((audio - ref_audio).abs().max()) <= AUDIO_ATOL
    assert float(ref_audio.abs().max()) > 0.05  # real speech came out, not silence


def test_the_export_records_its_state_and_provenance(default_codec, tmp_path):
    out = export_streaming_step(default_codec, tmp_path / "step", "torchscript")
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["codec"]["name"] == DEFAULT_CODEC and manifest["codec"]["config_hash"] == default_codec.config_hash
    assert len(manifest["codec"]["weights_fingerprint"]) == 16
    assert manifest["provenance"]["torch"] == torch.__version__ and "audiolatent" in manifest["provenance"]
    assert (manifest["chunk_samples"], manifest["n_q"], manifest["part"]) == (320, 4, "codec")
    step = StreamingStep(default_codec, 1)
    names = [s["name"] for s in manifest["state"]]
    assert names == [s.name for s in step.slots] and names[0] == "encoder.stft.previous" and names[-1] == "decoder.head.tail"
    assert manifest["inputs"][0] == {"name": "audio", "shape": [1, 1, 320], "dtype": "float32"}
    assert manifest["outputs"][:2] == ["codes", "audio"]
    state = load_exported_step(out).initial_state()
    assert [list(t.shape) for t in state] == [s["shape"] for s in manifest["state"]]
    assert all(not t.any() for t in state)


@pytest.mark.parametrize(("fmt", "frames"), [("export", 2), ("torchscript", 1)])
def test_exported_tiny_codec_step_equals_eager_streaming(tiny_lstm_codec, speech, tmp_path, fmt, frames):
    audio = speech[..., :16000]
    step = load_exported_step(export_streaming_step(tiny_lstm_codec, tmp_path / "step", fmt, chunk_frames=frames))
    assert any(s["name"].endswith(".hidden") for s in step.manifest["state"])  # the LSTM's state is passed too
    codes, out = exported_stream(step, chunks(audio, frames * 320))
    ref_codes, ref_audio = eager_stream(tiny_lstm_codec, audio, frames)
    assert torch.equal(codes, ref_codes)
    assert float((out - ref_audio).abs().max()) <= AUDIO_ATOL
    assert any(parametrize.is_parametrized(m) for m in tiny_lstm_codec.modules())  # the export folded a copy, not this
    with pytest.raises(ExportError, match=r"shape \[1, 1, %d\]" % (frames * 320)):  # a traced graph would fail deep inside
        step(audio[..., : (frames + 1) * 320], *step.initial_state())


def test_encode_only_and_decode_only_steps(tiny_lstm_codec, speech, tmp_path):
    audio = speech[..., :9600]
    ref_codes, ref_audio = eager_stream(tiny_lstm_codec, audio, 1)
    encode = load_exported_step(export_streaming_step(tiny_lstm_codec, tmp_path / "enc", "torchscript", part="encode"))
    decode = load_exported_step(export_streaming_step(tiny_lstm_codec, tmp_path / "dec", "torchscript", part="decode"))
    (codes,) = exported_stream(encode, chunks(audio, 320))
    (out,) = exported_stream(decode, [ref_codes[..., t : t + 1] for t in range(ref_codes.shape[-1])])
    assert torch.equal(codes, ref_codes)
    assert float((out - ref_audio).abs().max()) <= AUDIO_ATOL
    assert {s["name"].split(".")[0] for s in encode.manifest["state"]} == {"encoder"}
    assert {s["name"].split(".")[0] for s in decode.manifest["state"]} == {"decoder"}


def test_codecs_that_cannot_stream_a_fixed_state_are_refused(tmp_path):
    with pytest.raises(ExportError, match="not causal"):
        export_streaming_step(build_codec("tiny-16k", ["encoder.causal=false"]).eval(), tmp_path / "x")
    config = load_yaml(resolve_config("tiny-16k", "codecs"))
    config["encoder"]["sequence_model"] = {"kind": "transformer", "num_layers": 1, "num_heads": 2, "context": 8}
    with pytest.raises(ExportError, match="offset.*not a tensor"):  # a KV cache that grows, with a position counter
        StreamingStep(build_codec(config).eval())
    assert not (tmp_path / "x").exists()


def test_an_existing_output_is_never_replaced(tiny_lstm_codec, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    victim = tmp_path / "victim.pt2"
    victim.write_text("keep")
    for path in (mine, victim):
        with pytest.raises(OutputError, match=f"{path}.*already exists"):
            export_streaming_step(tiny_lstm_codec, path, "export")
    assert (mine / "notes.txt").read_text() == "keep" and victim.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "victim.pt2"]  # no temporary left behind


def test_onnx_is_refused_with_its_reason(tiny_lstm_codec, tmp_path):
    import importlib.util

    if importlib.util.find_spec("onnxscript") is not None:
        pytest.skip("onnxscript is installed: the ONNX path is attempted, not refused")
    with pytest.raises(ExportError, match="onnxscript.*aten::complex"):
        export_streaming_step(tiny_lstm_codec, tmp_path / "x", "onnx")
    assert not (tmp_path / "x").exists()


def test_the_command_line_offers_the_exporters_formats_and_parts():
    assert EXPORT_FORMATS == ("checkpoint", *FORMATS) and STEP_PARTS == PARTS
