"""``torchrun -m audiolatent bench``: files sharded over 2 CPU processes (gloo) give the figures of one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audiolatent.bench.runner import run_bench
from audiolatent.data import builtin_corpus, read_manifest, write_manifest

ROOT = Path(__file__).resolve().parents[2]


def _without_timing(rate: dict) -> dict:
    return {k: v for k, v in rate.items() if not k.endswith("_rtf")}


@pytest.mark.slow
def test_torchrun_with_two_processes_gives_the_single_process_figures(tmp_path):
    entries = [e for e in read_manifest(builtin_corpus("speech_real")) if e.split == "test"][:5]
    manifest = write_manifest(entries, tmp_path / "m.jsonl")
    metrics = ["rate", "mel_distance", "stoi"]
    one = run_bench(["mel-16k"], data=manifest, metrics=metrics, preset="quick", progress=False, out=tmp_path / "one")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "audiolatent",
           "bench", "-t", "mel-16k", "--data", str(manifest), "--metrics", *metrics, "--quick", "--no-progress",
           "--threads", "1", "--out", str(tmp_path / "two")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1  # rank 0 reports; rank 1 is silent
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["run"]["world_size"] == 2 and one["run"]["world_size"] == 1
    a, b = one["tokenizers"]["mel-16k"], two["tokenizers"]["mel-16k"]
    assert b["distortion"]["files"] == a["distortion"]["files"] == 5
    for key in ("mel_distance", "stoi", "per_corpus", "metric_files", "delay_samples", "skipped"):
        assert b["distortion"][key] == a["distortion"][key], key
    assert _without_timing(b["rate"]) == _without_timing(a["rate"])
    assert b["reuse_key"] == a["reuse_key"]  # the same figures: a torchrun result is reused by one process and back
