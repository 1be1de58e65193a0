"""`audiolatent data prepare` and `bench --split`, in process: a prepared folder is benched file by file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audiolatent.cli.main import main
from audiolatent.data import split_of

RATE = 16000
NAMES = ("clip0", "clip1", "clip4", "clip9")  # split_of: clip4 and clip9 are test


def _tone(path, seconds, f0):
    t = np.arange(int(seconds * RATE)) / RATE
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * f0 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32), RATE)


@pytest.fixture
def folder(tmp_path):
    for k, name in enumerate(NAMES):
        _tone(tmp_path / "mine" / f"{name}.wav", 0.3, 150 + 40 * k)
    assert [split_of(n) for n in NAMES] == ["train", "train", "test", "test"]
    return tmp_path / "mine"


def test_prepare_writes_the_manifest_and_prints_a_summary(folder, capsys):
    assert main(["data", "prepare", "folder", str(folder), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"-> {folder / 'manifest.jsonl'}" in out
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    assert table["train"][0] == "2" and table["test"][0] == "2" and table["all"][0] == "4"
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert [r["path"] for r in rows] == [f"{n}.wav" for n in NAMES]

    assert main(["data", "prepare", "folder", str(folder), "--no-progress"]) == 1  # no overwrite without --force
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["data", "prepare", "folder", str(folder), "--no-progress", "--force", "--split", "test",
                 "--out", str(folder.parent / "all_test.jsonl")]) == 0
    rows = [json.loads(line) for line in (folder.parent / "all_test.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"test"} and rows[0]["path"] == "mine/clip0.wav"


def test_prepare_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "prepare", "librispeech", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "no such folder" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):  # an unknown layout is a usage error
        main(["data", "prepare", "timit", str(tmp_path)])


def test_bench_split_all_scores_every_file_and_the_split_is_part_of_the_reuse_key(folder, tmp_path, capsys):
    assert main(["data", "prepare", "folder", str(folder), "--no-progress"]) == 0
    manifest, out = folder / "manifest.jsonl", tmp_path / "bench"
    common = ["bench", "--data", str(manifest), "--quick", "-t", "mel-16k", "--no-progress"]
    bench = [*common, "--metrics", "rate", "mel_distance", "--out", str(out)]
    assert main([*bench, "--split", "all"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["split"] == "all"
    assert results["data"]["manifest"]["scored"] == {"split": "all", "files": 4, "seconds": 1.2, "available_files": 4}
    assert results["data"]["manifest"]["splits"] == {"test": {"files": 2, "seconds": 0.6}, "train": {"files": 2, "seconds": 0.6}}
    row = results["tokenizers"]["mel-16k"]
    assert row["distortion"]["files"] == 4 and row["distortion"]["metric_files"]["mel_distance"]["scored"] == 4

    assert main(bench) == 0  # the default, --split test, into the same folder: recomputed, not reused
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["split"] == "test" and results["run"]["reused"] == []
    assert results["tokenizers"]["mel-16k"]["distortion"]["files"] == 2
    assert main([*bench, "--split", "test"]) == 0
    assert json.loads((out / "results.json").read_text())["run"]["reused"] == ["mel-16k"]

    with_probes = [*common, "--metrics", "rate", "mel_distance", "modelability", "--out", str(tmp_path / "train")]
    assert main([*with_probes, "--split", "train"]) == 0
    results = json.loads((tmp_path / "train" / "results.json").read_text())
    assert results["data"]["manifest"]["scored"]["files"] == 2 and list(results["data"]["manifest"]["splits"]) == ["train"]
    assert results["tokenizers"]["mel-16k"]["modelability"]["skipped"].startswith("--split train scores the probes' train files")
    capsys.readouterr()

    manifest.write_text("".join(line + "\n" for line in manifest.read_text().splitlines()
                                if json.loads(line)["split"] == "test"))
    assert main([*bench, "--split", "train"]) == 1
    assert "no entries in split 'train' (splits present: test)" in capsys.readouterr().err
