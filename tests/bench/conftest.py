"""Fixtures of the bench tests: one real speech file from the built-in corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
import torch

SPEECH = Path(__file__).resolve().parents[2] / "src" / "audiolatent" / "corpus" / "speech_real" / "audio"


@pytest.fixture(scope="session")
def speech() -> torch.Tensor:
    """3.5 s of real speech at 16 kHz, ``[1, 1, N]`` ("At the tone, the time will be exactly...")."""
    path = SPEECH / "at-tone-time-exactly.flac"
    if not path.is_file():
        t = torch.arange(48000) / 16000  # synthetic harmonic stand-in, 150 Hz with vibrato
        phase = 2 * torch.pi * torch.cumsum(150 + 20 * torch.sin(2 * torch.pi * 3 * t), 0) / 16000
        return (sum(0.3 / k * torch.sin(k * phase) for k in range(1, 8)))[None, None].float()
    audio, sr = sf.read(str(path), dtype="float32")
    assert sr == 16000
    return torch.from_numpy(audio)[None, None]
