"""Centred STFT framing and fast Griffin-Lim (src/audiolatent/tokenizers/griffinlim.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from audiolatent.tokenizers.griffinlim import griffin_lim, istft_frames, spectral_convergence, stft_frames

N_FFT, HOP = 512, 128
WINDOW = torch.hann_window(N_FFT, periodic=True)


def chirp(seconds: float = 1.0, sample_rate: int = 16000) -> torch.Tensor:
    """A speech-like test signal ``[1, N]``: a harmonic chirp (f0 100 -> 300 Hz) with a syllable-rate envelope."""
    t = torch.arange(int(seconds * sample_rate), dtype=torch.float64) / sample_rate
    f0 = 100.0 + 200.0 * t / seconds
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sample_rate
    x = sum((0.3 / k) * torch.sin(k * phase) for k in range(1, 12))
    envelope = 0.6 + 0.4 * torch.sin(2 * math.pi * 4 * t)
    return (x * envelope).float()[None]


def speech_or_chirp() -> torch.Tensor:
    """Up to 1 s of real speech ``[1, N]`` from the package corpus or ../shared/data, else :func:`chirp`."""
    import audiolatent
    from tests.conftest import SHARED_DATA

    for root in (Path(audiolatent.__file__).parent / "corpus", SHARED_DATA):
        files = sorted((root / "speech_real" / "audio").glob("*.flac"))
        if files:
            audio, _ = audiolatent.load_audio(files[0], sample_rate=16000, mono=True)
            return audio[0, :, :16000]
    return chirp()


@pytest.mark.parametrize("n", [1, HOP - 1, HOP, HOP + 1, 1001])
def test_stft_frames_gives_ceil_n_over_hop_frames(n):
    spec = stft_frames(torch.randn(2, n), N_FFT, HOP, WINDOW)
    assert spec.shape == (2, N_FFT // 2 + 1, math.ceil(n / HOP))
    assert spec.is_complex()


def test_frame_t_is_centred_at_sample_t_times_hop():
    x = torch.zeros(1, 10 * HOP)
    x[0, 6 * HOP] = 1.0
    energy = stft_frames(x, N_FFT, HOP, WINDOW).abs().sum(dim=1)[0]
    assert int(energy.argmax()) == 6
    # a periodic Hann window peaks at its centre, value 1: the impulse's spectrum is flat at 1
    torch.testing.assert_close(stft_frames(x, N_FFT, HOP, WINDOW).abs()[0, :, 6], torch.ones(N_FFT // 2 + 1))


def test_appending_silence_leaves_earlier_frames_unchanged():
    x = torch.randn(1, 20 * HOP)
    longer = torch.cat([x, torch.zeros(1, 7 * HOP)], dim=-1)
    torch.testing.assert_close(stft_frames(longer, N_FFT, HOP, WINDOW)[..., :20], stft_frames(x, N_FFT, HOP, WINDOW))


def test_istft_inverts_stft_exactly():
    x = torch.randn(3, 40 * HOP)
    y = istft_frames(stft_frames(x, N_FFT, HOP, WINDOW), N_FFT, HOP, WINDOW)
    assert y.shape == x.shape
    assert float((y - x).abs().max()) < 1e-5


def test_short_window_inside_longer_fft():
    window = torch.hann_window(256, periodic=True)
    x = torch.randn(1, 30 * 64)
    spec = stft_frames(x, 512, 64, window)
    assert float((istft_frames(spec, 512, 64, window) - x).abs().max()) < 1e-5


def test_spectral_convergence_basics():
    mag = torch.rand(2, 5, 7)
    assert spectral_convergence(mag, mag).tolist() == [0.0, 0.0]
    torch.testing.assert_close(spectral_convergence(mag, torch.zeros_like(mag)), torch.ones(2))


def test_more_iterations_converge_further():
    x = speech_or_chirp()
    mag = stft_frames(x, N_FFT, HOP, WINDOW).abs()

    def sc(n_iter, momentum=0.99):
        y = griffin_lim(mag, N_FFT, HOP, window=WINDOW, n_iter=n_iter, momentum=momentum)
        return float(spectral_convergence(mag, stft_frames(y, N_FFT, HOP, WINDOW).abs()))

    one, sixteen, sixty_four = sc(1), sc(16), sc(64)
    assert sixty_four < sixteen < one
    assert sixty_four < 0.1  # measured 0.04 on the chirp, 0.03 on the corpus speech
    # the inertial step (Perraudin et al. 2013) beats classic Griffin-Lim at equal cost
    assert sc(16, momentum=0.99) < sc(16, momentum=0.0)


def test_griffin_lim_is_deterministic_and_seeded():
    mag = stft_frames(chirp(0.25), N_FFT, HOP, WINDOW).abs()
    a = griffin_lim(mag, N_FFT, HOP, n_iter=4)
    assert torch.equal(a, griffin_lim(mag, N_FFT, HOP, n_iter=4))
    assert not torch.equal(a, griffin_lim(mag, N_FFT, HOP, n_iter=4, seed=1))
    generator = torch.Generator().manual_seed(1)
    from_generator = griffin_lim(mag, N_FFT, HOP, n_iter=4, generator=generator)
    assert torch.equal(from_generator, griffin_lim(mag, N_FFT, HOP, n_iter=4, seed=1))


def test_batch_items_are_independent_of_the_batch():
    x = torch.cat([chirp(0.25), 0.3 * torch.randn(1, 4000)])
    mag = stft_frames(x, N_FFT, HOP, WINDOW).abs()
    batched = griffin_lim(mag, N_FFT, HOP, n_iter=8)
    single = griffin_lim(mag[1:], N_FFT, HOP, n_iter=8)
    torch.testing.assert_close(batched[1:], single, atol=1e-5, rtol=0)


def test_length_and_errors():
    mag = stft_frames(chirp(0.1), N_FFT, HOP, WINDOW).abs()
    assert griffin_lim(mag, N_FFT, HOP, n_iter=0).shape == (1, mag.shape[-1] * HOP)
    assert griffin_lim(mag, N_FFT, HOP, n_iter=1, length=1000).shape == (1, 1000)
    with pytest.raises(ValueError, match="frequency bins"):
        griffin_lim(mag, 1024, HOP)
    with pytest.raises(ValueError, match="momentum"):
        griffin_lim(mag, N_FFT, HOP, momentum=1.0)
