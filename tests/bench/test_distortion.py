import importlib.util

import pytest
import torch

from audiolatent.bench.distortion import (
    asr_transcribe,
    asr_wer,
    estoi,
    f0_rmse_cents,
    mel_distance,
    normalize_words,
    pesq_wb,
    si_snr,
    stft_distance,
    stoi,
    voicing_error,
    word_error_rate,
    yin_pitch,
)


@pytest.fixture(scope="module")
def noise(speech):
    return 0.1 * torch.randn(speech.shape, generator=torch.Generator().manual_seed(0))


def harmonic(f0: float, seconds: float = 1.0, sr: int = 16000, harmonics: int = 5) -> torch.Tensor:
    t = torch.arange(int(seconds * sr), dtype=torch.float64) / sr
    return sum(0.3 / k * torch.sin(2 * torch.pi * k * f0 * t) for k in range(1, harmonics + 1)).float()


def test_identical_signals_score_perfectly(speech):
    assert float(si_snr(speech, speech)) > 60
    assert float(mel_distance(speech, speech, 16000)) == 0.0
    assert float(stft_distance(speech, speech)) == 0.0
    assert float(pesq_wb(speech, speech, 16000)) > 4.4
    assert float(stoi(speech, speech, 16000)) > 0.99
    assert float(estoi(speech, speech, 16000)) > 0.99


def test_white_noise_scores_poorly(speech, noise):
    assert float(si_snr(speech, noise)) < 0
    assert float(pesq_wb(speech, noise, 16000)) < 1.5
    # STOI's clipping step leaves unrelated signals at ~0.3-0.42 (0.42 here), not 0; ESTOI ~0
    assert float(stoi(speech, noise, 16000)) < 0.45
    assert float(estoi(speech, noise, 16000)) < 0.1
    assert float(mel_distance(speech, noise, 16000)) > 0.5
    assert float(stft_distance(speech, noise)) > 1.0


def test_mild_degradation_sits_between(speech, noise):
    degraded = speech + 0.01 * noise  # ~35 dB SNR: PESQ is harsh on white noise
    assert 1.5 < float(pesq_wb(speech, degraded, 16000)) < 4.4
    assert 0.0 < float(stft_distance(speech, degraded)) < float(stft_distance(speech, noise))


def test_pesq_resamples_and_batches(speech):
    at_24k = torch.nn.functional.interpolate(speech, scale_factor=1.5, mode="linear")
    batch = torch.cat([at_24k, at_24k])
    values = pesq_wb(batch, batch, 24000)
    assert values.shape == (2,) and bool((values > 4.4).all())


def test_pesq_and_stoi_give_nan_with_a_warning_for_silence():
    silence = torch.zeros(1, 1, 16000)
    with pytest.warns(RuntimeWarning, match="silent"):
        assert torch.isnan(pesq_wb(silence, silence, 16000)).all()
    with pytest.warns(RuntimeWarning, match="silent"):
        assert torch.isnan(stoi(silence, silence, 16000)).all()
    quiet_start = torch.cat([torch.zeros(1, 1, 16000), 0.1 * torch.randn(1, 1, 1000)], -1)
    with pytest.warns(RuntimeWarning, match="non-silent frames"):
        assert torch.isnan(stoi(quiet_start, quiet_start, 16000)).all()


def test_pesq_too_short_is_nan_not_a_crash(speech):
    short = speech[..., :1000]
    with pytest.warns(RuntimeWarning, match="pesq_wb"):
        assert torch.isnan(pesq_wb(short, short, 16000)).all()


@pytest.mark.parametrize("f0", [200.0, 110.0, 320.0])
def test_yin_pitch_of_a_harmonic_tone_is_within_one_percent(f0):
    track, voiced = yin_pitch(harmonic(f0), 16000)
    inner = voiced[5:-5]
    assert bool(inner.all())
    assert float((track[5:-5][inner] / f0 - 1).abs().max()) < 0.01


def test_yin_pitch_of_a_pure_sine_and_of_noise():
    t = torch.arange(16000) / 16000
    track, voiced = yin_pitch(0.5 * torch.sin(2 * torch.pi * 200 * t), 16000)
    assert float(track[voiced].median()) == pytest.approx(200, rel=0.01)
    _, voiced_noise = yin_pitch(torch.randn(16000, generator=torch.Generator().manual_seed(0)), 16000)
    assert float(voiced_noise.double().mean()) < 0.1


def test_f0_rmse_and_voicing_error():
    a, b = harmonic(200.0)[None, None], harmonic(200.0 * 2 ** (50 / 1200))[None, None]  # +50 cents
    assert float(f0_rmse_cents(a, a, 16000)) == pytest.approx(0.0, abs=1.0)
    assert float(f0_rmse_cents(a, b, 16000)) == pytest.approx(50.0, abs=5.0)
    assert float(voicing_error(a, a, 16000)) == 0.0
    half_silent = a.clone()
    half_silent[..., 8000:] = 0
    assert float(voicing_error(a, half_silent, 16000)) == pytest.approx(0.5, abs=0.05)


def test_word_error_rate_known_strings():
    assert word_error_rate("the cat sat on the mat", "the cat sat on the mat") == 0.0
    assert word_error_rate("The cat, sat.", "the cat sat") == 0.0  # normalisation
    assert word_error_rate("the cat sat on the mat", "the cat sat on a mat") == pytest.approx(1 / 6)  # 1 sub
    assert word_error_rate("a b c d", "a c d") == pytest.approx(1 / 4)  # 1 deletion
    assert word_error_rate("a b", "a x b y") == pytest.approx(2 / 2)  # 2 insertions
    assert word_error_rate("one two", "") == 1.0
    assert normalize_words("Don't stop -- it's 4 o'clock!") == ["don't", "stop", "it's", "4", "o'clock"]
    with pytest.raises(ValueError):
        word_error_rate("", "x")


@pytest.mark.skipif(importlib.util.find_spec("pocketsphinx") is None, reason="pocketsphinx not installed")
def test_asr_on_a_short_real_word():
    import soundfile as sf

    from tests.bench.conftest import SPEECH

    audio, sr = sf.read(str(SPEECH / "conf-locked.flac"), dtype="float32")
    audio = torch.from_numpy(audio)
    text = asr_transcribe(audio, sr)
    assert isinstance(text, str) and text
    wer = asr_wer(None, audio[None, None], sr, transcripts=[text])
    assert float(wer) == 0.0  # the recogniser is deterministic
    noise_text = asr_transcribe(0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(0)), sr)
    assert word_error_rate("this conference is locked", noise_text) >= 0.5
