"""Audio input and output.

Audio in audiolatent is a float32 tensor ``[batch, channels, samples]`` in [-1, 1] together
with an explicit sample rate. Files are read with soundfile (wav, flac, ogg/vorbis, mp3 and
everything else libsndfile reads) and resampled with soxr (VHQ).
"""

from __future__ import annotations

import math
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from audiolatent.core.atomic import atomic_path
from audiolatent.core.errors import AudioError

__all__ = ["load_audio", "save_audio", "resample", "check_audio", "audio_info", "MAX_ABS_SAMPLE"]

#: samples beyond this magnitude are refused: audio is [-1, 1]; x50 (clipped float audio) is
#: accepted with a warning, 32768 (int16 scale in a float file) or 1e30 (garbage) is not
MAX_ABS_SAMPLE = 1000.0


def audio_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """soundfile's header info (sample rate, channels, frames) without decoding, or AudioError."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        return sf.info(str(path))
    except Exception as exc:  # libsndfile's messages are specific enough to keep
        raise AudioError(f"{path}: cannot read audio ({_clean(exc)})") from None


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    mono: bool = False,
    resample_ok: bool = True,
) -> tuple[torch.Tensor, int]:
    """Read an audio file as ``([1, channels, samples] float32, sample_rate)``.

    Args:
        path: any file libsndfile reads (wav, flac, ogg, mp3, aiff, ...).
        sample_rate: target rate in Hz; ``None`` keeps the file's rate.
        mono: average the channels into one.
        resample_ok: if False, a file whose rate differs from ``sample_rate`` is an error
            instead of being resampled.

    Raises:
        AudioError: missing or unreadable file, zero-length audio, NaN/inf samples, or a rate
            mismatch with ``resample_ok=False``. The message names the file.
    """
    info = audio_info(path)
    if info.frames == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({_clean(exc)})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")
    _check_amplitude(float(np.abs(data).max()), str(path))
    declared = _wav_declared_frames(Path(path))
    if declared is not None and declared > data.shape[0]:
        warnings.warn(f"{path}: the WAV header declares {declared} samples but the file holds {data.shape[0]} "
                      "(a truncated file); using the samples present", stacklevel=2)
    if mono and data.shape[1] > 1:
        data = data.mean(axis=1, keepdims=True)
    if sample_rate is not None and sample_rate != file_rate:
        if not resample_ok:
            raise AudioError(
                f"{path}: sample rate is {file_rate} Hz but {sample_rate} Hz is required "
                "and resampling is disabled"
            )
        data = soxr.resample(data, file_rate, sample_rate, quality="VHQ").astype(np.float32)
        file_rate = sample_rate
    audio = torch.from_numpy(np.ascontiguousarray(data.T))[None]
    return audio, int(file_rate)


def save_audio(
    path: str | os.PathLike,
    audio: torch.Tensor | np.ndarray,
    sample_rate: int,
    subtype: str | None = None,
) -> Path:
    """Write ``audio`` (``[channels, samples]`` or ``[1, channels, samples]``) atomically.

    The format follows the extension (``.wav``, ``.flac``, ``.ogg``, ``.mp3``, ...). Samples
    outside [-1, 1] are clipped by integer formats; NaN/inf is refused rather than written.
    The file appears only once complete: it is written to a temporary sibling and renamed.
    """
    path = Path(path)
    x = audio.detach().cpu().float().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio, np.float32)
    if x.ndim == 3:
        if x.shape[0] != 1:
            raise AudioError(f"{path}: save_audio writes one signal; got a batch of {x.shape[0]}")
        x = x[0]
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise AudioError(f"{path}: expected [channels, samples] audio, got shape {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise AudioError(f"{path}: refusing to write empty audio (0 samples)")
    if not np.isfinite(x).all():
        raise AudioError(f"{path}: refusing to write audio with NaN or infinite samples")
    if not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise AudioError(f"{path}: invalid sample rate {sample_rate!r}")
    fmt = _format_of(path)
    with atomic_path(path) as tmp:
        try:
            sf.write(str(tmp), x.T, int(sample_rate), subtype=subtype, format=fmt)
        except Exception as exc:
            reason = _clean(exc)
            if reason.rstrip(".") == "System error":  # libsndfile's word for ENOSPC, EIO...: say which it likely is
                try:
                    if shutil.disk_usage(Path(path).parent).free < 4 * x.nbytes:
                        reason = "no space left on device"
                except OSError:
                    pass
            raise AudioError(f"{path}: cannot write audio ({reason})") from None
    return path


def resample(audio: torch.Tensor, orig_rate: int, target_rate: int) -> torch.Tensor:
    """Resample ``[..., samples]`` audio with soxr (VHQ); returns a float32 tensor."""
    if orig_rate == target_rate:
        return audio
    shape = audio.shape
    flat = audio.detach().reshape(-1, shape[-1]).cpu().float().numpy().T  # [samples, signals]
    out = soxr.resample(np.ascontiguousarray(flat), orig_rate, target_rate, quality="VHQ")
    out_t = torch.from_numpy(np.ascontiguousarray(out.T.astype(np.float32)))
    return out_t.reshape(*shape[:-1], out_t.shape[-1]).to(audio.device)


def check_audio(
    audio: torch.Tensor,
    channels: int | None = None,
    name: str = "audio",
    min_samples: int = 1,
) -> torch.Tensor:
    """Validate a ``[batch, channels, samples]`` tensor before it enters a model.

    Raises AudioError naming ``name`` for a wrong rank, a channel count other than
    ``channels``, fewer than ``min_samples`` samples, or NaN/inf values.
    """
    if not isinstance(audio, torch.Tensor):
        raise AudioError(f"{name}: expected a torch.Tensor, got {type(audio).__name__}")
    if audio.dim() != 3:
        hint = " (add dims with audio[None, None] or audio[None])" if audio.dim() in (1, 2) else ""
        raise AudioError(f"{name}: expected shape [batch, channels, samples], got {tuple(audio.shape)}{hint}")
    if channels is not None and audio.shape[1] != channels:
        fix = " (load with mono=True or average the channels)" if channels == 1 else ""
        raise AudioError(
            f"{name}: unsupported channel layout: {audio.shape[1]} channel(s), this tokenizer takes {channels}{fix}"
        )
    if audio.shape[-1] < min_samples:
        raise AudioError(f"{name}: empty or too short audio ({audio.shape[-1]} samples, need >= {min_samples})")
    if not torch.is_floating_point(audio):
        raise AudioError(f"{name}: expected floating-point samples, got {audio.dtype}")
    if audio.numel():
        peak = float(audio.detach().abs().max())  # NaN or inf if any sample is: one pass checks both
        if not math.isfinite(peak):
            raise AudioError(f"{name}: contains NaN or infinite samples")
        _check_amplitude(peak, name, warn=False)
    return audio


def _check_amplitude(peak: float, name: str, warn: bool = True) -> None:
    """Refuse samples beyond :data:`MAX_ABS_SAMPLE`; warn (files) above full scale."""
    if peak > MAX_ABS_SAMPLE:
        hint = " (int16 scale: divide by 32768)" if 16000 < peak <= 32768 else ""
        raise AudioError(f"{name}: peak sample {peak:.3g} is far outside full scale [-1, 1] (at most {MAX_ABS_SAMPLE:g} "
                         f"is accepted){hint}")
    if warn and peak > 1.0:
        warnings.warn(f"{name}: peak sample {peak:.3g} is above full scale (clipped float audio); using it as it is",
                      stacklevel=3)


def _wav_declared_frames(path: Path) -> int | None:
    """Frames the RIFF/WAVE header of ``path`` declares (None: not a WAV, or no size declared)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                size = int.from_bytes(chunk[4:8], "little")
                if chunk[:4] == b"fmt ":
                    fmt = f.read(size)
                    block_align = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else None
                    f.seek(size % 2, 1)
                elif chunk[:4] == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF):  # streamed WAVs leave the size open
                        return None
                    return size // block_align
                else:
                    f.seek(size + size % 2, 1)
    except OSError:
        return None


def duration_to_samples(seconds: float, sample_rate: int) -> int:
    """Round a duration in seconds to a whole number of samples."""
    return int(math.floor(seconds * sample_rate + 0.5))


_EXT_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG", ".mp3": "MP3", ".aiff": "AIFF", ".aif": "AIFF"}


def _format_of(path: Path) -> str:
    fmt = _EXT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_EXT_FORMATS))
        raise AudioError(f"{path}: unknown audio extension {path.suffix!r} (known: {known})")
    return fmt


def _clean(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
