"""Mel scales and triangular mel filterbanks (librosa-compatible math, no librosa).

Used by the mel tokenizer, the mel losses and metrics, and the streaming STFT frontend; it
lives in ``nn`` so that every layer can use it without importing upwards.

* ``hz_to_mel`` / ``mel_to_hz``: Slaney's Auditory Toolbox scale (linear, 200/3 Hz per mel,
  below 1 kHz; logarithmic above, 27 mels per factor 6.4) or the HTK scale
  (``2595 log10(1 + f / 700)``).
* ``mel_filterbank(*, sample_rate, n_fft, n_mels, f_min, f_max, mel_scale, norm)`` ->
  ``[n_mels, n_fft // 2 + 1]`` triangular filters, optionally Slaney area-normalised.
"""

from __future__ import annotations

import math

import torch


__all__ = ["hz_to_mel", "mel_to_hz", "triangular_filters", "mel_filterbank"]

# Slaney's Auditory Toolbox scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above,
# 27 mels per factor 6.4 in frequency. Same constants as librosa (htk=False).
_SLANEY_HZ_PER_MEL = 200.0 / 3.0
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_BREAK_MEL = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL  # 15
_SLANEY_LOG_STEP = math.log(6.4) / 27.0


def hz_to_mel(freq_hz: torch.Tensor, mel_scale: str = "slaney") -> torch.Tensor:
    """Frequency (Hz) -> mel. ``"htk"``: ``2595 log10(1 + f / 700)``; ``"slaney"``: linear < 1 kHz, log above."""
    f = torch.as_tensor(freq_hz, dtype=torch.float64)
    if mel_scale == "htk":
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    if mel_scale != "slaney":
        raise ValueError(f"mel_scale must be 'slaney' or 'htk', got {mel_scale!r}")
    linear = f / _SLANEY_HZ_PER_MEL
    log = _SLANEY_BREAK_MEL + torch.log(f.clamp_min(_SLANEY_BREAK_HZ) / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP
    return torch.where(f >= _SLANEY_BREAK_HZ, log, linear)


def mel_to_hz(mels: torch.Tensor, mel_scale: str = "slaney") -> torch.Tensor:
    """Mel -> frequency (Hz); the inverse of :func:`hz_to_mel`."""
    m = torch.as_tensor(mels, dtype=torch.float64)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    if mel_scale != "slaney":
        raise ValueError(f"mel_scale must be 'slaney' or 'htk', got {mel_scale!r}")
    linear = m * _SLANEY_HZ_PER_MEL
    log = _SLANEY_BREAK_HZ * torch.exp(_SLANEY_LOG_STEP * (m - _SLANEY_BREAK_MEL))
    return torch.where(m >= _SLANEY_BREAK_MEL, log, linear)


def triangular_filters(freqs_hz: torch.Tensor, edges_hz: torch.Tensor, norm: str | None = "slaney") -> torch.Tensor:
    """Triangular filters evaluated at ``freqs_hz [F]``: ``[len(edges_hz) - 2, F]`` float64.

    Filter ``m`` rises linearly from 0 at ``edges_hz[m]`` to its peak at ``edges_hz[m + 1]``
    (its centre frequency) and falls to 0 at ``edges_hz[m + 2]``. Peak 1 with ``norm=None``
    (adjacent filters then sum to 1 between the first and last centre); with ``"slaney"`` each
    filter is scaled by ``2 / (edges_hz[m + 2] - edges_hz[m])`` so its area is 1 (in Hz).
    """
    freqs = torch.as_tensor(freqs_hz, dtype=torch.float64)
    edges = torch.as_tensor(edges_hz, dtype=torch.float64)
    widths = edges.diff()  # [M + 1]
    ramps = edges[:, None] - freqs[None, :]  # [M + 2, F]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = torch.minimum(rising, falling).clamp_min(0.0)
    if norm == "slaney":
        weights = weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    elif norm is not None:
        raise ValueError(f"norm must be 'slaney' or None, got {norm!r}")
    return weights


def mel_filterbank(
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    mel_scale: str = "slaney",
    norm: str | None = "slaney",
) -> torch.Tensor:
    """Mel filterbank ``[n_mels, n_fft // 2 + 1]`` (float32), the same math as ``librosa.filters.mel``.

    Keyword-only: three positional integers in the wrong order would silently build another bank.

    Centre frequencies are ``n_mels`` points equally spaced in mel between ``f_min`` and
    ``f_max`` (exclusive; ``f_max=None`` = Nyquist); FFT bin ``k`` is at ``k * sample_rate / n_fft`` Hz.
    """
    f_max = sample_rate / 2.0 if f_max is None else float(f_max)
    fft_freqs = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    mel_edges = torch.linspace(
        float(hz_to_mel(torch.tensor(f_min), mel_scale)), float(hz_to_mel(torch.tensor(f_max), mel_scale)),
        n_mels + 2, dtype=torch.float64,
    )
    return triangular_filters(fft_freqs, mel_to_hz(mel_edges, mel_scale), norm).float()
