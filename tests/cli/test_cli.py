"""The CLI as a user runs it: subprocesses, exit codes, one-line errors."""

import json
import subprocess
import sys

import pytest
import torch

from audiolatent import Latent, load_audio, save_audio


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "audiolatent", *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


@pytest.fixture
def speech_file(tmp_path):
    t = torch.arange(32000) / 16000
    x = 0.3 * torch.sin(2 * torch.pi * (200 + 300 * t) * t) * (1 + torch.sin(2 * torch.pi * 3 * t)) / 2
    return save_audio(tmp_path / "in.wav", x[None], 16000)


def test_list_shows_builtins():
    out = run("list").stdout
    assert "mel-16k" in out and "dmel-16k" in out and "mel-24k" in out


def test_info_json():
    info = json.loads(run("info", "dmel-16k", "--json").stdout)
    assert info["sample_rate"] == 16000 and info["frame_rate"] == 100
    assert info["nominal_bits_per_second"] == 32000
    assert info["causal"] is False and info["lookahead_samples"] is None


def test_info_table():
    out = run("info", "mel-16k").stdout
    assert "frame_rate" in out and "80 continuous dims @ 100 Hz" in out


def test_encode_decode_round_trip(tmp_path, speech_file):
    run("encode", "-t", "dmel-16k", speech_file, tmp_path / "x.latent")
    latent = Latent.load(tmp_path / "x.latent")
    assert latent.tokenizer == "dmel-16k" and latent.codes.shape == (1, 80, 200)
    run("decode", tmp_path / "x.latent", tmp_path / "out.flac")
    audio, sr = load_audio(tmp_path / "out.flac")
    assert sr == 16000 and audio.shape == (1, 1, 32000)


def test_encode_resamples_and_refuses_stereo(tmp_path):
    save_audio(tmp_path / "st.wav", torch.zeros(2, 44100), 44100)
    proc = run("encode", "-t", "mel-16k", tmp_path / "st.wav", tmp_path / "x.latent", check=False)
    assert proc.returncode == 1 and "--downmix" in proc.stderr and "Traceback" not in proc.stderr
    run("encode", "-t", "mel-16k", "--downmix", tmp_path / "st.wav", tmp_path / "x.latent")
    assert Latent.load(tmp_path / "x.latent").streams[0].values.shape == (1, 80, 100)


@pytest.mark.parametrize(
    "args,message",
    [
        (("info", "no-such-tokenizer"), "unknown tokenizer 'no-such-tokenizer'"),
        (("encode", "-t", "dmel-16k", "/nonexistent.wav", "/tmp/x.latent"), "no such file"),
        (("decode", "/nonexistent.latent", "/tmp/x.wav"), "no such latent file"),
    ],
)
def test_errors_are_one_line(args, message):
    proc = run(*args, check=False)
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_decode_with_wrong_tokenizer(tmp_path, speech_file):
    run("encode", "-t", "dmel-16k", speech_file, tmp_path / "x.latent")
    proc = run("decode", "-t", "mel-16k", tmp_path / "x.latent", tmp_path / "o.wav", check=False)
    assert proc.returncode == 1 and "another config" in proc.stderr
    assert not (tmp_path / "o.wav").exists()


def test_export_writes_a_streaming_step_that_runs(tmp_path):
    out = tmp_path / "step"
    proc = run("export", "codec-16k-default", out, "--format", "torchscript", "--chunk-frames", "2")
    assert "streaming step of codec-16k-default (torchscript), 2 frame(s) = 40 ms per call" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "initial_state.safetensors", "step.torchscript.pt"]
    from audiolatent.tokenizers.export import load_exported_step

    step = load_exported_step(out)
    assert step.manifest["codec"]["name"] == "codec-16k-default" and step.manifest["chunk_samples"] == 640
    codes, audio, *state = step(torch.zeros(1, 1, 640), *step.initial_state())
    assert codes.shape == (1, 4, 2) and audio.shape == (1, 1, 640) and len(state) == len(step.manifest["state"])
    again = run("export", "codec-16k-default", out, "--format", "export", check=False)
    assert again.returncode == 1 and f"{out} already exists" in again.stderr and "Traceback" not in again.stderr
    assert (out / "step.torchscript.pt").is_file() and not (out / "step.pt2").exists()


def test_debug_shows_traceback():
    proc = run("--debug", "info", "no-such-tokenizer", check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_usage_error_exit_2():
    assert run("encode", check=False).returncode == 2


def test_help_everywhere():
    for cmd in ("list", "info", "encode", "decode", "roundtrip"):
        assert "usage:" in run(cmd, "--help").stdout
