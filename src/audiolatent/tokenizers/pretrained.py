"""Trained tokenizers shipped inside the package: ``codec-16k-default``.

The checkpoint directories live in ``audiolatent/pretrained/<name>/`` (``config.yaml`` +
``model.safetensors``, int8 weights: see :mod:`audiolatent.core.checkpoint`), so they load
offline from an installed wheel. ``config.yaml`` also records how the weights were made
(``training.stages``: recipe, command, data, steps, wall time, machine, per stage).

``codec-16k-default`` is the project's default streaming speech codec, trained from scratch in
one run of the recipe ``default-16k-aug`` (``configs/train/``: 24,000 steps, 116 minutes on a
2-core CPU, speed and gain augmentation) on the train splits of the built-in ``speech_real`` and
``speech_aligned`` corpora; causal, 20 ms algorithmic latency, RVQ 4 x 256 at 50 Hz = 1.6 kbps.
The README has its training curves and its quality beside Codec2 and Opus.
"""

from __future__ import annotations

from pathlib import Path

from audiolatent.core.checkpoint import load_checkpoint
from audiolatent.core.errors import CheckpointError
from audiolatent.core.registry import register_tokenizer

__all__ = ["PRETRAINED_DIR", "pretrained_path", "DEFAULT_CODEC"]

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
DEFAULT_CODEC = "codec-16k-default"


def pretrained_path(name: str) -> Path:
    """The packaged checkpoint directory of ``name`` (CheckpointError if it is not shipped)."""
    path = PRETRAINED_DIR / name
    if not (path / "config.yaml").is_file():
        raise CheckpointError(f"{name}: packaged checkpoint missing at {path} (a broken install? reinstall audiolatent)")
    return path


register_tokenizer(
    DEFAULT_CODEC,
    lambda: load_checkpoint(pretrained_path(DEFAULT_CODEC)),
    "default streaming speech codec (trained, shipped): STFT+ConvNeXt -> RVQ 4x256 @ 50 Hz = 1.6 kbps -> "
    "Vocos iSTFT, causal, 20 ms",
    "neural",
)
