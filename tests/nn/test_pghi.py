"""RTPGHI: phase from magnitude, checked against signals whose phase is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiolatent.nn.pghi import PhaseState, rtpghi
from audiolatent.nn.spectral import StreamingISTFTHead

N_FFT, HOP = 320, 80


def _frames(x: torch.Tensor, n_fft: int = N_FFT, hop: int = HOP) -> torch.Tensor:
    """Causal-framing STFT ``[T, F]`` of ``x [N]`` (frame ``j`` starts at sample ``j * hop``), as the head frames."""
    frames = x.double().unfold(-1, n_fft, hop)
    return torch.fft.rfft(frames * torch.hann_window(n_fft, dtype=torch.float64), dim=-1)


def _overlap_add(spec: torch.Tensor, n: int, n_fft: int = N_FFT, hop: int = HOP) -> torch.Tensor:
    window = torch.hann_window(n_fft, dtype=torch.float64)
    frames = torch.fft.irfft(spec, n=n_fft, dim=-1) * window
    out = torch.zeros(n + n_fft)
    norm = torch.zeros(n + n_fft, dtype=torch.float64)
    for j in range(frames.shape[0]):
        out[j * hop : j * hop + n_fft] += frames[j].float()
        norm[j * hop : j * hop + n_fft] += window.square()
    return (out[:n].double() / norm[:n].clamp_min(1e-3)).float()


def test_a_stationary_sinusoid_advances_by_its_frequency():
    omega = 2 * math.pi * 437.0 / 16000  # between bins (50 Hz spacing)
    x = torch.cos(omega * torch.arange(8000, dtype=torch.float64)) + 0.0
    spec = _frames(x)
    phase = rtpghi(spec.abs().clamp_min(1e-12).log()[None].numpy(), N_FFT, HOP)[0]
    peak = int(spec.abs()[10].argmax())
    true_step = np.diff(np.angle(spec[:, peak].numpy()))
    ours_step = np.diff(phase[:, peak])
    wrap = lambda a: np.remainder(a + np.pi, 2 * np.pi) - np.pi  # noqa: E731
    # the Gaussian stand-in for Hann misreads a partial 13 Hz off its bin centre by ~4 Hz
    error_hz = np.abs(wrap(ours_step[2:] - true_step[2:])).max() / HOP * 16000 / (2 * np.pi)
    assert error_hz < 5.0
    assert abs(wrap(ours_step[5] - omega * HOP)) / HOP * 16000 / (2 * np.pi) < 5.0
    # and the neighbours of the peak keep their phase relation to it (frequency integration)
    for k in (peak - 1, peak + 1):
        true_rel = np.angle(spec[20, k].numpy()) - np.angle(spec[20, peak].numpy())
        assert abs(wrap(phase[20, k] - phase[20, peak] - true_rel)) < 0.15


@pytest.mark.parametrize("n_fft, hop", [(320, 80), (640, 160), (1024, 160)])  # the grids the decoders use
def test_speech_from_its_true_magnitude_scores_like_the_paper(n_fft, hop):
    """The known answer of the module docstring: PESQ-WB of the true magnitude with RTPGHI phase,
    against random phase, on a real voice, on each synthesis grid of the shipped decoders
    (the pghi vocoder: 640 / 160; mel-16k-pghi: 1024 / 160)."""
    pytest.importorskip("pesq")
    from audiolatent.bench.distortion import pesq_wb
    from audiolatent.core.audio import load_audio
    from audiolatent.data.corpus import builtin_corpus
    from audiolatent.data.manifest import read_manifest

    entry = next(e for e in read_manifest(builtin_corpus("speech_real")) if e.split == "test" and e.duration >= 2.0)
    x = load_audio(entry.path, sample_rate=16000, mono=True)[0].reshape(-1)[: 3 * 16000]
    spec = _frames(torch.nn.functional.pad(x, (0, n_fft)), n_fft, hop)
    magnitude = spec.abs()
    ours = torch.from_numpy(rtpghi(magnitude.clamp_min(1e-12).log()[None].numpy(), n_fft, hop)[0])
    rand = torch.rand(magnitude.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 * math.pi
    score = lambda phase: float(pesq_wb(x[None], _overlap_add(torch.polar(magnitude, phase), x.numel(), n_fft, hop)[None], 16000)[0])  # noqa: E731
    good, bad = score(ours), score(rand)
    assert good > 3.4, good
    assert bad < 2.0, bad
    assert score(spec.angle()) > 4.3  # the framing itself is exact


def test_chunked_integration_equals_one_pass_bit_for_bit():
    gen = torch.Generator().manual_seed(0)
    log_mag = (torch.randn(3, 57, N_FFT // 2 + 1, generator=gen, dtype=torch.float64) - 2).numpy()
    log_mag[1, :5] = -80.0  # a silent start: every bin below tol
    whole = rtpghi(log_mag, N_FFT, HOP)
    state, parts, start = PhaseState(), [], 0
    for size in (1, 7, 3, 20, 26):
        parts.append(rtpghi(log_mag[:, start : start + size], N_FFT, HOP, state))
        start += size
    assert np.array_equal(np.concatenate(parts, axis=1), whole)
    assert np.all(whole[1, :5] == whole[1, 0])  # below tol: the fixed phase


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="161"):
        rtpghi(np.zeros((1, 4, 100)), N_FFT, HOP)
    with pytest.raises(ValueError, match="Hann"):
        StreamingISTFTHead(8, N_FFT, HOP, window="asymmetric", phase="pghi")
    head = StreamingISTFTHead(8, N_FFT, HOP, window="hann", phase="absolute")
    with pytest.raises(ValueError, match="phase_reference"):
        head(torch.zeros(1, 8, 3), phase_reference=torch.zeros(1, 1, 240))


def test_head_with_the_reference_phase_and_magnitude_rebuilds_the_reference():
    """Training's known answer: a ``pghi`` head whose predicted log magnitude is the reference's own
    (here through ``prior``, the projection zeroed) synthesises the reference, so the losses on its
    output see the magnitude alone; gradients reach the magnitude."""
    head = StreamingISTFTHead(4, N_FFT, HOP, window="hann", phase="pghi")
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.zero_()
    gen = torch.Generator().manual_seed(1)
    t = 60
    ref = torch.randn(2, 1, t * HOP + N_FFT, generator=gen)
    spec = torch.stack([_frames(r[0])[:t] for r in ref])  # [B, T, F]
    prior = spec.abs().clamp_min(1e-12).log().float().requires_grad_(True)
    y = head(torch.zeros(2, 4, t), prior, phase_reference=ref)
    start = N_FFT - HOP  # the causal overlap-add's first samples have fewer frames
    assert (y[..., start:] - ref[..., start : t * HOP]).abs().max() < 1e-4
    y.square().sum().backward()
    assert prior.grad is not None and prior.grad.abs().sum() > 0
    # without a reference the phase is integrated: a different, still finite, signal
    with torch.no_grad():
        z = head(torch.zeros(2, 4, t), prior)
    assert torch.isfinite(z).all() and (z - y).abs().max() > 1e-2
