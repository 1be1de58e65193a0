import pytest
import torch

from audiolatent.bench.align import align, estimate_delay


@pytest.mark.parametrize("delay", [0, 37, -53, 400])
def test_delayed_copy_recovers_the_delay_exactly(speech, delay):
    ref = speech[..., 8000:40000]
    est = torch.roll(speech, delay, dims=-1)[..., 8000:40000]  # est[n] = ref[n - delay]
    ref_aligned, est_aligned, found = align(ref, est, max_lag=800)
    assert found == delay
    assert ref_aligned.shape == est_aligned.shape == (1, 1, ref.shape[-1] - abs(delay))
    assert torch.equal(ref_aligned, est_aligned)


@pytest.mark.parametrize("delay", [5, -5])
def test_delay_of_noisy_copy_of_white_noise(delay):
    gen = torch.Generator().manual_seed(0)
    ref = torch.randn(1, 1, 20000, generator=gen)
    est = torch.roll(ref, delay, dims=-1) + torch.randn(1, 1, 20000, generator=gen)  # 0 dB SNR
    found, peak = estimate_delay(ref, est, max_lag=100)
    assert found == delay
    assert 0.5 < peak < 0.9  # 1/sqrt(2) for 0 dB


def test_independent_noise_has_no_strong_peak():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(16000, generator=gen), torch.randn(16000, generator=gen)
    delay, peak = estimate_delay(a, b, max_lag=200)
    assert abs(delay) <= 200
    assert abs(peak) < 0.05  # ~ 1/sqrt(N) = 0.008, max over 401 lags stays small


def test_max_lag_bounds_the_search(speech):
    est = torch.roll(speech, 300, dims=-1)
    delay, _ = estimate_delay(speech, est, max_lag=100)
    assert abs(delay) <= 100


def test_different_lengths_and_batches():
    gen = torch.Generator().manual_seed(2)
    ref = torch.randn(2, 1, 5000, generator=gen)
    est = torch.cat([torch.zeros(2, 1, 12), ref], -1)[..., :5100]
    r, e, d = align(ref, est, 50)
    assert d == 12 and torch.equal(r, e)


def _random_phase(speech: torch.Tensor, seed: int) -> torch.Tensor:
    """``speech`` resynthesised from its STFT magnitudes with random phases (a phase-free decoder)."""
    window = torch.hann_window(512, dtype=torch.float64)
    spec = torch.stft(speech[0, 0].double(), 512, 128, window=window, return_complex=True)
    phase = torch.rand(spec.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 * torch.pi
    return torch.istft(torch.polar(spec.abs(), phase), 512, 128, window=window, length=speech.shape[-1])[None, None]


@pytest.mark.parametrize("delay", [0, 37, -53, 240])
def test_envelope_guided_delay_of_a_phase_free_resynthesis(speech, delay):
    """Same magnitudes, random phases: the waveform correlation is weak at every lag, the envelope
    fixes the lag to within W // 2 (5 ms window at 16 kHz)."""
    est = torch.roll(_random_phase(speech, seed=delay % 7), delay, dims=-1)[..., 8000:48000]
    ref = speech[..., 8000:48000]
    found, peak = estimate_delay(ref, est, max_lag=1280, envelope_window=80)
    assert abs(found - delay) <= 40, (found, delay)
    assert abs(peak) < 0.5  # no waveform match to speak of


def test_the_envelope_guide_fixes_what_the_plain_maximum_gets_wrong(speech):
    """On this phase-free resynthesis the plain waveform maximum lands tens of ms away."""
    est = _random_phase(speech, seed=3)[..., 8000:48000]
    ref = speech[..., 8000:48000]
    plain, _ = estimate_delay(ref, est, max_lag=1280)
    guided, _ = estimate_delay(ref, est, max_lag=1280, envelope_window=80)
    assert abs(guided) <= 40 and abs(plain) > 160, (plain, guided)


@pytest.mark.parametrize("delay", [0, 37, -53, 400])
def test_envelope_guide_keeps_exact_delays_exact(speech, delay):
    ref = speech[..., 8000:40000]
    est = torch.roll(speech, delay, dims=-1)[..., 8000:40000]
    ref_aligned, est_aligned, found = align(ref, est, max_lag=800, envelope_window=80)
    assert found == delay and torch.equal(ref_aligned, est_aligned)


def test_bad_envelope_window():
    with pytest.raises(ValueError, match="envelope_window"):
        estimate_delay(torch.ones(10), torch.ones(10), 2, envelope_window=-1)


@pytest.mark.parametrize("delay", [0, 37, 90])
def test_a_band_limited_waveform_match_keeps_its_exact_delay(speech, delay):
    """A narrow-band waveform codec (Opus at 6 kbps drops 4-8 kHz): the plain maximum is a waveform
    match and is kept, wherever the envelopes of the missing band would put the lag."""
    spec = torch.fft.rfft(speech.double(), dim=-1)
    spec[..., spec.shape[-1] // 2 :] = 0  # nothing above 4 kHz
    narrow = torch.fft.irfft(spec, speech.shape[-1], dim=-1)
    ref = speech[..., 8000:40000]
    est = torch.roll(narrow, delay, dims=-1)[..., 8000:40000]
    found, peak = estimate_delay(ref, est, max_lag=1280, envelope_window=80)
    assert found == delay and peak >= 0.5
