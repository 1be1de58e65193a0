"""Crop augmentations (audiolatent/data/augment.py): each does what its definition says, is the
identity at its neutral setting, and CropAugmentation draws are seeded and independent."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiolatent.data import DataError
from audiolatent.data.augment import (
    CropAugmentation,
    add_noise,
    coloured_noise,
    eq_control_frequencies,
    eq_curve_db,
    equalise,
    lowpass,
    pitch_shift,
    reverberate,
    synthetic_impulse_response,
    time_stretch,
)

RATE = 16000


def sine(freq_hz: float, seconds: float = 1.0, amplitude: float = 0.3) -> torch.Tensor:
    t = torch.arange(int(seconds * RATE), dtype=torch.float64) / RATE
    return (amplitude * torch.sin(2 * torch.pi * freq_hz * t)).float()[None]


def white(seconds: float = 4.0, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((1, int(seconds * RATE))).astype(np.float32)) * 0.1


def peak_hz(x: torch.Tensor) -> float:
    """Frequency of the spectral peak of ``x [1, N]``, to 1/8 of a bin (8x zero-padded FFT)."""
    y = x[0].double().numpy()
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y)), n=8 * len(y)))
    return float(np.argmax(spectrum) * RATE / (8 * len(y)))


def welch(x: torch.Tensor, n_fft: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``(frequencies, mean power spectrum)`` of ``x [1, N]`` over Hann frames with half overlap."""
    y = x[0].double().numpy()
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[:: n_fft // 2]
    power = (np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=-1)) ** 2).mean(axis=0)
    return np.fft.rfftfreq(n_fft, 1 / RATE), power


@pytest.mark.parametrize("semitones", [-3.0, -1.0, 2.0, 3.0])
def test_pitch_shift_moves_frequency_and_keeps_duration(semitones):
    x = sine(1000)
    y = pitch_shift(x, RATE, semitones)
    assert y.shape == x.shape and y.dtype == torch.float32
    expected = 1000 * 2 ** (semitones / 12)
    assert abs(peak_hz(y) - expected) / expected < 0.01
    # The phase-locked vocoder keeps a steady partial's level (no phasiness dip).
    assert float(y[:, 2000:-2000].pow(2).mean() / x[:, 2000:-2000].pow(2).mean()) == pytest.approx(1.0, abs=0.02)


def test_pitch_shift_zero_is_identity_and_time_stretch_keeps_pitch():
    x = sine(700)
    assert pitch_shift(x, RATE, 0.0) is x
    for stretch in (0.8, 1.25):
        y = time_stretch(x, RATE, stretch)
        assert y.shape == (1, round(RATE * stretch))
        assert abs(peak_hz(y) - 700) < 7
    stereo = torch.cat([sine(500), sine(900)])
    shifted = pitch_shift(stereo, RATE, 12.0)
    assert shifted.shape == stereo.shape
    assert abs(peak_hz(shifted[:1]) - 1000) < 10 and abs(peak_hz(shifted[1:]) - 1800) < 18


def test_equaliser_stays_within_its_gains_and_zero_is_identity():
    x = white()
    gains = np.random.default_rng(1).uniform(-6, 6, len(eq_control_frequencies(RATE)))
    y = equalise(x, RATE, tuple(gains))
    assert y.shape == x.shape
    freqs, p_in = welch(x)
    _, p_out = welch(y)
    measured = 10 * np.log10(p_out[1:-1] / p_in[1:-1])
    assert np.abs(measured).max() <= 6.0 + 0.3  # never more than the configured 6 dB
    assert np.abs(measured).max() > 3.0  # and it does change the spectrum
    curve = eq_curve_db(torch.from_numpy(freqs[1:-1]), RATE, tuple(gains)).numpy()
    assert np.abs(curve).max() <= 6.0 and np.abs(measured - curve).max() < 0.5
    assert torch.equal(equalise(x, RATE, (0.0,) * len(gains)), x)
    assert eq_control_frequencies(RATE) == [125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0]


@pytest.mark.parametrize("cutoff", [3400.0, 4000.0, 7000.0])
def test_band_limit_removes_energy_above_the_cutoff(cutoff):
    x = white()
    y = lowpass(x, RATE, cutoff)
    freqs, p_in = welch(x)
    _, p_out = welch(y)
    above, passband = freqs > cutoff, freqs < 0.85 * cutoff
    assert 10 * np.log10(p_out[above].sum() / p_in[above].sum()) < -30
    assert np.abs(10 * np.log10(p_out[passband] / p_in[passband])).max() < 0.1
    # At or above Nyquist nothing is filtered; one cutoff per row.
    torch.testing.assert_close(lowpass(x, RATE, RATE / 2), x, atol=1e-6, rtol=0)
    rows = lowpass(torch.cat([x, x]), RATE, torch.tensor([cutoff, math.inf]))
    torch.testing.assert_close(rows[0], y[0])
    torch.testing.assert_close(rows[1], x[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("colour", ["white", "pink"])
@pytest.mark.parametrize("snr_db", [10.0, 25.0, 40.0])
def test_noise_is_added_at_the_requested_snr(colour, snr_db):
    x = sine(440, seconds=2.0)
    y = add_noise(x, snr_db, colour, np.random.default_rng(0))
    noise = (y - x).double()
    measured = 10 * math.log10(float(x.double().pow(2).mean()) / float(noise.pow(2).mean()))
    assert measured == pytest.approx(snr_db, abs=0.01)
    silent = torch.zeros(1, 100)
    assert torch.equal(add_noise(silent, snr_db, colour, np.random.default_rng(0)), silent)


def test_noise_colours_have_their_spectra():
    def octave_ratio_db(colour):  # power in 2-4 kHz over power in 0.5-1 kHz
        freqs, power = welch(coloured_noise((1, 8 * RATE), colour, np.random.default_rng(2)))
        band = lambda lo, hi: power[(freqs >= lo) & (freqs < hi)].sum()  # noqa: E731
        return 10 * math.log10(band(2000, 4000) / band(500, 1000))

    assert octave_ratio_db("white") == pytest.approx(6.0, abs=0.5)  # twice the bandwidth
    assert octave_ratio_db("pink") == pytest.approx(0.0, abs=0.5)  # equal power per octave
    with pytest.raises(ValueError, match="noise colour"):
        coloured_noise((1, 10), "brown", np.random.default_rng(0))


def decay_time(h: np.ndarray) -> float:
    """RT60 from the Schroeder energy-decay curve of ``h``, fitted from -5 to -25 dB (T20 x 3)."""
    energy = np.cumsum((h**2)[::-1])[::-1]
    edc = 10 * np.log10(energy / energy[0])
    t = np.arange(len(h)) / RATE
    fit = (edc <= -5) & (edc >= -25)
    slope = np.polyfit(t[fit], edc[fit], 1)[0]
    return -60.0 / slope


@pytest.mark.parametrize("rt60", [0.15, 0.3, 0.6])
def test_reverberation_decays_in_rt60_and_keeps_the_direct_path(rt60):
    h = synthetic_impulse_response(RATE, rt60, 5.0, np.random.default_rng(0))
    assert h[0] == 1.0 and 10 * math.log10(1.0 / np.sum(h[1:] ** 2)) == pytest.approx(5.0)
    x = torch.zeros(1, 2 * RATE)
    x[0, 1000] = 0.5
    y = reverberate(x, RATE, rt60, 5.0, np.random.default_rng(0))
    assert y.shape == x.shape and int(y.abs().argmax()) == 1000  # the direct path is the loudest sample
    assert float(y.pow(2).mean()) == pytest.approx(float(x.pow(2).mean()), rel=1e-5)  # normalised to the dry RMS
    assert float(y[0, :1000].abs().max()) < 1e-9  # causal (to FFT rounding)
    assert decay_time(y[0, 1001:].double().numpy()) == pytest.approx(rt60, rel=0.1)


def test_reverberation_with_zero_rt60_and_augmentation_with_zero_probability_are_identities():
    x = white(1.0)
    assert reverberate(x, RATE, 0.0, 5.0, np.random.default_rng(0)) is x
    off = CropAugmentation(pitch_semitones=(-3, 3), eq_db=6, band_limit_hz=(3400, 7000), noise_snr_db=(10, 40),
                           reverb_rt60=(0.1, 0.6), pitch_prob=0, eq_prob=0, band_limit_prob=0, noise_prob=0,
                           reverb_prob=0)
    params = off.draw([0, 0, 0])
    assert params.pitch_ratio == 1.0 and (params.semitones, params.eq_gains_db, params.cutoff_hz, params.snr_db,
                                          params.rt60) == (None,) * 5
    assert torch.equal(off.apply(x, RATE, params), x)
    assert not CropAugmentation().active and not CropAugmentation(eq_db=0).active
    assert CropAugmentation.from_options({"eq_db": 0.0}) is None


def test_draws_are_seeded_independent_and_in_range():
    full = CropAugmentation(pitch_semitones=(-3, 3), eq_db=6, band_limit_hz=(3400, 7000), noise_snr_db=(10, 40),
                            reverb_rt60=(0.1, 0.6), reverb_drr_db=(0, 10))
    a, b = full.draw([5, 1, 7]), full.draw([5, 1, 7])
    assert a == b and a != full.draw([5, 2, 7]) and a != full.draw([5, 1, 8])
    assert -3 <= a.semitones <= 3 and 3400 <= a.cutoff_hz <= 7000 and 10 <= a.snr_db <= 40 and 0.1 <= a.rt60 <= 0.6
    assert all(abs(g) <= 6 for g in a.eq_gains_db) and a.noise_colour in ("white", "pink")
    pitch_only = CropAugmentation(pitch_semitones=(-3, 3)).draw([5, 1, 7])
    assert pitch_only.semitones == a.semitones  # each transform draws from its own stream
    x = white(1.0)
    y = full.apply(x, RATE, a)
    assert y.shape == x.shape and y.dtype == torch.float32 and torch.isfinite(y).all()
    torch.testing.assert_close(full.apply(x, RATE, a), y, rtol=0, atol=0)
    halves = [CropAugmentation(noise_snr_db=(10, 40), noise_prob=0.5).draw([0, 0, i]).snr_db is None for i in range(200)]
    assert 70 < sum(halves) < 130


@pytest.mark.parametrize("kwargs, message", [
    (dict(pitch_semitones=(3, -3)), "pitch_semitones must satisfy"),
    (dict(band_limit_hz=(0, 4000)), "band_limit_hz must satisfy 0 < low"),
    (dict(reverb_rt60=(-0.1, 0.5)), "reverb_rt60 must satisfy 0 <= low"),
    (dict(reverb_drr_db=None), "reverb_drr_db must be"),
    (dict(noise_snr_db="loud"), "noise_snr_db must be a"),
    (dict(eq_db=-1), "eq_db must be a number >= 0"),
    (dict(eq_db=True), "eq_db must be a number"),
    (dict(noise_prob=1.5), "noise_prob must be a probability"),
])
def test_bad_settings_are_data_errors(kwargs, message):
    with pytest.raises(DataError, match=message):
        CropAugmentation(**kwargs)
