"""benchmarks/default_codec_quality.py's table: a variable-rate latent's kbps is per corpus."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "default_codec_quality.py"


def _module():
    spec = importlib.util.spec_from_file_location("default_codec_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(bits, pesq):
    return {"pesq_wb": pesq, "stoi": 0.9, "mel_distance": 0.2, "f0_rmse_cents": None, "bits_per_second": bits, "files": 3}


def test_each_corpus_shows_its_own_rate():
    table = {"varrate": {"speech_real": _row(1190.0, 1.5), "speech_aligned": _row(1260.0, 1.6)},
             "mel": {"speech_real": _row(None, 2.0), "speech_aligned": _row(None, 2.1)}}
    text = _module().markdown(table, ["speech_real", "speech_aligned"])
    lines = text.splitlines()
    assert lines[0].startswith("| tokenizer | speech_real kbps | speech_real PESQ-WB")
    assert "| varrate | 1.19 | 1.50 |" in text and "| 1.26 | 1.60 |" in text  # not the last corpus's rate twice
    assert "| mel | continuous | 2.00 |" in text
    assert all(line.count("|") == lines[0].count("|") for line in lines[:4])
