"""Trained tokenizers shipped inside the package: ``codec-16k-default``, ``codec-16k-semantic``, ``codec-16k-varrate``.

The checkpoint directories live in ``audiolatent/pretrained/<name>/`` (``config.yaml`` +
``model.safetensors``, int8 weights: see :mod:`audiolatent.core.checkpoint`), so they load
offline from an installed wheel. ``config.yaml`` also records how the weights were made
(``training.stages``: recipe, command, data, steps, wall time, machine, per stage).

``codec-16k-default`` is the project's default streaming speech codec, trained from scratch in
one run of the recipe ``default-16k-aug`` (``configs/train/``: 24,000 steps, 116 minutes on a
2-core CPU, speed and gain augmentation) on the train splits of the built-in ``speech_real`` and
``speech_aligned`` corpora; causal, 20 ms algorithmic latency, RVQ 4 x 256 at 50 Hz = 1.6 kbps.
The README has its training curves and its quality beside Codec2 and Opus.

``codec-16k-semantic`` stands on the same footing (causal, 20 ms, RVQ 4 x 256 at 50 Hz = 1.6
kbps, the same recipe and data) with semantic structure in its codes (issue 16): X-Codec's dual
encoder, whose frozen *causal* phone teacher (``fit phone-teacher --causal``, carried inside the
checkpoint) reads the audio beside the acoustic encoder, plus a phone-classification loss on the
first RVQ level against a centred phone teacher (training only). README: "Teachers and phone
alignments (semantic structure)", where the controlled comparison and its figures are.

``codec-16k-varrate`` (issue 17) is the default's encoder and decoder around the causal
``segment`` bottleneck (one RVQ 7 x 256 token and one duration per segment of 1-8 frames),
warm-started from the default (recipe ``varrate-16k-warm``, 12,000 steps); float16 weights, since
int8 cost it 0.002 of mel distance. README: "Variable rate". ``codec-16k-varrate-phones`` is the
same weights with segments given by a phone alignment (:mod:`audiolatent.tokenizers.aligned`):
the text-aligned comparison point, offline only.
"""

from __future__ import annotations

from pathlib import Path

from audiolatent.core.checkpoint import load_checkpoint
from audiolatent.core.errors import CheckpointError
from audiolatent.core.registry import register_tokenizer

__all__ = ["PRETRAINED_DIR", "pretrained_path", "DEFAULT_CODEC", "SEMANTIC_CODEC", "VARRATE_CODEC", "PHONE_ALIGNED_CODEC"]

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
DEFAULT_CODEC = "codec-16k-default"
SEMANTIC_CODEC = "codec-16k-semantic"
VARRATE_CODEC = "codec-16k-varrate"
PHONE_ALIGNED_CODEC = "codec-16k-varrate-phones"


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

register_tokenizer(
    SEMANTIC_CODEC,
    lambda: load_checkpoint(pretrained_path(SEMANTIC_CODEC)),
    "semantic streaming speech codec (trained, shipped): dual encoder (STFT+ConvNeXt beside a causal phone "
    "teacher) -> RVQ 4x256 @ 50 Hz = 1.6 kbps -> Vocos iSTFT, causal, 20 ms",
    "neural",
)

register_tokenizer(
    VARRATE_CODEC,
    lambda: load_checkpoint(pretrained_path(VARRATE_CODEC)),
    "variable-rate streaming speech codec (trained, shipped): the default's encoder -> causal segments of 1-8 "
    "frames, one RVQ 7x256 token + duration each (~20 segments/s, ~1.2 kbps with durations) -> Vocos iSTFT, "
    "latency 160 ms",
    "neural",
)


def _phone_aligned():
    from audiolatent.tokenizers.aligned import PhoneAlignedCodec

    return PhoneAlignedCodec(load_checkpoint(pretrained_path(VARRATE_CODEC)), VARRATE_CODEC)


register_tokenizer(
    PHONE_ALIGNED_CODEC,
    _phone_aligned,
    "text-aligned tokens (offline, non-causal): codec-16k-varrate with one segment per phone of a phone "
    "alignment (needs the manifest's phones, e.g. speech_aligned) instead of its causal router",
    "neural",
)
