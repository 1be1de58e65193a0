"""Manifest reading/writing and the split rule (audiolatent/data/manifest.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiolatent.data import DataError, ManifestEntry, read_manifest, split_of, write_manifest


def _wav(path: Path, seconds: float = 0.25, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(seconds * rate), np.float32), rate, subtype="PCM_16")
    return path


def _manifest(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_good_rows(tmp_path):
    _wav(tmp_path / "audio" / "a.wav", 0.5)
    _wav(tmp_path / "audio" / "b.wav", 0.25, rate=8000)
    rows = [
        {"path": "audio/a.wav", "id": "a", "text": "hello", "duration": 0.5, "sample_rate": 16000, "split": "test",
         "voice": "slt", "phones": [["pau", 0.0, 0.1], ["hh", 0.1, 0.5]]},
        {"path": "audio/b.wav"},  # duration, rate, id, split filled in
    ]
    manifest = _manifest(tmp_path / "m.jsonl", [json.dumps(rows[0]), "", json.dumps(rows[1])])
    a, b = read_manifest(manifest)
    assert a.path == (tmp_path / "audio" / "a.wav").resolve() and a.path.is_absolute()
    assert (a.id, a.text, a.split, a.duration, a.sample_rate) == ("a", "hello", "test", 0.5, 16000)
    assert a.phones == [("pau", 0.0, 0.1), ("hh", 0.1, 0.5)]
    assert a.extra == {"voice": "slt"}
    assert (b.id, b.sample_rate, b.duration, b.split, b.text, b.phones) == ("audio/b", 8000, 0.25, split_of("b"), None, None)
    assert b.num_samples == 2000


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"path": "a.wav", ', "invalid JSON"),
        ('{"id": "x"}', "missing 'path'"),
        ('["a.wav"]', "expected a JSON object"),
        ('{"path": "nope.wav"}', "audio file not found"),
        ('{"path": "a.wav", "duration": -1, "sample_rate": 16000}', "'duration'"),
        ('{"path": "a.wav", "phones": [["p", 0.2, 0.1]]}', "phones[0]"),
        ('{"path": "a.wav", "id": "a"}', "duplicate id 'a' (first on line 1)"),
    ],
)
def test_bad_row_names_file_and_line(tmp_path, bad_line, message):
    _wav(tmp_path / "a.wav")
    manifest = _manifest(tmp_path / "m.jsonl", ['{"path": "a.wav", "id": "a"}', "", bad_line])
    with pytest.raises(DataError) as info:
        read_manifest(manifest)
    text = str(info.value)
    assert f"{manifest}:3:" in text and message in text and "\n" not in text


def test_missing_or_empty_manifest(tmp_path):
    with pytest.raises(DataError, match="no such manifest"):
        read_manifest(tmp_path / "none.jsonl")
    with pytest.raises(DataError, match="no entries"):
        read_manifest(_manifest(tmp_path / "empty.jsonl", [""]))


def test_write_manifest_round_trip(tmp_path):
    _wav(tmp_path / "audio" / "x.wav")
    entry = ManifestEntry(path=(tmp_path / "audio" / "x.wav").resolve(), duration=0.25, sample_rate=16000, split="train",
                          id="x", text="ex", phones=[("pau", 0.0, 0.25)], extra={"author": "me"})
    out = write_manifest([entry], tmp_path / "sub" / ".." / "out.jsonl")
    row = json.loads(out.read_text(encoding="utf-8"))
    assert row["path"] == "audio/x.wav" and row["author"] == "me"
    assert read_manifest(out) == [entry]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def _readme_rule(name: str) -> str:
    return "test" if int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16) % 10 == 0 else "train"


def test_split_of_follows_the_readme_rule():
    # Facts from the shared data README/manifests: "added" is test, "digits__4" is train,
    # moh track "macroform-robot_dity" is test, "macroform-cold_day" train.
    assert split_of("added") == "test"
    assert split_of("digits__4") == "train"
    assert split_of("macroform-robot_dity") == "test"
    assert split_of("macroform-cold_day") == "train"
    names = [f"name_{i}" for i in range(2000)] + ["bd_boom", "ünïcode"]
    assert all(split_of(n) == _readme_rule(n) for n in names)
    assert 0.07 < sum(split_of(n) == "test" for n in names) / len(names) < 0.13


def _split_name(corpus: str, row: dict) -> str:
    if "id" in row:
        return row["id"]
    stem = Path(row["path"]).stem
    return stem.rsplit("__", 1)[0] if row["path"].startswith("moh/") else stem


@pytest.mark.parametrize("corpus", ["speech_real", "speech_aligned", "music"])
def test_split_of_agrees_with_shared_manifests(shared_data, corpus):
    manifest = shared_data / corpus / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert rows
    for row in rows:
        assert split_of(_split_name(corpus, row)) == row["split"], row["path"]
    entries = read_manifest(manifest)
    assert [e.split for e in entries] == [r["split"] for r in rows]
