"""The phone-posterior teacher: learns phones whose true labels are known, saves, loads, and fits from the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from audiolatent.core.audio import save_audio
from audiolatent.core.errors import CheckpointError, ConfigError
from audiolatent.data.manifest import ManifestEntry, read_manifest, write_manifest
from audiolatent.tokenizers.phone_teacher import centred_phone_labels, fit_phone_teacher, load_phone_teacher


def _corpus(folder, n_files=8, seconds=1.2, seed=0):
    """Files of 'phones' a linear classifier could tell apart (a 300 Hz tone 'aa', white noise 's',
    a 1200 Hz tone 'iy', silence 'pau') in random order and lengths, with their exact alignment."""
    rng = np.random.default_rng(seed)
    entries = []
    for i in range(n_files):
        pieces, phones, t = [], [], 0.0
        while t < seconds:
            phone = ["aa", "s", "iy", "pau"][rng.integers(4)]
            length = float(rng.uniform(0.08, 0.25))
            n = int(length * 16000)
            time = np.arange(n) / 16000
            wave = {"aa": 0.3 * np.sin(2 * np.pi * 300 * time), "iy": 0.3 * np.sin(2 * np.pi * 1200 * time),
                    "s": 0.1 * rng.standard_normal(n), "pau": np.zeros(n)}[phone]
            pieces.append(wave)
            phones.append((phone, round(t, 6), round(t + n / 16000, 6)))
            t += n / 16000
        path = folder / f"f{i}.wav"
        save_audio(path, torch.tensor(np.concatenate(pieces), dtype=torch.float32)[None], 16000)
        entries.append(ManifestEntry(path=path, id=f"f{i}", duration=t, sample_rate=16000,
                                     split="test" if i >= n_files - 2 else "train", phones=phones))
    write_manifest(entries, folder / "manifest.jsonl")
    return read_manifest(folder / "manifest.jsonl")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phones")
    entries = _corpus(folder)
    torch.manual_seed(0)
    teacher, report = fit_phone_teacher([e for e in entries if e.split == "train"],
                                        [e for e in entries if e.split == "test"], steps=120, width=32,
                                        dilations=(1, 2), batch=8, window_frames=60, lr=5e-3)
    return folder, entries, teacher, report


def test_centred_labels():
    phones = [("pau", 0.0, 0.015), ("a", 0.015, 0.04)]
    # centres 0, 10, 20, 30, 40 ms; 40 ms is past the end
    assert centred_phone_labels(phones, 5, 100.0) == ["pau", "pau", "a", "a", None]


def test_it_learns_phones_it_can_hear(fitted):
    _, _, teacher, report = fitted
    assert teacher.phones == ["aa", "iy", "pau", "s"]
    assert report["n_phones"] == 4 and report["test_files"] == 2
    # frames at phone boundaries are ambiguous; the rest are easy
    assert report["test_frame_accuracy"] > 0.85 > report["majority_baseline"] + 0.3


def test_features_are_posteriors_at_100_hz(fitted):
    _, entries, teacher, _ = fitted
    from audiolatent.core.audio import load_audio

    audio, _ = load_audio(entries[-1].path, sample_rate=16000, mono=True)
    post = teacher.features(audio.reshape(1, 1, -1), 16000)
    assert post.shape == (1, 4, -(-audio.shape[-1] // 160))
    assert torch.allclose(post.sum(1), torch.ones(1, post.shape[-1]), atol=1e-5)
    labels = centred_phone_labels(entries[-1].phones, post.shape[-1], 100.0)
    predicted = [teacher.phones[i] for i in post[0].argmax(0).tolist()]
    agree = np.mean([p == t for p, t in zip(predicted, labels) if t is not None])
    assert agree > 0.8
    assert teacher.frame_centres(2).tolist() == [0.0, 0.01]


def test_save_and_load_round_trip(fitted, tmp_path):
    _, _, teacher, report = fitted
    teacher.save(tmp_path / "t", report)
    loaded = load_phone_teacher(tmp_path / "t")
    audio = 0.1 * torch.randn(1, 1, 3200)
    assert torch.equal(loaded.features(audio, 16000), teacher.features(audio, 16000))
    assert loaded.report["test_frame_accuracy"] == report["test_frame_accuracy"]
    assert load_phone_teacher(tmp_path / "t", output="hidden").features(audio, 16000).shape == (1, 32, 20)
    with pytest.raises(CheckpointError, match="already exists"):
        teacher.save(tmp_path / "t")
    with pytest.raises(CheckpointError, match="not a phone teacher"):
        load_phone_teacher(tmp_path)


def test_no_alignments_is_a_clear_error(fitted):
    _, entries, _, _ = fitted
    bare = [ManifestEntry(path=e.path, id=e.id, duration=e.duration, sample_rate=16000, split="train") for e in entries]
    with pytest.raises(ConfigError, match="phone alignments"):
        fit_phone_teacher(bare, [], steps=1)


def test_cli_fits_and_refuses_an_existing_folder(fitted, tmp_path, capsys):
    from audiolatent.cli.main import main

    folder = fitted[0]
    out = tmp_path / "teacher"
    args = ["fit", "phone-teacher", "--data", str(folder / "manifest.jsonl"), "--out", str(out), "--steps", "3",
            "--width", "16", "--no-progress"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] == 3 and report["data"] == [str(folder / "manifest.jsonl")]
    assert load_phone_teacher(out).phones == ["aa", "iy", "pau", "s"]
    assert main(args) == 1
    assert "already exists" in capsys.readouterr().err


@pytest.fixture(scope="module")
def causal_fitted(fitted):
    folder, entries, _, _ = fitted
    torch.manual_seed(0)
    teacher, report = fit_phone_teacher([e for e in entries if e.split == "train"],
                                        [e for e in entries if e.split == "test"], steps=120, width=32,
                                        dilations=(1, 2), batch=8, window_frames=60, lr=5e-3, causal=True)
    return teacher, report


def test_a_causal_teacher_learns_and_reads_no_sample_after_its_hop(causal_fitted):
    teacher, report = causal_fitted
    assert report["causal"] is True and teacher.causal
    # it cannot look ahead, so the first frames of each phone hear the previous one: below the
    # centred teacher, still far above the majority class
    assert report["test_frame_accuracy"] > 0.7 > report["majority_baseline"] + 0.3
    x = 0.1 * torch.randn(1, 1, 3200, generator=torch.Generator().manual_seed(3))
    y = x.clone()
    y[..., 1600:] = 0.1 * torch.randn(1, 1, 1600)  # change everything from sample 1600 on
    a, b = teacher.features(x, 16000), teacher.features(y, 16000)
    assert torch.equal(a[..., :10], b[..., :10])  # frames 0-9 end by sample 1600
    assert not torch.allclose(a[..., 10], b[..., 10])
    assert teacher.frame_centres(2).tolist() == [0.005, 0.015]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_causal_teacher_streams_exactly(causal_fitted, seed):
    from audiolatent.core.streaming import StreamingModule
    from audiolatent.testing import random_chunk_sizes, stream_chunks

    teacher, _ = causal_fitted

    class Wrapper(StreamingModule):  # a streaming parent, as a codec encoder is
        def __init__(self):
            super().__init__()
            self.teacher = teacher

        def forward(self, x):
            return self.teacher.features(x, 16000)

    wrapper = Wrapper()
    x = 0.1 * torch.randn(2, 1, 160 * 37, generator=torch.Generator().manual_seed(seed))
    offline = wrapper(x)
    sizes = random_chunk_sizes(x.shape[-1], 160, torch.Generator().manual_seed(seed), max_units=6)
    with wrapper.streaming(2):
        streamed = stream_chunks(wrapper, x, sizes)
    assert streamed.shape == offline.shape == (2, 4, 37)
    assert (streamed - offline).abs().max() <= 1e-5


def test_a_causal_teacher_saves_and_loads_causal(causal_fitted, tmp_path):
    teacher, report = causal_fitted
    teacher.save(tmp_path / "c", report)
    loaded = load_phone_teacher(tmp_path / "c", output="hidden")
    assert loaded.causal and json.loads((tmp_path / "c" / "teacher.json").read_text())["causal"] is True
    audio = 0.1 * torch.randn(1, 1, 3200)
    assert torch.equal(loaded.features(audio, 16000), teacher.hidden(teacher.log_mel(audio)))
