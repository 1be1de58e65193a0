"""Shared fixtures. Tests run on CPU with 2 threads so timings stay sane on shared machines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def sine():
    """1 s of a 440 Hz sine at 16 kHz, amplitude 0.5, as [1, 1, 16000]."""
    t = torch.arange(16000) / 16000
    return (0.5 * torch.sin(2 * torch.pi * 440 * t))[None, None]


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return SHARED_DATA
