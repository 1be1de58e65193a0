"""Shared fixtures.

The suite runs on one intra-op thread: its tensors are tiny, and on a shared 2-core machine a
second OpenMP thread makes small matmuls (LSTM steps, attention, tiny training loops) 3-30x
slower, not faster. Benchmarks set their own thread count.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _hermetic_latent_cache(tmp_path_factory):
    """Latent caches (bench, LM) of the session in a temporary folder, never in ~/.cache."""
    os.environ["AUDIOLATENT_CACHE"] = str(tmp_path_factory.mktemp("audiolatent-cache"))

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
