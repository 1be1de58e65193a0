"""Centred STFT framing and fast Griffin-Lim phase reconstruction.

Framing (shared by the mel tokenizers' analysis and by Griffin-Lim, so the two agree):
``T`` frames of a signal, frame ``t`` centred at sample ``t * hop_length``, the signal
zero-padded by ``n_fft // 2`` on both sides. For a frame-aligned signal of ``T * hop``
samples, ``torch.stft(center=True)`` gives ``T + 1`` frames; the last one (centred on the
first sample *after* the signal) is dropped, so ``N`` samples give exactly
``T = ceil(N / hop)`` frames once the tokenizer has padded ``N`` to ``T * hop``.
Zero padding (not reflection) is used so that appending silence never changes earlier frames
and signals shorter than ``n_fft / 2`` are valid.

Griffin-Lim (Griffin & Lim, "Signal estimation from modified short-time Fourier transform",
1984) alternates two projections: onto spectrograms with the target magnitude, and onto
*consistent* spectrograms (those that are the STFT of some signal, i.e. ``stft(istft(X))``).
The fast variant (Perraudin, Balazs & Søndergaard, "A fast Griffin-Lim algorithm", 2013) adds
an inertial step ``t_n = c_n + momentum * (c_n - c_{n-1})``, which converges much faster for
``momentum`` near 0.99. Every iteration reads the whole spectrogram, so Griffin-Lim needs the
whole signal: it cannot stream.

Example::

    mag = stft_frames(audio [B, N], 1024, 256, window, n_frames).abs()   # [B, 513, T]
    audio_hat = griffin_lim(mag, n_fft=1024, hop_length=256, n_iter=32)   # [B, T * 256]
"""

from __future__ import annotations

import math

import torch

__all__ = ["stft_frames", "istft_frames", "griffin_lim", "spectral_convergence"]


def _window(win_length: int, window: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    if window is None:
        window = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
    if window.shape != (win_length,):
        raise ValueError(f"window must have win_length={win_length} samples, got shape {tuple(window.shape)}")
    real_dtype = like.real.dtype if like.is_complex() else like.dtype
    return window.to(device=like.device, dtype=real_dtype)


def stft_frames(
    audio: torch.Tensor,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    n_frames: int | None = None,
) -> torch.Tensor:
    """Complex STFT ``[B, n_fft // 2 + 1, T]`` of ``audio [B, N]`` with centred, zero-padded frames.

    Frame ``t`` is centred at sample ``t * hop_length``. ``n_frames`` defaults to
    ``ceil(N / hop_length)``; frames past the end of the signal see zeros. ``window`` is a
    ``[win_length]`` tensor (``win_length <= n_fft``, centred inside the FFT frame).
    """
    if audio.dim() != 2:
        raise ValueError(f"stft_frames takes [B, N] audio, got shape {tuple(audio.shape)}")
    n = audio.shape[-1]
    if n_frames is None:
        n_frames = math.ceil(n / hop_length)
    # pad (or trim) to exactly n_frames * hop so stft(center=True) yields n_frames + 1 frames
    target = n_frames * hop_length
    audio = torch.nn.functional.pad(audio, (0, target - n)) if target >= n else audio[..., :target]
    window = _window(window.shape[-1], window, audio)
    spec = torch.stft(
        audio, n_fft, hop_length, window.shape[-1], window,
        center=True, pad_mode="constant", return_complex=True,
    )
    return spec[..., :n_frames]


def istft_frames(
    spec: torch.Tensor,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    length: int | None = None,
) -> torch.Tensor:
    """Inverse of :func:`stft_frames`: complex ``[B, F, T]`` -> audio ``[B, length]``.

    Weighted overlap-add (the least-squares inverse of Griffin & Lim 1984). ``length``
    defaults to ``T * hop_length``; it needs ``hop_length <= win_length // 2`` so the last
    ``hop_length`` samples are inside the last frame's window.
    """
    if length is None:
        length = spec.shape[-1] * hop_length
    window = _window(window.shape[-1], window, spec)
    return torch.istft(spec, n_fft, hop_length, window.shape[-1], window, center=True, length=length)


def griffin_lim(
    magnitude: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: torch.Tensor | None = None,
    n_iter: int = 32,
    momentum: float = 0.99,
    length: int | None = None,
    generator: torch.Generator | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Estimate a signal whose STFT magnitude is ``magnitude``; fast Griffin-Lim.

    Args:
        magnitude: linear STFT magnitude ``[B, n_fft // 2 + 1, T]`` (not power, not log).
        n_fft, hop_length, win_length: the STFT the magnitude came from (:func:`stft_frames`
            framing: frame ``t`` centred at sample ``t * hop_length``). ``win_length``
            defaults to ``n_fft``.
        window: ``[win_length]`` analysis window; default periodic Hann.
        n_iter: iterations (0 returns the inverse STFT with the initial phase).
        momentum: inertia of Perraudin et al. 2013 (0 = classic Griffin-Lim; 0.99 recommended).
        length: output samples; default ``T * hop_length``.
        generator: random source for the initial phase; if None, a CPU generator seeded with
            ``seed``, so the result is deterministic. The same ``[F, T]`` phase is used for
            every batch item, so decoding a batch equals decoding its items one by one.

    Returns:
        audio ``[B, length]`` in the magnitude's real dtype and device.
    """
    if magnitude.dim() != 3:
        raise ValueError(f"griffin_lim takes [B, F, T] magnitude, got shape {tuple(magnitude.shape)}")
    n_bins, n_frames = magnitude.shape[-2:]
    if n_bins != n_fft // 2 + 1:
        raise ValueError(f"magnitude has {n_bins} frequency bins; n_fft={n_fft} needs {n_fft // 2 + 1}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    win_length = n_fft if win_length is None else win_length
    window = _window(win_length, window, magnitude)
    full_length = n_frames * hop_length
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    phase = 2 * math.pi * torch.rand(n_bins, n_frames, generator=generator, dtype=torch.float64)
    unit = torch.polar(torch.ones_like(phase), phase).to(device=magnitude.device)
    unit = unit.to(torch.complex128 if magnitude.dtype == torch.float64 else torch.complex64)
    current = magnitude * unit  # c_n: the estimate with the target magnitude
    accelerated = current  # t_n: where the next consistency projection starts
    for _ in range(n_iter):
        signal = istft_frames(accelerated, n_fft, hop_length, window, full_length)
        rebuilt = stft_frames(signal, n_fft, hop_length, window, n_frames)
        previous = current
        current = magnitude * torch.sgn(rebuilt)  # sgn(z) = z / |z| (0 at 0): keep the phase only
        # lerp past current by the momentum: current + momentum * (current - previous), one kernel
        accelerated = torch.lerp(previous, current, 1.0 + momentum) if momentum else current
    audio = istft_frames(current, n_fft, hop_length, window, full_length)
    return audio if length is None else _fit(audio, length)


def _fit(audio: torch.Tensor, length: int) -> torch.Tensor:
    if audio.shape[-1] >= length:
        return audio[..., :length]
    return torch.nn.functional.pad(audio, (0, length - audio.shape[-1]))


def spectral_convergence(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """``||reference - estimate||_F / ||reference||_F`` over the last two dims (magnitudes ``[..., F, T]``).

    The usual Griffin-Lim quality measure (Sturmel & Daudet 2011); 0 is perfect, returned per
    leading index (``[B]`` for ``[B, F, T]`` input).
    """
    diff = torch.linalg.matrix_norm(reference - estimate)
    return diff / torch.linalg.matrix_norm(reference).clamp_min(1e-12)
