"""run_bench end to end on two tiny files, with the toy tokenizer and mel-16k."""

from __future__ import annotations

import json
import math

import pytest
import soundfile as sf
import torch

from audiolatent.bench.runner import format_table, run_bench
from audiolatent.data import write_manifest
from audiolatent.data.manifest import ManifestEntry
from tests.core.toy import ToyConfig, ToyTokenizer


def _speechy(seconds: float, f0: float, seed: int) -> torch.Tensor:
    """A harmonic tone with a vibrato and some noise: enough voiced frames for PESQ/STOI/F0."""
    t = torch.arange(int(16000 * seconds)) / 16000
    phase = 2 * math.pi * torch.cumsum(f0 + 15 * torch.sin(2 * math.pi * 4 * t), 0) / 16000
    gen = torch.Generator().manual_seed(seed)
    envelope = 0.5 + 0.5 * torch.sin(2 * math.pi * 2 * t).abs()
    return envelope * sum(0.2 / k * torch.sin(k * phase) for k in range(1, 6)) + 0.005 * torch.randn(t.shape, generator=gen)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    entries = []
    for name, split, f0 in (("tiny_train", "train", 140.0), ("tiny_test", "test", 180.0)):
        path = root / f"{name}.wav"
        sf.write(str(path), _speechy(1.5, f0, len(entries)).numpy(), 16000)
        entries.append(ManifestEntry(path, 1.5, 16000, split, name, text="hello",
                                     phones=[("pau", 0.0, 0.5), ("ah", 0.5, 1.0), ("pau", 1.0, 1.5)]))
    manifest = write_manifest(entries, root / "manifest.jsonl")
    toy = ToyTokenizer(ToyConfig(hop_length=160, levels=64)).save(root / "toy")
    out = root / "out"
    results = run_bench([str(toy), "mel-16k"], data=manifest, out=out, metrics=None, quick=True, progress=False)
    return results, out, str(toy)


def test_results_json_has_the_required_keys(bench):
    results, out, toy = bench
    on_disk = json.loads((out / "results.json").read_text())
    assert set(on_disk) == {"tokenizers", "data", "run"}
    assert set(on_disk["tokenizers"]) == {toy, "mel-16k"}
    for name, row in on_disk["tokenizers"].items():
        assert {"rate", "distortion", "streaming", "modelability", "config", "config_hash"} <= set(row)
        assert "bits_per_second" in row["rate"]
        for key in ("pesq_wb", "stoi", "mel_distance"):
            assert key in row["distortion"]
        assert {"causal", "algorithmic_latency_ms"} <= set(row["streaming"])
        assert "probe_bits_per_second" in row["modelability"]
    assert on_disk["data"]["manifest"]["splits"]["test"]["files"] == 1
    assert "environment" in on_disk["run"] and on_disk["run"]["seconds"] > 0


def test_values_are_sensible(bench):
    results, out, toy = bench
    toy_row, mel_row = results["tokenizers"][toy], results["tokenizers"]["mel-16k"]
    assert toy_row["rate"]["bits_per_second"] == pytest.approx(100 * 6)  # 100 frames/s x log2(64)
    assert toy_row["modelability"]["probe_bits_per_second"] > 0
    assert toy_row["streaming"]["causal"] is True
    assert mel_row["rate"]["bits_per_second"] is None  # continuous
    assert mel_row["modelability"]["r2"] is not None
    assert 1.0 <= mel_row["distortion"]["pesq_wb"] <= 4.64
    assert mel_row["distortion"]["mel_distance"] < toy_row["distortion"]["mel_distance"] + 5
    assert "asr_wer" in mel_row["distortion"]["skipped"]  # --quick leaves ASR out, and says so
    assert "dnsmos" in mel_row["distortion"]["skipped"] or mel_row["distortion"].get("dnsmos") is not None
    assert mel_row["modelability"]["phoneme_accuracy"] is not None
    assert (out / mel_row["examples"][0]["reconstruction"]).is_file()
    assert "mel-16k" in format_table(results)


def test_classical_tokenizers_skip_modelability(tmp_path):
    from audiolatent.tokenizers.classical import opus_available

    if not opus_available():
        pytest.skip("pip install av")
    path = tmp_path / "a.wav"
    sf.write(str(path), _speechy(1.0, 150.0, 0).numpy(), 16000)
    results = run_bench(["opus-6k"], data=path, metrics=["mel_distance", "rate", "modelability"], quick=True, progress=False)
    row = results["tokenizers"]["opus-6k"]
    assert row["family"] == "classical"
    assert row["modelability"]["skipped"].startswith("classical codec")
    assert row["streaming"]["skipped"] == "not requested"
    assert row["distortion"]["pesq_wb"] is None


def test_presets_choose_how_much_is_measured(tmp_path):
    from audiolatent.bench.runner import PRESETS

    assert PRESETS["quick"].budget.steps < PRESETS["standard"].budget.steps < PRESETS["full"].budget.steps
    assert PRESETS["full"].test_seconds is None and "asr_wer" not in PRESETS["full"].excluded
    for name in ("a", "b", "c"):
        sf.write(str(tmp_path / f"{name}.wav"), _speechy(1.0, 150.0, 0).numpy(), 16000)
    tiny = PRESETS["quick"].__class__("tiny", 1.5, PRESETS["quick"].budget, PRESETS["quick"].streaming, {"si_snr": "left out"})
    results = run_bench(["mel-16k"], data=tmp_path, metrics=["si_snr", "mel_distance", "rate"], preset=tiny, progress=False)
    assert results["data"][tmp_path.stem]["splits"]["test"]["files"] == 2  # files until 1.5 s, in order
    assert results["run"]["preset"]["name"] == "tiny"
    assert results["tokenizers"]["mel-16k"]["distortion"]["si_snr"] is not None  # named explicitly: computed anyway
    results = run_bench(["mel-16k"], data=tmp_path, metrics=["mel_distance", "rate"], preset=tiny, progress=False)
    assert "si_snr" not in results["tokenizers"]["mel-16k"]["distortion"]  # not requested at all
    results = run_bench(["mel-16k"], data=tmp_path, preset=tiny, progress=False)
    assert results["tokenizers"]["mel-16k"]["distortion"]["skipped"]["si_snr"] == "left out"
    with pytest.raises(ValueError, match="unknown bench preset"):
        run_bench(["mel-16k"], data=tmp_path, preset="huge", progress=False)


def test_results_survive_a_stop_and_finished_tokenizers_are_reused(bench, tmp_path):
    results, out, toy = bench
    manifest = out.parent / "manifest.jsonl"
    run_dir = tmp_path / "run"
    # a run that dies at its second tokenizer keeps the first one's results and report
    with pytest.raises(Exception):
        run_bench(["mel-16k", "no-such-tokenizer"], data=manifest, out=run_dir, metrics=["mel_distance", "rate"],
                  quick=True, progress=False)
    first = json.loads((run_dir / "results.json").read_text())
    assert list(first["tokenizers"]) == ["mel-16k"] and first["run"]["complete"] is False
    assert (run_dir / "report.html").is_file()
    # re-running with one more tokenizer reuses the finished one, byte for byte
    again = run_bench(["mel-16k", toy], data=manifest, out=run_dir, metrics=["mel_distance", "rate"], quick=True,
                      progress=False)
    assert again["run"]["reused"] == ["mel-16k"] and again["run"]["complete"] is True
    assert again["tokenizers"]["mel-16k"] == first["tokenizers"]["mel-16k"]
    assert set(again["tokenizers"]) == {"mel-16k", toy}
    # another preset, or --force, recomputes
    other = run_bench(["mel-16k"], data=manifest, out=run_dir, metrics=["mel_distance", "rate", "streaming"], quick=True,
                      progress=False)
    assert other["run"]["reused"] == []
    forced = run_bench(["mel-16k"], data=manifest, out=run_dir, metrics=["mel_distance", "rate", "streaming"], quick=True,
                       progress=False, force=True)
    assert forced["run"]["reused"] == []


def test_every_metric_says_how_many_files_it_scored(bench, tmp_path):
    results, out, toy = bench
    mel_row = results["tokenizers"]["mel-16k"]["distortion"]
    counts = mel_row["metric_files"]
    assert counts["mel_distance"] == {"scored": 1, "unscored": []}
    assert all(c["scored"] + len(c["unscored"]) == mel_row["files"] for c in counts.values())
    # a file too short for STOI is counted as unscored, not silently in the file count
    short = tmp_path / "short.wav"
    sf.write(str(short), _speechy(0.2, 150.0, 9).numpy(), 16000)
    from audiolatent.data.manifest import ManifestEntry

    manifest = write_manifest([ManifestEntry(short, 0.2, 16000, "test", "short")], tmp_path / "m.jsonl")
    with pytest.warns(RuntimeWarning):
        row = run_bench(["mel-16k"], data=manifest, metrics=["stoi", "mel_distance"], quick=True,
                        progress=False)["tokenizers"]["mel-16k"]["distortion"]
    assert row["metric_files"]["stoi"] == {"scored": 0, "unscored": ["m/short"]} and row["stoi"] is None
    assert row["metric_files"]["mel_distance"]["scored"] == 1


def test_warnings_are_collected_and_summarised(bench, tmp_path):
    results, out, toy = bench
    short = tmp_path / "short.wav"
    sf.write(str(short), _speechy(0.2, 150.0, 9).numpy(), 16000)
    manifest = write_manifest([ManifestEntry(short, 0.2, 16000, "test", "short")], tmp_path / "m.jsonl")
    import warnings

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        quiet = run_bench(["mel-16k"], data=manifest, metrics=["stoi", "estoi"], quick=True, progress=False,
                          live_warnings=False)
    assert not [w for w in shown if "stoi" in str(w.message)]  # nothing printed between the bars
    summary = quiet["run"]["warnings"]
    assert summary and all(w["count"] >= 1 for w in summary) and any("stoi" in w["message"] for w in summary)


def test_split_chooses_the_scored_files(tmp_path):
    from audiolatent.bench.runner import load_bench_data
    from audiolatent.core.errors import ConfigError
    from audiolatent.data import DataError

    entries = []
    for name, split in (("a", "train"), ("b", "test"), ("c", "train")):
        sf.write(str(tmp_path / f"{name}.wav"), _speechy(0.2, 150.0, 0).numpy(), 16000)
        entries.append(ManifestEntry(tmp_path / f"{name}.wav", 0.2, 16000, split, name))
    manifest = write_manifest(entries, tmp_path / "m.jsonl")
    scored = {split: [e.id for e in load_bench_data(manifest, split)["m"]["scored"]] for split in ("test", "train", "all")}
    assert scored == {"test": ["b"], "train": ["a", "c"], "all": ["a", "b", "c"]}
    only_train = write_manifest([entries[0], entries[2]], tmp_path / "t.jsonl")
    assert [e.id for e in load_bench_data(only_train)["t"]["scored"]] == ["a", "c"]  # no test split: every file is test
    with pytest.raises(DataError, match=r"no entries in split 'train' \(splits present: test\)"):
        load_bench_data(write_manifest([entries[1]], tmp_path / "b.jsonl"), "train")
    with pytest.raises(ConfigError, match="unknown bench split 'dev'"):
        run_bench(["mel-16k"], data=manifest, split="dev", progress=False)


def test_the_latent_cache_serves_every_stage_and_the_next_run(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    entries = []
    for name, split, f0 in (("c_train", "train", 150.0), ("c_test", "test", 170.0)):
        path = root / f"{name}.wav"
        sf.write(str(path), _speechy(1.2, f0, len(entries)).numpy(), 16000)
        entries.append(ManifestEntry(path, 1.2, 16000, split, name, text="hello"))
    manifest = write_manifest(entries, root / "manifest.jsonl")
    cache = tmp_path / "cache"
    kwargs = dict(data=manifest, metrics=["rate", "modelability", "mel_distance"], quick=True, progress=False, cache=cache)
    first = run_bench(["mel-16k"], **kwargs)["tokenizers"]["mel-16k"]
    assert first["cache"]["hits"] == 0 and first["cache"]["misses"] == 2  # the test file, then the train file
    assert len(list(cache.glob("*/*.latent"))) == 2
    second = run_bench(["mel-16k"], **kwargs)["tokenizers"]["mel-16k"]
    assert second["cache"]["hits"] == 2 and second["cache"]["misses"] == 0
    assert second["distortion"]["mel_distance"] == first["distortion"]["mel_distance"]
    assert second["modelability"]["nll_per_second"] == first["modelability"]["nll_per_second"]
    assert second["rate"]["encode_rtf"] == pytest.approx(first["rate"]["encode_rtf"])  # measured when encoded
    path = entries[1].path  # an edited file is encoded again
    sf.write(str(path), _speechy(1.2, 200.0, 7).numpy(), 16000)
    third = run_bench(["mel-16k"], **kwargs)["tokenizers"]["mel-16k"]
    assert third["cache"]["misses"] == 1 and third["distortion"]["mel_distance"] != first["distortion"]["mel_distance"]
    off = run_bench(["mel-16k"], **{**kwargs, "cache": False})["tokenizers"]["mel-16k"]
    assert off["cache"]["folder"] is None and off["distortion"]["mel_distance"] == third["distortion"]["mel_distance"]


def test_kind_music_skips_the_speech_only_metrics(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(str(path), _speechy(1.5, 220.0, 3).numpy(), 16000)
    manifest = write_manifest([ManifestEntry(path, 1.5, 16000, "test", "tone")], tmp_path / "m.jsonl")
    kwargs = dict(data=manifest, metrics=["rate", "mel_distance", "stoi"], quick=True, progress=False, cache=False)
    speech = run_bench(["mel-16k"], **kwargs)
    music = run_bench(["mel-16k"], kind="music", **kwargs)
    assert speech["data"]["m"]["speech"] and not music["data"]["m"]["speech"]
    assert speech["tokenizers"]["mel-16k"]["distortion"]["stoi"] is not None
    assert music["tokenizers"]["mel-16k"]["distortion"]["stoi"] is None
    assert "speech-only" in str(music["tokenizers"]["mel-16k"]["distortion"]["skipped"]["stoi"])
    with pytest.raises(Exception, match="unknown data kind"):
        run_bench(["mel-16k"], kind="noise", **kwargs)
