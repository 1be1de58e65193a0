"""Time alignment of a decoded signal to its reference: integer delay by FFT cross-correlation.

A tokenizer round trip may shift the audio (a decoder with latency, a codec that pads). Sample-
exact metrics (SI-SNR, STFT distances, PESQ to a lesser degree) punish a shift as if it were
distortion, so the bench aligns before measuring.

Definition
----------
The **delay** ``d`` (samples) is the integer lag that maximises the cross-correlation

    ``c(l) = sum_n estimate[n + l] * reference[n]``,   ``-max_lag <= l <= max_lag``,

computed for all lags at once with an FFT of length ``>= len(reference) + len(estimate) - 1``
(no circular wrap-around). Multi-channel / batched inputs are averaged to one mono signal
first, so every item and channel gets the same delay. ``d > 0`` means the estimate lags the
reference (``estimate[n] ~ reference[n - d]``); ``d < 0`` means it leads. The raw (not
absolute) correlation is maximised, so a polarity-inverted estimate is not "aligned" to a
spurious lag of its inverse.

The **peak** reported beside it is ``c(d)`` normalised by the energies of the overlapping
parts, in [-1, 1]: ~1 for a clean delayed copy, ~0 for unrelated signals (independent white
noise of N samples gives about ``1 / sqrt(N)``), a check that the delay is meaningful.

:func:`align` shifts by ``d`` and trims both signals to their overlapping part, so the two
outputs have equal length and sample ``n`` of one pairs with sample ``n`` of the other.
"""

from __future__ import annotations

import torch

__all__ = ["estimate_delay", "align"]


def _mono_1d(x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x).detach().double()
    return x.reshape(-1, x.shape[-1]).mean(0)


def estimate_delay(reference: torch.Tensor, estimate: torch.Tensor, max_lag: int) -> tuple[int, float]:
    """Delay of ``estimate`` relative to ``reference``, in samples, and the normalised peak.

    Args:
        reference, estimate: ``[..., N]`` tensors (lengths may differ); averaged to mono.
        max_lag: largest ``|delay|`` searched, in samples (bounded search: a real decoder delay
            is small, and a bound avoids matching a repeated pattern far away).

    Returns:
        ``(delay, peak)``: ``delay > 0`` when the estimate lags. See the module docstring.
    """
    if max_lag < 0:
        raise ValueError(f"max_lag must be >= 0, got {max_lag}")
    ref, est = _mono_1d(reference), _mono_1d(estimate)
    n_ref, n_est = ref.shape[-1], est.shape[-1]
    if n_ref == 0 or n_est == 0:
        raise ValueError("cannot align empty signals")
    n_fft = 1 << (n_ref + n_est - 1).bit_length()
    # c(l) = sum_n est[n + l] ref[n] = IFFT(EST * conj(REF))[l]; negative lags wrap to the end
    corr = torch.fft.irfft(torch.fft.rfft(est, n_fft) * torch.fft.rfft(ref, n_fft).conj(), n_fft)
    max_pos = min(max_lag, n_est - 1)
    max_neg = min(max_lag, n_ref - 1)
    lags = torch.arange(-max_neg, max_pos + 1)
    values = corr[lags % n_fft]
    best = int(torch.argmax(values))
    delay = int(lags[best])
    ref_part, est_part = _overlap(ref, est, delay)
    norm = torch.sqrt(ref_part.pow(2).sum() * est_part.pow(2).sum())
    peak = float(values[best] / norm) if norm > 0 else 0.0
    return delay, peak


def _overlap(reference: torch.Tensor, estimate: torch.Tensor, delay: int) -> tuple[torch.Tensor, torch.Tensor]:
    ref = reference[..., : reference.shape[-1] - delay] if delay > 0 else reference[..., -delay:]
    est = estimate[..., delay:] if delay > 0 else estimate
    n = min(ref.shape[-1], est.shape[-1])
    return ref[..., :n], est[..., :n]


def align(
    reference: torch.Tensor, estimate: torch.Tensor, max_lag: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Shift ``estimate`` onto ``reference`` and trim both to the part they share.

    Args:
        reference, estimate: ``[..., N_ref]`` and ``[..., N_est]`` with the same leading dims.
        max_lag: largest ``|delay|`` searched, samples.

    Returns:
        ``(reference_aligned, estimate_aligned, delay_samples)``, the first two of equal length:
        for ``delay >= 0``, ``reference[..., n]`` pairs with ``estimate[..., n + delay]``; for
        ``delay < 0``, ``reference[..., n - delay]`` pairs with ``estimate[..., n]``.
    """
    delay, _ = estimate_delay(reference, estimate, max_lag)
    ref, est = _overlap(reference, estimate, delay)
    return ref, est, delay
