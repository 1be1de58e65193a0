"""A hostile user's inputs (issue 15): no command destroys data, none is silently wrong, none leaks a
traceback. Each numbered case of the issue has a test here (or, for training, in tests/train);
the last tests feed random bytes, truncated files and mutated latent headers to every reader.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import audiolatent as al
from audiolatent.cli.main import main
from audiolatent.core.checkpoint import latest_checkpoint
from audiolatent.core.errors import AudioLatentError, CheckpointError, ConfigError, LatentError
from audiolatent.train.checkpointing import prepare_run_folder
from audiolatent.train.config import load_train_config


def cli(capsys, *args) -> tuple[int, str]:
    """Run ``audiolatent ARGS`` in this process; (exit code, stderr). A traceback fails the test."""
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def wav(tmp_path) -> Path:
    t = np.arange(8000) / 16000
    path = tmp_path / "in.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, subtype="FLOAT")
    return path


# --- data loss / silently wrong -----------------------------------------------------------------
def test_1_export_never_replaces_a_users_folder_or_file(capsys, tmp_path):
    ckpt = al.load_tokenizer("mel-16k").save(tmp_path / "ckpt")
    mine = tmp_path / "o" / "mydir"
    mine.mkdir(parents=True)
    (mine / "keep.txt").write_text("precious")
    code, err = cli(capsys, "export", ckpt, mine)
    assert code == 1 and "refusing to replace" in err and (mine / "keep.txt").read_text() == "precious"
    victim = tmp_path / "victim.wav"
    victim.write_bytes(b"RIFF....WAVE")
    code, err = cli(capsys, "export", ckpt, victim)
    assert code == 1 and "not a directory" in err and victim.read_bytes() == b"RIFF....WAVE"
    assert cli(capsys, "export", ckpt, tmp_path / "out")[0] == 0
    assert cli(capsys, "export", ckpt, tmp_path / "out")[0] == 0  # a checkpoint may be replaced by a checkpoint
    with pytest.raises(AudioLatentError, match="refusing to replace"):
        al.load_tokenizer("mel-16k").save(mine)  # the API's save follows the same rule


def test_1_a_streaming_export_never_replaces_anything_and_says_what_it_cannot_do(capsys, tmp_path):
    mine = tmp_path / "mydir"
    mine.mkdir()
    (mine / "keep.txt").write_text("precious")
    code, err = cli(capsys, "export", "codec-16k-default", mine, "--format", "export")
    assert code == 1 and f"{mine} already exists" in err and (mine / "keep.txt").read_text() == "precious"
    code, err = cli(capsys, "export", "codec-16k-default", tmp_path / "a", "--format", "onnx")
    assert code == 1 and ("onnxscript" in err or "ONNX export" in err) and not (tmp_path / "a").exists()
    code, err = cli(capsys, "export", "codec-16k-default", tmp_path / "b", "--format", "export", "--weights", "int8")
    assert code == 1 and "--weights" in err
    code, err = cli(capsys, "export", "codec-16k-default", tmp_path / "c", "--chunk-frames", "2")
    assert code == 1 and "--format export|torchscript|onnx" in err
    code, err = cli(capsys, "export", "mel-16k", tmp_path / "d", "--format", "torchscript")
    assert code == 1 and "only neural codecs" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydir"]


def test_2_an_output_that_is_the_input_is_refused(capsys, tmp_path, wav):
    before = digest(wav)
    code, err = cli(capsys, "encode", "-t", "mel-16k", wav, wav)
    assert code == 1 and "is the input file" in err
    link = tmp_path / "link.latent"
    link.symlink_to(wav)
    assert cli(capsys, "encode", "-t", "mel-16k", wav, link)[0] == 1
    assert digest(wav) == before
    assert cli(capsys, "encode", "-t", "mel-16k", wav, tmp_path / "x.latent")[0] == 0
    latent_digest = digest(tmp_path / "x.latent")
    code, err = cli(capsys, "decode", tmp_path / "x.latent", tmp_path / "x.latent")
    assert code == 1 and "is the input file" in err and digest(tmp_path / "x.latent") == latent_digest


def _campaign():
    """``scripts/bad_input_campaign.py`` as a module (its header-editing helper is shared with these tests)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "bad_input_campaign.py"
    spec = importlib.util.spec_from_file_location("bad_input_campaign", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _relabel(path: Path, out: Path, edit) -> Path:
    """Copy a latent file with its JSON header and tensors changed by ``edit(header, tensors)``."""
    return _campaign().relabel(path, out, edit)


def test_3_decode_checks_codes_against_the_tokenizers_own_codebooks(capsys, tmp_path, wav):
    assert cli(capsys, "encode", "-t", "codec-16k-default", wav, tmp_path / "c.latent")[0] == 0

    def claim_1024(header, tensors):
        header["streams"][0]["codebook_sizes"] = [1024] * 4
        tensors["stream0.values"][0, 1, 3] = 900
    _relabel(tmp_path / "c.latent", tmp_path / "forged.latent", claim_1024)
    code, err = cli(capsys, "decode", tmp_path / "forged.latent", tmp_path / "out.wav")
    assert code == 1 and "4 x 1024" in err and "4 x 256" in err and not (tmp_path / "out.wav").exists()
    tok = al.load_tokenizer("codec-16k-default")
    with pytest.raises(LatentError):
        tok.decode(al.Latent.load(tmp_path / "forged.latent"))
    continuous = al.Latent([al.Stream(torch.zeros(1, 4, 5), 50.0, None, "codes")], 16000)  # no config hash to catch it
    with pytest.raises(LatentError, match="is continuous, this tokenizer's is discrete"):
        tok.decode(continuous)


def test_4_bench_refuses_an_unknown_metric(capsys, tmp_path):
    code, err = cli(capsys, "bench", "-t", "mel-16k", "--metrics", "nosuch", "--out", tmp_path / "b", "--no-progress")
    assert code == 1 and "unknown metric" in err and "'nosuch'" in err and "mel_distance" in err
    assert not (tmp_path / "b").exists()


def test_5_absurd_amplitudes_are_refused_and_clipping_is_a_warning(capsys, tmp_path, wav):
    data, sr = sf.read(wav, dtype="float32")
    sf.write(tmp_path / "huge.wav", data * 1e30, sr, subtype="FLOAT")
    code, err = cli(capsys, "encode", "-t", "mel-16k", tmp_path / "huge.wav", tmp_path / "h.latent")
    assert code == 1 and "far outside full scale" in err and not (tmp_path / "h.latent").exists()
    sf.write(tmp_path / "loud.wav", data * 50, sr, subtype="FLOAT")
    with pytest.warns(UserWarning, match="above full scale"):
        al.load_audio(tmp_path / "loud.wav")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli(capsys, "encode", "-t", "mel-16k", tmp_path / "loud.wav", tmp_path / "l.latent")[0] == 0
    with pytest.raises(al.AudioError, match="int16 scale"):
        al.load_tokenizer("mel-16k").encode(torch.full((1, 1, 1600), 32767.0))


def test_6_and_17_config_values_that_silently_disable_or_crash_are_refused():
    for override, match in (("checkpoint_every=-3", "checkpoint_every must be >= 0"), ("eval_every=-1", "eval_every"),
                            ("optim.lr=.nan", "finite"), ("optim.lr=.inf", "finite"), ("data.gain_db=[-6, .nan]", "finite")):
        with pytest.raises(ConfigError, match=match):
            load_train_config("default-16k", [override])
    from audiolatent.train.lm_config import load_lm_config

    with pytest.raises(ConfigError, match="checkpoint_every"):
        load_lm_config("token-small", ["checkpoint_every=-3"])
    assert load_train_config("default-16k", ["checkpoint_every=0"]).checkpoint_every == 0  # 0 still disables


def test_8_negative_num_samples_and_lengths_are_corrupt(tmp_path):
    tok = al.load_tokenizer("mel-16k")
    tok.encode(torch.zeros(1, 1, 1600)).save(tmp_path / "a.latent")

    def negative(header, tensors):
        tensors["num_samples"] = torch.tensor([-5])
    _relabel(tmp_path / "a.latent", tmp_path / "neg.latent", negative)
    with pytest.raises(LatentError, match="negative num_samples"):
        al.Latent.load(tmp_path / "neg.latent")

    def long_lengths(header, tensors):
        tensors["stream0.lengths"] = torch.tensor([999])
    _relabel(tmp_path / "a.latent", tmp_path / "len.latent", long_lengths)
    with pytest.raises(LatentError, match="lengths"):
        al.Latent.load(tmp_path / "len.latent")


def test_9_a_truncated_wav_is_reported(tmp_path, wav):
    blob = wav.read_bytes()
    (tmp_path / "half.wav").write_bytes(blob[: len(blob) // 2])
    with pytest.warns(UserWarning, match="declares 8000 samples but the file holds"):
        audio, _ = al.load_audio(tmp_path / "half.wav")
    assert 0 < audio.shape[-1] < 8000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        al.load_audio(wav)  # a whole file: no warning


def test_10_stale_temp_entries_of_a_run_are_cleaned(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / ".step_000004.tmp.ab12").mkdir(parents=True)
    (run / ".latest.tmp.zz").write_text("step_000004")
    (run / "notes.txt").write_text("mine")
    removed = prepare_run_folder(run, resume=True)
    assert {p.name for p in removed} == {".step_000004.tmp.ab12", ".latest.tmp.zz"}
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "notes.txt"]


def test_train_out_that_is_a_file_or_an_existing_run_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(AudioLatentError, match="is a file"):
        prepare_run_folder(tmp_path / "file", resume=False)
    run = tmp_path / "run"
    (run / "checkpoints" / "step_000040").mkdir(parents=True)
    (run / "latest").write_text("step_000040\n")
    with pytest.raises(AudioLatentError, match="already holds a training run.*--resume"):
        prepare_run_folder(run, resume=False)
    assert prepare_run_folder(run, resume=True) == []


# --- tracebacks instead of one line -------------------------------------------------------------
def test_12_output_side_errors_are_one_line(capsys, tmp_path, wav):
    (tmp_path / "adir.latent").mkdir()
    code, err = cli(capsys, "encode", "-t", "mel-16k", wav, tmp_path / "adir.latent")
    assert code == 1 and "is a directory" in err
    assert cli(capsys, "encode", "-t", "mel-16k", wav, tmp_path / "x.latent")[0] == 0
    (tmp_path / "adir.wav").mkdir()
    code, err = cli(capsys, "decode", tmp_path / "x.latent", tmp_path / "adir.wav")
    assert code == 1 and "is a directory" in err


def test_12_disk_full_is_named(tmp_path, monkeypatch):
    import audiolatent.core.latent as latent_module

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(latent_module, "save_file", full)
    with pytest.raises(AudioLatentError, match=r"cannot write .*x.latent: no space left on device"):
        al.load_tokenizer("mel-16k").encode(torch.zeros(1, 1, 1600)).save(tmp_path / "x.latent")
    assert list(tmp_path.iterdir()) == []


def test_12_a_read_only_filesystem_is_named(tmp_path, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    with pytest.raises(AudioLatentError, match=r"cannot write .*x.wav: read-only file system"):
        al.save_audio(tmp_path / "x.wav", torch.zeros(1, 100), 16000)
    with pytest.raises(AudioLatentError, match=r"cannot write .*ckpt: read-only file system"):
        al.load_tokenizer("mel-16k").save(tmp_path / "ckpt")


def test_generate_refuses_to_overwrite_its_prompt(capsys, tmp_path, wav):
    before = digest(wav)
    code, err = cli(capsys, "generate", "--lm", tmp_path / "nolm", "--prompt", wav, "--seconds", "1", wav)
    assert code == 1 and "is the input file" in err and digest(wav) == before


@pytest.mark.parametrize("field, value", [("format_version", "1"), ("sample_rate", None), ("sample_rate", -16000),
                                          ("streams", "x"), ("streams", []), ("tokenizer", 5), ("meta", [1])])
def test_13_hand_edited_headers_are_a_clear_error(tmp_path, field, value):
    al.load_tokenizer("mel-16k").encode(torch.zeros(1, 1, 1600)).save(tmp_path / "a.latent")
    _relabel(tmp_path / "a.latent", tmp_path / "b.latent", lambda h, t: h.__setitem__(field, value))
    with pytest.raises(LatentError, match=field):
        al.Latent.load(tmp_path / "b.latent")


@pytest.mark.parametrize("key, value", [("frame_rate", "fast"), ("frame_rate", -1), ("codebook_sizes", [1]),
                                        ("codebook_sizes", "many"), ("name", None)])
def test_13_hand_edited_stream_headers_are_a_clear_error(tmp_path, key, value):
    al.load_tokenizer("dmel-16k").encode(torch.zeros(1, 1, 1600)).save(tmp_path / "a.latent")
    _relabel(tmp_path / "a.latent", tmp_path / "b.latent", lambda h, t: h["streams"][0].__setitem__(key, value))
    with pytest.raises(LatentError, match=key):
        al.Latent.load(tmp_path / "b.latent")


def test_14_a_non_utf8_latest_pointer_is_one_line(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "latest").write_bytes(b"\xff\xfe\x00step")
    with pytest.raises(CheckpointError, match="unreadable pointer"):
        latest_checkpoint(run)
    with pytest.raises(CheckpointError):
        al.load_tokenizer(run)
    code, err = cli(capsys, "info", run)
    assert code == 1 and "unreadable pointer" in err


def test_15_latents_the_model_cannot_take(tmp_path):
    tok = al.load_tokenizer("codec-16k-default")
    empty = al.Latent([al.Stream(torch.zeros(1, 4, 0, dtype=torch.long), 50.0, (256,) * 4, "codes")], 16000)
    with pytest.raises(LatentError, match="0 frames"):
        tok.decode(empty)
    beyond = al.Latent([al.Stream(torch.full((1, 4, 3), 255, dtype=torch.long), 50.0, (256,) * 4, "codes")], 16000)
    assert tok.decode(beyond).shape[-1] == 3 * 320  # the last code of every codebook is fine
    five = al.Latent([al.Stream(torch.zeros(1, 5, 3, dtype=torch.long), 50.0, (256,) * 5, "codes")], 16000)
    with pytest.raises(LatentError, match="5 x 256"):
        tok.decode(five)


@pytest.mark.parametrize("device, message", [("banana", "unknown device"), ("cuda", "CUDA is not available"),
                                             ("cuda:7", "CUDA is not available"), ("meta", "not supported")])
def test_16_devices_are_checked_up_front(capsys, tmp_path, wav, device, message):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, err = cli(capsys, "encode", "-t", "mel-16k", "--device", device, wav, tmp_path / "x.latent")
    assert code == 1 and message in err and not (tmp_path / "x.latent").exists()
    with pytest.raises(AudioLatentError, match=message):
        al.load_tokenizer("mel-16k", device=device)


# --- property-style: random bytes, truncations, mutated headers ----------------------------------
def _mutations(rng: random.Random, blob: bytes):
    yield rng.randbytes(rng.randint(0, 2048))
    for _ in range(6):
        yield blob[: rng.randint(0, len(blob) - 1)]
    for _ in range(6):
        b = bytearray(blob)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        yield bytes(b)


def test_readers_give_one_line_errors_or_valid_results_on_random_damage(tmp_path, wav):
    rng = random.Random(0)
    tok = al.load_tokenizer("dmel-16k")
    tok.encode(al.load_audio(wav)[0]).save(tmp_path / "good.latent")
    sources = {"latent": (tmp_path / "good.latent").read_bytes(), "wav": wav.read_bytes()}
    flac = tmp_path / "in.flac"
    sf.write(flac, sf.read(wav)[0], 16000)
    sources["flac"] = flac.read_bytes()
    outcomes = {"error": 0, "valid": 0}
    for kind, blob in sources.items():
        for i, damaged in enumerate(_mutations(rng, blob)):
            path = tmp_path / f"d{i}.{kind}"
            path.write_bytes(damaged)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if kind == "latent":
                        audio = tok.decode(al.Latent.load(path))
                    else:
                        audio = tok.decode(tok.encode(al.load_audio(path, sample_rate=16000, mono=True)[0]))
                assert torch.isfinite(audio).all()
                outcomes["valid"] += 1
            except AudioLatentError as exc:
                assert "\n" not in str(exc).strip()
                outcomes["error"] += 1
            assert path.read_bytes() == damaged  # the input is never changed
    assert outcomes["error"] >= 20  # most damage is caught (flipped sample bytes can stay valid audio)


def test_mutated_latent_headers_never_escape_as_a_traceback(tmp_path):
    rng = random.Random(1)
    tok = al.load_tokenizer("dmel-16k")
    tok.encode(torch.zeros(1, 1, 1600)).save(tmp_path / "a.latent")
    values = [None, -1, 0, 1.5, "x", [], {}, [1, 2], True, 10**12, float("nan")]

    def mutate(header, tensors):
        node, key = header, None
        path = rng.choice([["format_version"], ["sample_rate"], ["streams"], ["streams", 0, "frame_rate"],
                           ["streams", 0, "codebook_sizes"], ["streams", 0, "name"], ["tokenizer"], ["config_hash"]])
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = rng.choice(values)
    for i in range(40):
        out = _relabel(tmp_path / "a.latent", tmp_path / f"m{i}.latent", mutate)
        try:
            tok.decode(al.Latent.load(out))
        except AudioLatentError:
            pass


def test_load_tokenizer_on_damaged_checkpoints(tmp_path):
    ckpt = al.load_tokenizer("codec-16k-default").save(tmp_path / "ckpt")
    rng = random.Random(2)
    for name in ("config.yaml", "model.safetensors"):
        blob = (ckpt / name).read_bytes()
        for i, damaged in enumerate(_mutations(rng, blob)):
            (ckpt / name).write_bytes(damaged)
            try:
                al.load_tokenizer(ckpt)
            except AudioLatentError as exc:
                assert "\n" not in str(exc).strip()
        (ckpt / name).write_bytes(blob)
    assert al.load_tokenizer(ckpt) is not None


def test_the_campaign_script_finds_no_traceback_and_nothing_silently_wrong():
    """``scripts/bad_input_campaign.py``: 65 hostile command lines, each a clear error or a valid result."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(repo / "scripts" / "bad_input_campaign.py")], capture_output=True, text=True,
                          timeout=600)
    summary = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "0 traceback, 0 silently wrong" in summary
