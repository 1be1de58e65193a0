"""Learned speech metrics: Whisper word error rate and speaker similarity. Opt-in, never default.

Both run a pretrained network from ``transformers`` (the ``adapters`` extra) on every file, so
they are registered with ``opt_in=True``: no preset computes them, ``--full`` included; they run
only when named (``audiolatent bench --metrics whisper_wer speaker_similarity`` or
``get_metric("whisper_wer")``). They are not on by default even where the weights are cached,
so a run's metric set does not depend on what a machine's cache holds.

* :func:`whisper_wer` — word error rate of Whisper's transcript of the decoded audio against the
  true transcript: the definition of ``asr_wer`` (:func:`~audiolatent.bench.distortion.word_error_rate`
  over :func:`~audiolatent.bench.distortion.normalize_words`: lower case, punctuation dropped,
  numbers *not* spelled out, so Whisper's "4" against a transcript's "four" is an error), with
  Whisper (Radford et al. 2022, "Robust Speech Recognition via Large-Scale Weak Supervision") in
  place of pocketsphinx. Greedy decoding, English transcription task (for multilingual
  checkpoints), no timestamps; input resampled to 16 kHz, log-mel by ``WhisperFeatureExtractor``
  (torch STFT, no torchaudio). Signals longer than 30 s use transformers' sequential long-form
  decoding. Fraction, ``[0, inf)``, lower is better. Absolute values include Whisper's own
  errors: report the WER of the original audio beside the decoded one.
* :func:`speaker_similarity` — cosine similarity of the speaker embeddings (x-vectors) of the
  original and the decoded audio, ``<e_ref, e_est> / (|e_ref| |e_est|)``, from a speaker-
  verification model (default WavLM Base+ SV, Chen et al. 2022, "WavLM"), each signal embedded
  alone at 16 kHz. ``[-1, 1]``, higher is better; identical audio gives 1. Signals shorter than
  :data:`SPEAKER_MIN_SECONDS` give NaN with a warning.

Weights: the hub id (or a local directory) is :data:`WHISPER_WEIGHTS` / :data:`SPEAKER_WEIGHTS`
unless the environment variable ``AUDIOLATENT_WHISPER_WEIGHTS`` / ``AUDIOLATENT_SPEAKER_WEIGHTS``
names another. They are read from the local cache first; the hub is asked only when the cache
lacks them and ``HF_HUB_OFFLINE`` is not set. Absent weights raise
:class:`~audiolatent.bench.metrics.MetricUnavailable`, one line naming the id; a failed load is
remembered for the process (:func:`forget_loaded_models` after fetching them).

Tests inject small random-weight models: pass ``asr=WhisperASR(...)`` / ``encoder=SpeakerEncoder(...)``,
or monkeypatch :func:`load_whisper` / :func:`load_speaker_encoder`.

Example::

    from audiolatent.bench.metrics import get_metric
    wer = get_metric("whisper_wer")(reference, estimate, 16000, transcripts=["the cat sat"])  # [B]
    sim = get_metric("speaker_similarity")(reference, estimate, 16000)                      # [B]
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from audiolatent.bench.distortion import word_error_rate
from audiolatent.bench.metrics import Metric, MetricUnavailable, register_metric, require_package
from audiolatent.core.audio import resample

__all__ = [
    "WHISPER_WEIGHTS",
    "SPEAKER_WEIGHTS",
    "metric_weights",
    "SPEAKER_MIN_SECONDS",
    "WhisperASR",
    "SpeakerEncoder",
    "load_whisper",
    "load_speaker_encoder",
    "forget_loaded_models",
    "whisper_transcribe",
    "whisper_wer",
    "cosine_similarity",
    "speaker_similarity",
]

#: default Whisper checkpoint (hub id or local directory); env AUDIOLATENT_WHISPER_WEIGHTS overrides
WHISPER_WEIGHTS = "openai/whisper-small"
#: default speaker-verification checkpoint; env AUDIOLATENT_SPEAKER_WEIGHTS overrides
SPEAKER_WEIGHTS = "microsoft/wavlm-base-plus-sv"
WHISPER_ENV = "AUDIOLATENT_WHISPER_WEIGHTS"
SPEAKER_ENV = "AUDIOLATENT_SPEAKER_WEIGHTS"
#: both models take 16 kHz audio
MODEL_RATE = 16000
#: shorter signals have too few frames for the x-vector's TDNN context (15 frames of 20 ms)
SPEAKER_MIN_SECONDS = 0.5
_PIP = "'audiolatent[adapters]'"


def _mono_16k(x: torch.Tensor, sample_rate: int) -> list[np.ndarray]:
    """``[B, C, N]`` / ``[B, N]`` audio as B mono float32 arrays at 16 kHz."""
    x = torch.as_tensor(x).detach().float().cpu()
    if x.dim() == 3:
        x = x.mean(1)
    if x.dim() != 2:
        raise ValueError(f"expected [B, C, N] or [B, N] audio, got {tuple(x.shape)}")
    return list(resample(x, sample_rate, MODEL_RATE).numpy().astype(np.float32))


def _from_pretrained(cls: Any, weights: str, metric: str, env: str) -> Any:
    """``cls.from_pretrained(weights)``: local cache (or directory) first, then the hub unless offline."""
    from huggingface_hub import constants

    try:
        return cls.from_pretrained(weights, local_files_only=True)
    except (OSError, ValueError):
        why = "they are not in the local cache and the hub is offline (HF_HUB_OFFLINE)"
    if not constants.HF_HUB_OFFLINE:
        try:
            return cls.from_pretrained(weights)
        except (OSError, ValueError) as exc:
            text = " ".join(str(exc).split())
            why = f"not in the local cache, and the hub said: {text if len(text) <= 200 else text[:200] + '...'}"
    raise MetricUnavailable(
        f"metric {metric!r} cannot load weights {weights!r}: {why}. Fetch them where there is network "
        f"(hf download {weights}) and copy the cache, or set {env} to a local directory"
    ) from None


# --- Whisper word error rate ----------------------------------------------------------------
@dataclass
class WhisperASR:
    """A Whisper checkpoint ready to transcribe.

    Attributes:
        model: a ``WhisperForConditionalGeneration`` (eval mode).
        feature_extractor: its ``WhisperFeatureExtractor`` (log-mel, 30 s windows).
        tokenizer: its ``WhisperTokenizer``.
        language: transcription language for multilingual checkpoints (ignored by English-only
            ones, whose generation config has no ``lang_to_id``).
    """

    model: Any
    feature_extractor: Any
    tokenizer: Any
    language: str | None = "en"

    @torch.inference_mode()
    def transcribe(self, audio: np.ndarray) -> str:
        """Transcript of one mono 16 kHz signal ``[N]`` (greedy, no timestamps in the text)."""
        long_form = len(audio) > self.feature_extractor.n_samples
        features = self.feature_extractor(
            audio, sampling_rate=MODEL_RATE, return_tensors="pt", return_attention_mask=True,
            truncation=not long_form, padding="longest" if long_form else "max_length",
        )
        options: dict[str, Any] = {"num_beams": 1, "do_sample": False}
        if self.language and getattr(self.model.generation_config, "lang_to_id", None):
            options.update(language=self.language, task="transcribe")
        if long_form:  # transformers' sequential long-form decoding needs the timestamp tokens
            options["return_timestamps"] = True
        ids = self.model.generate(
            features["input_features"].to(self.model.device, self.model.dtype),
            attention_mask=features["attention_mask"].to(self.model.device), **options,
        )
        return self.tokenizer.batch_decode(ids, skip_special_tokens=True)[0].strip()


@functools.lru_cache(maxsize=2)
def _load_whisper(weights: str) -> WhisperASR | MetricUnavailable:
    transformers = require_package("transformers", _PIP, metric="whisper_wer")
    try:
        model = _from_pretrained(transformers.WhisperForConditionalGeneration, weights, "whisper_wer", WHISPER_ENV)
        features = _from_pretrained(transformers.WhisperFeatureExtractor, weights, "whisper_wer", WHISPER_ENV)
        tokenizer = _from_pretrained(transformers.WhisperTokenizer, weights, "whisper_wer", WHISPER_ENV)
    except MetricUnavailable as exc:
        return exc
    return WhisperASR(model.eval(), features, tokenizer)


def metric_weights(names) -> dict:
    """``{metric: weights id}`` of the learned metrics among ``names`` (what a bench run records, and
    part of its reuse key, so other weights are never mistaken for the same scores)."""
    chosen = {"whisper_wer": _weights_id(WHISPER_ENV, WHISPER_WEIGHTS),
              "speaker_similarity": _weights_id(SPEAKER_ENV, SPEAKER_WEIGHTS)}
    return {name: chosen[name] for name in sorted(names or ()) if name in chosen}


def _weights_id(env: str, default: str) -> str:
    """The checkpoint a learned metric uses: ``$env`` when set, else ``default``."""
    return os.environ.get(env) or default


def load_whisper(weights: str | None = None) -> WhisperASR:
    """The Whisper checkpoint ``weights`` (default: env AUDIOLATENT_WHISPER_WEIGHTS, else
    :data:`WHISPER_WEIGHTS`), loaded once per process; MetricUnavailable when absent."""
    loaded = _load_whisper(weights or _weights_id(WHISPER_ENV, WHISPER_WEIGHTS))
    if isinstance(loaded, MetricUnavailable):
        raise MetricUnavailable(str(loaded))
    return loaded



def whisper_transcribe(audio: torch.Tensor, sample_rate: int, asr: WhisperASR | None = None) -> str:
    """Whisper's transcript of one signal (``[N]`` or ``[C, N]``, channels averaged)."""
    x = torch.as_tensor(audio).detach().float()
    (item,) = _mono_16k(x.reshape(-1, x.shape[-1]).mean(0, keepdim=True), sample_rate)
    return (asr or load_whisper()).transcribe(item)


def whisper_wer(reference: torch.Tensor | None, estimate: torch.Tensor, sample_rate: int, transcripts: list[str],
                asr: WhisperASR | None = None) -> torch.Tensor:
    """WER of Whisper's transcript of each ``estimate`` item against ``transcripts[i]``, ``[B]``.

    The definition of ``asr_wer`` with Whisper as the recogniser; see the module docstring.
    """
    items = _mono_16k(estimate, sample_rate)
    if len(transcripts) != len(items):
        raise ValueError(f"whisper_wer: {len(items)} signals but {len(transcripts)} transcripts")
    asr = asr or load_whisper()
    return torch.tensor([word_error_rate(t, asr.transcribe(e)) for t, e in zip(transcripts, items)], dtype=torch.float32)


# --- speaker similarity ---------------------------------------------------------------------
@dataclass
class SpeakerEncoder:
    """A speaker-verification checkpoint: ``model`` returns ``.embeddings`` ``[1, D]`` (e.g.
    ``WavLMForXVector``), ``feature_extractor`` prepares 16 kHz audio for it."""

    model: Any
    feature_extractor: Any

    @torch.inference_mode()
    def embed(self, audio: np.ndarray) -> torch.Tensor:
        """Speaker embedding ``[D]`` (float64) of one mono 16 kHz signal ``[N]``, embedded alone
        (batching pads, and padding moves the embedding)."""
        inputs = self.feature_extractor(audio, sampling_rate=MODEL_RATE, return_tensors="pt")
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        return self.model(**inputs).embeddings[0].double().cpu()


@functools.lru_cache(maxsize=2)
def _load_speaker_encoder(weights: str) -> SpeakerEncoder | MetricUnavailable:
    transformers = require_package("transformers", _PIP, metric="speaker_similarity")
    try:
        model = _from_pretrained(transformers.AutoModelForAudioXVector, weights, "speaker_similarity", SPEAKER_ENV)
        features = _from_pretrained(transformers.AutoFeatureExtractor, weights, "speaker_similarity", SPEAKER_ENV)
    except MetricUnavailable as exc:
        return exc
    return SpeakerEncoder(model.eval(), features)


def load_speaker_encoder(weights: str | None = None) -> SpeakerEncoder:
    """The speaker model ``weights`` (default: env AUDIOLATENT_SPEAKER_WEIGHTS, else
    :data:`SPEAKER_WEIGHTS`), loaded once per process; MetricUnavailable when absent."""
    loaded = _load_speaker_encoder(weights or _weights_id(SPEAKER_ENV, SPEAKER_WEIGHTS))
    if isinstance(loaded, MetricUnavailable):
        raise MetricUnavailable(str(loaded))
    return loaded



def forget_loaded_models() -> None:
    """Drop the models (and remembered load failures) of :func:`load_whisper` and
    :func:`load_speaker_encoder`, e.g. after fetching the weights."""
    _load_whisper.cache_clear()
    _load_speaker_encoder.cache_clear()


def cosine_similarity(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> float:
    """``<a, b> / (|a| |b|)`` of two vectors ``[D]`` in float64, clipped to [-1, 1]; 0 if one is zero."""
    a, b = torch.as_tensor(a).double().reshape(-1), torch.as_tensor(b).double().reshape(-1)
    value = float(a @ b) / max(float(a.norm() * b.norm()), eps)
    return min(1.0, max(-1.0, value))


def speaker_similarity(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int,
                       encoder: SpeakerEncoder | None = None) -> torch.Tensor:
    """Cosine similarity of the speaker embeddings of each reference / estimate pair, ``[B]``.

    See the module docstring; NaN with a warning for items shorter than :data:`SPEAKER_MIN_SECONDS`.
    """
    refs, ests = _mono_16k(reference, sample_rate), _mono_16k(estimate, sample_rate)
    if len(refs) != len(ests):
        raise ValueError(f"speaker_similarity: {len(refs)} references but {len(ests)} estimates")
    encoder = encoder or load_speaker_encoder()
    values = []
    for i, (ref, est) in enumerate(zip(refs, ests)):
        if min(len(ref), len(est)) < SPEAKER_MIN_SECONDS * MODEL_RATE:
            warnings.warn(f"speaker_similarity: item {i} gives NaN (shorter than {SPEAKER_MIN_SECONDS} s)",
                          RuntimeWarning, stacklevel=2)
            values.append(math.nan)
            continue
        values.append(cosine_similarity(encoder.embed(ref), encoder.embed(est)))
    return torch.tensor(values, dtype=torch.float32)


# --- registry ---------------------------------------------------------------------------------
register_metric(Metric(
    "whisper_wer", "distortion", whisper_wer, "fraction", (0.0, math.inf), False,
    f"word error rate of Whisper ASR ({WHISPER_WEIGHTS} unless {WHISPER_ENV} says) on decoded audio",
    needs_transcript=True, speech_only=True, package="transformers", pip_name=_PIP, sample_rate=MODEL_RATE,
    opt_in=True,
))
register_metric(Metric(
    "speaker_similarity", "distortion", speaker_similarity, "cosine", (-1.0, 1.0), True,
    f"cosine of speaker embeddings ({SPEAKER_WEIGHTS} unless {SPEAKER_ENV} says), original vs decoded",
    needs_reference=True, speech_only=True, package="transformers", pip_name=_PIP, sample_rate=MODEL_RATE,
    opt_in=True,
))
