"""The built-in corpus shipped in the package (audiolatent/data/corpus.py, audiolatent/corpus/)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from audiolatent.data import AudioDataset, DataError, builtin_corpus, corpus_root, read_manifest

REPO = Path(__file__).resolve().parents[2]
NAMES = ("speech_real", "speech_aligned", "music")


def test_builtin_corpus_names():
    paths = builtin_corpus()
    assert set(paths) == set(NAMES)
    for name in NAMES:
        assert builtin_corpus(name) == paths[name] and paths[name].is_file()
        assert paths[name].parent.parent == corpus_root()
    with pytest.raises(DataError, match="unknown built-in corpus 'speech'"):
        builtin_corpus("speech")


@pytest.mark.parametrize("name", NAMES)
def test_manifests_and_files(name):
    entries = read_manifest(builtin_corpus(name))  # raises if any file is missing
    assert {e.split for e in entries} == {"train", "test"}
    for e in entries:
        info = sf.info(str(e.path))
        assert (info.format, info.subtype, info.channels) == ("FLAC", "PCM_16", 1), e.path
        assert info.samplerate == e.sample_rate and info.frames == e.num_samples, e.path
        if name.startswith("speech"):
            assert e.text
    files = {p for p in (corpus_root() / name).rglob("*.flac")}
    assert files == {e.path for e in entries}  # nothing unreferenced ships


def test_size_and_test_split_budget():
    total = sum(p.stat().st_size for p in corpus_root().rglob("*") if p.is_file())
    assert total <= 50e6  # scripts/make_builtin_corpus.py MAX_TOTAL_BYTES
    # the modelability probes train on every speech_real train file (issue 13: figures that hold at half the data)
    train_seconds = sum(e.duration for e in read_manifest(builtin_corpus("speech_real")) if e.split == "train")
    assert train_seconds >= 20 * 60
    test_seconds = sum(e.duration for n in NAMES for e in read_manifest(builtin_corpus(n)) if e.split == "test")
    assert test_seconds <= 4 * 60
    readme = (corpus_root() / "README.md").read_text(encoding="utf-8")
    assert "Allison Smith" in readme and "CC-BY-SA-3.0" in readme and "CC0" in readme
    assert (corpus_root() / "licences" / "flite.copyright").is_file()


def test_phone_alignments():
    entries = read_manifest(builtin_corpus("speech_aligned"))
    assert {e.extra["voice"] for e in entries if e.split == "test"} == {"kal16", "slt", "rms", "awb"}
    for e in entries:
        assert e.phones, e.id
        assert e.phones[0][0] == "pau" and e.phones[0][1] == 0.0
        assert e.phones[-1][2] == pytest.approx(e.duration, abs=1e-3)
        assert all(a[2] == pytest.approx(b[1]) for a, b in zip(e.phones, e.phones[1:])), e.id


def test_dataset_on_builtin_music_resamples():
    ds = AudioDataset(builtin_corpus("music"), split="test", sample_rate=16000, crop_seconds=1.0, max_files=3)
    assert all(ds[i]["audio"].shape == (1, 16000) for i in range(len(ds)))


def test_all_shared_test_files_are_included(shared_data):
    for name in ("speech_real", "speech_aligned"):
        rows = [json.loads(line) for line in (shared_data / name / "manifest.jsonl").read_text().splitlines() if line]
        ours = {e.id for e in read_manifest(builtin_corpus(name)) if e.split == "test"}
        assert ours == {r["id"] for r in rows if r["split"] == "test"}


def _tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_build_script_reproduces_the_shipped_corpus(shared_data, tmp_path):
    out = tmp_path / "corpus"
    cmd = [sys.executable, str(REPO / "scripts" / "make_builtin_corpus.py"), "--shared", str(shared_data), "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    assert _tree_digest(out) == _tree_digest(corpus_root())
