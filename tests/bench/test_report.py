"""report.html: plots, table and audio players, self-contained; rendered by Chromium when present."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from audiolatent.bench.report import axis_scores, write_report
from audiolatent.core.audio import save_audio


def _row(bps, mel, latency, ratio, family="neural"):
    return {
        "family": family, "config": {}, "config_hash": "x",
        "rate": {"bits_per_second": bps, "entropy_bits_per_second": bps and 0.8 * bps, "values_per_second": 100.0},
        "distortion": {"mel_distance": mel, "pesq_wb": 2.0 + 1000 / (bps or 8000), "stoi": 0.9, "si_snr": 1.0},
        "streaming": {"causal": latency is not None, "algorithmic_latency_ms": latency},
        "modelability": {"probe_bits_per_second": ratio * bps if ratio and bps else None, "ratio_to_entropy": ratio},
        "examples": [{"id": "clip", "original": "examples/a.wav", "reconstruction": "examples/a.wav"}],
    }


@pytest.fixture
def results():
    return {
        "tokenizers": {"a-6k": _row(6000, 0.5, 26.5, None, "classical"), "b-1k": _row(1500, 0.8, 20.0, 0.7),
                       "c-mel": _row(None, 0.2, None, None, "handcrafted")},
        "data": {"speech": {"splits": {"test": {"files": 1, "seconds": 1.0}}}},
        "run": {"seconds": 1.0, "quick": True, "environment": {"command": "audiolatent bench --quick"}},
    }


def test_report_has_plots_table_and_players(results, tmp_path):
    save_audio(tmp_path / "examples" / "a.wav", 0.1 * torch.randn(1, 1600), 16000)
    path = write_report(results, tmp_path)
    text = path.read_text()
    assert len(re.findall(r"<img[^>]+src='data:image/png;base64,", text)) == 1 + 3  # rate-distortion + 3 axis charts
    assert text.count("<audio controls src='data:audio/wav;base64,") == 6
    assert "class='sortable'" in text and "<script>" in text
    assert "http://" not in text and "https://" not in text  # offline: nothing fetched


def test_axis_scores_put_the_best_at_one(results):
    scores = axis_scores(results)
    assert scores["b-1k"]["rate"] == 1.0 and scores["a-6k"]["rate"] == pytest.approx(0.25)
    assert scores["c-mel"]["distortion"] == 1.0
    assert scores["c-mel"]["rate"] is None and scores["c-mel"]["streaming"] == 0.0
    assert scores["b-1k"]["streaming"] == 1.0


def test_report_renders_in_headless_chromium(results, tmp_path):
    browser = next((b for b in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(b).exists()), None)
    if browser is None:
        pytest.skip("no /usr/bin/chromium (apt-get install -y chromium)")
    save_audio(tmp_path / "examples" / "a.wav", 0.1 * torch.randn(1, 1600), 16000)
    path = write_report(results, tmp_path)
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1280,2000", path.resolve().as_uri()], check=True, timeout=60,
                   capture_output=True)
    assert shot.is_file() and shot.stat().st_size > 10_000
