"""`prepare` on fake LibriSpeech, LibriTTS, VCTK, musdb18hq and plain-folder trees (tiny 16 kHz files)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audiolatent.core.errors import OutputError
from audiolatent.data import AudioDataset, DataError, collate_audio, read_manifest, split_of
from audiolatent.data.prepare import LAYOUTS, prepare, scan_layout, summary

RATE = 16000


def _audio(path, seconds=0.2, rate=RATE):
    """A short sine at ``path`` (format from the suffix); returns its exact duration in seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(seconds * rate)
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / rate).astype(np.float32), rate)
    return n / rate


def _rows(manifest):
    return {row["id"]: row for row in map(json.loads, manifest.read_text().splitlines())}


def _librispeech(root):
    chapter = root / "train-clean-100" / "103" / "1240"
    _audio(chapter / "103-1240-0000.flac", 0.1)
    _audio(chapter / "103-1240-0001.flac", 0.3)
    (chapter / "103-1240.trans.txt").write_text("103-1240-0000 CHAPTER ONE\n103-1240-0001 MISSUS RACHEL LYNDE\n")
    _audio(root / "dev-clean" / "84" / "121123" / "84-121123-0000.flac", 0.2)
    (root / "dev-clean" / "84" / "121123" / "84-121123.trans.txt").write_text("84-121123-0000 GO DO YOU HEAR\n")
    _audio(root / "test-clean" / "61" / "70968" / "61-70968-0000.flac", 0.25)
    (root / "test-clean" / "61" / "70968" / "61-70968.trans.txt").write_text("61-70968-0000 HE BEGAN A CONFUSED COMPLAINT\n")
    return root


def test_librispeech_splits_texts_speakers_and_relative_paths(tmp_path):
    manifest = prepare("librispeech", _librispeech(tmp_path / "LibriSpeech"))
    assert manifest == tmp_path / "LibriSpeech" / "manifest.jsonl"
    rows = _rows(manifest)
    assert {i: r["split"] for i, r in rows.items()} == {
        "103-1240-0000": "train", "103-1240-0001": "train", "84-121123-0000": "dev", "61-70968-0000": "test"}
    first = rows["103-1240-0000"]
    assert first["path"] == "train-clean-100/103/1240/103-1240-0000.flac"
    assert first["text"] == "CHAPTER ONE" and first["voice"] == "103" and first["subset"] == "train-clean-100"
    assert first["duration"] == pytest.approx(0.1) and first["sample_rate"] == RATE
    assert rows["103-1240-0001"]["duration"] == pytest.approx(0.3)
    assert rows["61-70968-0000"]["text"] == "HE BEGAN A CONFUSED COMPLAINT"


def test_the_manifest_feeds_read_manifest_the_training_dataset_and_the_bench(tmp_path):
    from audiolatent.bench.runner import load_bench_data

    manifest = prepare("librispeech", _librispeech(tmp_path / "ls"), tmp_path / "elsewhere" / "ls.jsonl")
    entries = read_manifest(manifest)  # paths relative to another folder still resolve
    assert json.loads(manifest.read_text().splitlines()[0])["path"].startswith("../ls/")
    assert all(e.path.is_file() for e in entries)
    ds = AudioDataset(manifest, split="train", sample_rate=RATE, crop_seconds=0.15, seed=0)
    batch = collate_audio([ds[0], ds[1]])
    assert len(ds) == 2 and batch["audio"].shape == (2, 1, 2400)
    data = load_bench_data(manifest)["ls"]
    assert data["speech"] and [e.id for e in data["scored"]] == ["61-70968-0000"]
    assert {e.id for e in data["splits"]["train"]} == {"103-1240-0000", "103-1240-0001"}


def test_librispeech_errors_say_what_was_expected(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        prepare("librispeech", tmp_path / "nowhere")
    (tmp_path / "empty" / "train-clean-100").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no SUBSET/SPEAKER/CHAPTER/\*\.flac under this folder.*train-\*"):
        prepare("librispeech", tmp_path / "empty")
    root = _librispeech(tmp_path / "ls")
    with open(root / "train-clean-100" / "103" / "1240" / "103-1240.trans.txt", "a") as f:
        f.write("103-1240-0002 A LINE WITH NO AUDIO\n")
    with pytest.raises(DataError, match=r"trans\.txt:3: transcript of '103-1240-0002' but no 103-1240-0002\.flac"):
        prepare("librispeech", root)
    assert not (root / "manifest.jsonl").exists()
    with pytest.raises(DataError, match="unknown layout"):
        prepare("timit", root)


def test_a_subset_folder_alone_is_a_root(tmp_path):
    root = _librispeech(tmp_path / "ls")
    rows = _rows(prepare("librispeech", root / "test-clean"))
    assert list(rows) == ["61-70968-0000"] and rows["61-70968-0000"]["path"] == "61/70968/61-70968-0000.flac"


def test_libritts_prefers_normalized_text(tmp_path):
    chapter = tmp_path / "LibriTTS" / "train-clean-100" / "19" / "198"
    _audio(chapter / "19_198_000000_000000.wav", 0.2)
    (chapter / "19_198_000000_000000.normalized.txt").write_text("Northanger Abbey, chapter one.")
    (chapter / "19_198_000000_000000.original.txt").write_text("NORTHANGER ABBEY CHAPTER 1")
    _audio(chapter / "19_198_000000_000001.wav", 0.1)
    (chapter / "19_198_000000_000001.original.txt").write_text("Only the original.\n")
    test_chapter = tmp_path / "LibriTTS" / "test-other" / "367" / "130732"
    _audio(test_chapter / "367_130732_000000_000000.wav", 0.3)
    rows = _rows(prepare("libritts", tmp_path / "LibriTTS"))
    assert rows["19_198_000000_000000"]["text"] == "Northanger Abbey, chapter one."
    assert rows["19_198_000000_000001"]["text"] == "Only the original."
    assert "text" not in rows["367_130732_000000_000000"]  # no transcript: no text key
    assert {r["split"] for r in rows.values()} == {"train", "test"}
    assert rows["367_130732_000000_000000"]["voice"] == "367"
    assert rows["19_198_000000_000000"]["path"] == "train-clean-100/19/198/19_198_000000_000000.wav"

    (chapter / "19_198_000000_000009.normalized.txt").write_text("No wav for me.")
    with pytest.raises(DataError, match=r"19_198_000000_000009\.normalized\.txt: transcript with no 19_198_000000_000009\.wav"):
        prepare("libritts", tmp_path / "LibriTTS", force=True)
    with pytest.raises(DataError, match=r"no SUBSET/SPEAKER/CHAPTER/\*\.wav"):
        prepare("libritts", chapter)


def test_vctk_holds_out_whole_speakers(tmp_path):
    root = tmp_path / "VCTK-Corpus-0.92"
    speakers = ("p225", "p226", "p240")  # split_of: p240 is test, the others train
    assert [split_of(s) for s in speakers] == ["train", "train", "test"]
    for speaker in speakers:
        for utt in ("001", "002"):
            _audio(root / "wav48_silence_trimmed" / speaker / f"{speaker}_{utt}_mic1.flac", 0.1)
            _audio(root / "wav48_silence_trimmed" / speaker / f"{speaker}_{utt}_mic2.flac", 0.1)
            if speaker != "p226":  # a speaker without texts (as p315 in the real corpus)
                (root / "txt" / speaker).mkdir(parents=True, exist_ok=True)
                (root / "txt" / speaker / f"{speaker}_{utt}.txt").write_text(f"Please call Stella {utt}.\n")
    (root / "txt" / "p225" / "p225_003.txt").write_text("A text with no audio is ignored.")
    rows = _rows(prepare("vctk", root))
    assert sorted(rows) == [f"{s}_{u}" for s in speakers for u in ("001", "002")]  # mic1 only, mic suffix dropped
    assert {r["voice"]: r["split"] for r in rows.values()} == {"p225": "train", "p226": "train", "p240": "test"}
    assert rows["p240_002"]["text"] == "Please call Stella 002." and "text" not in rows["p226_001"]
    assert rows["p225_001"]["path"] == "wav48_silence_trimmed/p225/p225_001_mic1.flac" and rows["p225_001"]["mic"] == "mic1"
    mic2 = scan_layout("vctk", root, mic="mic2")
    assert all(e.path.name.endswith("_mic2.flac") for e in mic2.entries) and len(mic2.entries) == 6

    old = tmp_path / "VCTK-Corpus"
    _audio(old / "wav48" / "p225" / "p225_001.wav", 0.1)
    assert [e.id for e in scan_layout("vctk", old).entries] == ["p225_001"]
    with pytest.raises(DataError, match="no wav48_silence_trimmed/"):
        prepare("vctk", tmp_path / "VCTK-Corpus" / "wav48")


def _musdb(root):
    for split, song in (("train", "A Classic Education - NightOwl"), ("test", "Al James - Schoolboy Facination")):
        for stem in ("mixture", "vocals", "drums", "bass", "other"):
            _audio(root / split / song / f"{stem}.wav", 0.1)
    return root


def test_musdb_mixtures_by_default_stems_on_request(tmp_path):
    from audiolatent.bench.runner import load_bench_data

    root = _musdb(tmp_path / "musdb18hq")
    rows = _rows(prepare("musdb", root))
    assert rows == {k: rows[k] for k in ("A Classic Education - NightOwl/mixture", "Al James - Schoolboy Facination/mixture")}
    assert [r["split"] for r in rows.values()] == ["train", "test"]
    assert all(r["speech"] is False and "voice" not in r and "text" not in r for r in rows.values())
    assert load_bench_data(root / "manifest.jsonl")["manifest"]["speech"] is False  # no PESQ/STOI on music
    stems = scan_layout("musdb", root, stems=True).entries
    assert len(stems) == 10 and {e.extra["stem"] for e in stems} == {"mixture", "vocals", "drums", "bass", "other"}
    (root / "train" / "Empty Song").mkdir()
    with pytest.warns(UserWarning, match=r"skipped 1 file\(s\): .*Empty Song/mixture\.wav: no such file"):
        assert len(scan_layout("musdb", root).skipped) == 1
    with pytest.raises(DataError, match=r"no \{train,test\}/SONG/mixture\.wav"):
        prepare("musdb", root / "train")


def test_folder_splits_by_stem_reads_same_stem_texts_and_skips_unreadable_files(tmp_path):
    root = tmp_path / "mine"
    names = ("clip0", "clip4", "clip9", "sub/clip1")  # split_of: clip4 and clip9 are test
    for name in names:
        _audio(root / f"{name}.wav", 0.2)
    _audio(root / "sub" / "clip1.flac", 0.1)  # same stem as sub/clip1.wav: both keep their extension in the id
    (root / "clip4.txt").write_text("hello there\n")
    (root / "broken.wav").write_bytes(b"not a wav file at all")
    sf.write(str(root / "empty.wav"), np.zeros(0, dtype=np.float32), RATE)
    with pytest.warns(UserWarning, match=r"skipped 2 file\(s\)"):
        prepared = scan_layout("folder", root)
    assert len(prepared.skipped) == 2 and any("broken.wav" in s for s in prepared.skipped)
    ids = {e.id: e for e in prepared.entries}
    assert sorted(ids) == ["clip0", "clip4", "clip9", "sub/clip1.flac", "sub/clip1.wav"]
    assert {i: e.split for i, e in ids.items()} == {"clip0": "train", "clip4": "test", "clip9": "test",
                                                    "sub/clip1.flac": "train", "sub/clip1.wav": "train"}
    assert ids["clip4"].text == "hello there" and ids["clip0"].text is None and "voice" not in ids["clip0"].extra
    text = summary(prepared)
    assert "train" in text and "test" in text and "skipped 2 file(s)" in text

    with pytest.warns(UserWarning):
        forced = scan_layout("folder", root, split="test")
    assert {e.split for e in forced.entries} == {"test"}
    (root / "broken.wav").unlink()
    (root / "empty.wav").unlink()
    manifest = prepare("folder", root, split="test")
    assert all(e.split == "test" for e in read_manifest(manifest))
    (tmp_path / "silent").mkdir()
    (tmp_path / "silent" / "notes.txt").write_text("no audio here")
    with pytest.raises(DataError, match=r"no audio files \(\.wav"):
        prepare("folder", tmp_path / "silent")


def test_nothing_readable_is_an_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.wav").write_bytes(b"junk")
    with pytest.raises(DataError, match="none of the 1 audio files can be read"):
        prepare("folder", tmp_path / "bad")


def test_an_existing_manifest_is_kept_unless_forced(tmp_path):
    root = _librispeech(tmp_path / "ls")
    manifest = prepare("librispeech", root)
    manifest.write_text("precious\n")
    with pytest.raises(OutputError, match="exists; pass --force"):
        prepare("librispeech", root)
    assert manifest.read_text() == "precious\n"
    assert len(read_manifest(prepare("librispeech", root, force=True))) == 4
    with pytest.raises(OutputError, match="is a directory"):
        prepare("librispeech", root, out=root / "test-clean", force=True)


def test_summary_counts_files_hours_and_speakers(tmp_path):
    prepared = scan_layout("librispeech", _librispeech(tmp_path / "ls"))
    lines = summary(prepared, tmp_path / "ls" / "manifest.jsonl").splitlines()
    assert lines[0].startswith("librispeech ") and lines[0].endswith("manifest.jsonl")
    table = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert list(table) == ["train", "dev", "test", "all"]
    assert table["train"] == ["2", "0.00", "1"] and table["all"] == ["4", "0.00", "3"]


def test_the_cli_knows_every_layout():
    from audiolatent.cli.data import LAYOUTS as CLI_LAYOUTS

    assert CLI_LAYOUTS == LAYOUTS
