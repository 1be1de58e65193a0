"""StreamingSTFT and StreamingISTFTHead: framing, streaming contract, measured lookahead."""

from __future__ import annotations

import pytest
import torch

from audiolatent.nn.latency import measure_lookahead
from audiolatent.nn.melscale import mel_filterbank
from audiolatent.nn.spectral import MelMagnitudePrior, StreamingISTFTHead, StreamingSTFT, causal_window
from audiolatent.testing import check_streaming

HOP, N_FFT = 16, 64


@pytest.mark.parametrize("features", ["log-magnitude", "log-mel"])
@pytest.mark.parametrize("window", ["hann", "asymmetric"])
def test_stft_streams_like_offline(features, window):
    stft = StreamingSTFT(N_FFT, HOP, channels=2, features=features, n_mels=12, window=window)
    x = torch.randn(3, 2, HOP * 20, generator=torch.Generator().manual_seed(0))
    assert stft(x).shape == (3, stft.n_features, 20)
    assert check_streaming(stft, x, HOP) <= 1e-5


@pytest.mark.parametrize("n_samples", [1, HOP - 1, HOP, 5 * HOP + 3])
def test_stft_frame_count_is_ceil(n_samples):
    stft = StreamingSTFT(N_FFT, HOP)
    assert stft(torch.randn(1, 1, n_samples)).shape[-1] == -(-n_samples // HOP) == stft.n_frames(n_samples)


def test_stft_frame_reads_its_causal_window():
    """Frame t covers samples [(t + 1) * hop - n_fft, (t + 1) * hop): an impulse at sample s shows in frames s // hop .. ."""
    stft = StreamingSTFT(N_FFT, HOP, window="asymmetric")
    x = torch.zeros(1, 1, HOP * 12)
    s = 5 * HOP + 3
    x[..., s] = 1.0
    energy = stft(x).exp().sum(1)[0]
    touched = (energy > stft.n_features * stft.eps * 1.01).nonzero().flatten().tolist()
    assert touched == list(range(s // HOP, (s + N_FFT) // HOP))


def test_stft_lookahead_is_measured_zero():
    stft = StreamingSTFT(N_FFT, HOP).double()
    assert measure_lookahead(lambda x: stft(x.double()), HOP * 24, 1, HOP) == stft.lookahead == 0


@pytest.mark.parametrize("window", ["hann", "asymmetric"])
@pytest.mark.parametrize("n_fft", [HOP, 2 * HOP, 4 * HOP + 8])
def test_istft_head_streams_like_offline(window, n_fft):
    torch.manual_seed(0)
    head = StreamingISTFTHead(8, n_fft, HOP, channels=2, window=window)
    z = torch.randn(2, 8, 17)
    assert head(z).shape == (2, 2, 17 * HOP) and head.n_samples(17) == 17 * HOP
    assert check_streaming(head, z, 1) <= 1e-5


@pytest.mark.parametrize("window", ["hann", "asymmetric"])
def test_istft_head_is_causal(window):
    """Sample n depends on frames <= n // hop. The periodic Hann window is 0 at its first sample,
    so there the newest frame reaches sample t * hop + 1 and the probe reads -1."""
    torch.manual_seed(0)
    head = StreamingISTFTHead(8, 4 * HOP, HOP, window=window).double()
    measured = measure_lookahead(lambda z: head(z.double()), 24, 8, HOP, upsample=True)
    assert head.lookahead == 0 and measured == (-1 if window == "hann" else 0)


@pytest.mark.parametrize("subframes", [2, 3])
def test_istft_head_subframes_stream_like_offline_and_stay_causal(subframes):
    """S synthesis frames per input frame: T frames -> T * S * hop samples, chunked == offline, and
    input frame t reaches only samples >= t * S * hop (lookahead 0 at the input frame rate)."""
    torch.manual_seed(0)
    head = StreamingISTFTHead(8, 4 * HOP, HOP, channels=2, window="asymmetric", subframes=subframes)
    z = torch.randn(2, 8, 13)
    assert head(z).shape == (2, 2, 13 * subframes * HOP) and head.n_samples(13) == 13 * subframes * HOP
    assert head.stride == subframes * HOP and head.proj.out_channels == 2 * 2 * (2 * HOP + 1) * subframes
    assert check_streaming(head, z, 1) <= 1e-5
    single = StreamingISTFTHead(8, 4 * HOP, HOP, window="asymmetric", subframes=subframes).double()
    assert measure_lookahead(lambda x: single(x.double()), 24, 8, subframes * HOP, upsample=True) == single.lookahead == 0


def test_istft_head_subframes_are_consecutive_synthesis_frames():
    """The S spectra of input frame t are synthesis frames t * S .. t * S + S - 1: a two-sub-frame head
    on T frames equals a one-sub-frame head on the 2T interleaved frames of its own projection."""
    torch.manual_seed(1)
    two = StreamingISTFTHead(6, 4 * HOP, HOP, subframes=2)
    one = StreamingISTFTHead(6, 4 * HOP, HOP, subframes=1)  # its projection becomes the identity below
    z = torch.randn(1, 6, 9)
    n_bins = 2 * HOP + 1
    per_frame = two.proj(z).view(1, 2 * n_bins, 2, 9)  # channels ((c * 2 + k) * n_bins + bin) * S + s
    interleaved = per_frame.permute(0, 1, 3, 2).reshape(1, 2 * n_bins, 18)  # [.., t * S + s]
    with torch.no_grad():
        one.proj = torch.nn.Conv1d(2 * n_bins, 2 * n_bins, 1).requires_grad_(False)
        one.proj.weight.copy_(torch.eye(2 * n_bins)[:, :, None])
        one.proj.bias.zero_()
        torch.testing.assert_close(two(z), one(interleaved), atol=1e-5, rtol=0)


@pytest.mark.parametrize("subframes", [2, 4])
def test_subframe_head_warm_start_samples_the_old_spectrum_at_its_bins(subframes):
    """Sub-frame s, bin m of the warm-started head = the single-frame head's bin m * S, with the
    phase advanced by 2 pi m s hop / n_fft (a shift by s synthesis hops)."""
    torch.manual_seed(2)
    old = StreamingISTFTHead(8, 4 * HOP * subframes, HOP * subframes, channels=2)
    new = StreamingISTFTHead(8, 4 * HOP, HOP, channels=2, subframes=subframes)
    new.warm_start_from_single_frame(old.proj.weight, old.proj.bias)
    z = torch.randn(1, 8, 5)
    with torch.no_grad():
        a, b = old.spectrum(z), new.spectrum(z)  # [1, 2, 5, 4 HOP S / 2 + 1], [1, 2, 5 S, 2 HOP + 1]
    m = torch.arange(new.n_bins)
    for s in range(subframes):
        expected = a[:, :, :, m * subframes] * torch.polar(torch.ones(new.n_bins), 2 * torch.pi * m * s * HOP / new.n_fft)
        torch.testing.assert_close(b[:, :, s::subframes], expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="single-frame head with n_fft"):
        new.warm_start_from_single_frame(new.proj.weight, new.proj.bias)


def test_istft_inverts_the_stft_of_the_same_window():
    """With the true spectrum of analysis frames and the same window, normalised causal OLA is exact
    (after the first n_fft - hop samples, which see fewer frames)."""
    n_fft, hop = 4 * HOP, HOP
    head = StreamingISTFTHead(4, n_fft, hop, window="hann")
    x = torch.randn(1, 1, hop * 30, generator=torch.Generator().manual_seed(3))
    frames = torch.nn.functional.pad(x, (n_fft - hop, 0)).unfold(-1, n_fft, hop) * head.window  # frame t ends at (t+1)*hop
    spectrum = torch.fft.rfft(frames, dim=-1)
    synthesis = torch.fft.irfft(spectrum, n=n_fft, dim=-1) * head.window
    out = torch.nn.functional.fold(synthesis[0].transpose(1, 2), (1, 29 * hop + n_fft), (1, n_fft), stride=(1, hop)).flatten()
    y = out[: 30 * hop] * head.inverse_envelope.repeat(30)
    # frame t starts at sample t * hop in the output but at (t + 1) * hop - n_fft in the input: a delay of n_fft - hop
    delay = n_fft - hop
    torch.testing.assert_close(y[2 * delay :], x.flatten()[delay : 30 * hop - delay], atol=1e-5, rtol=0)


def test_asymmetric_window_peaks_at_the_hop():
    w = causal_window("asymmetric", 4 * HOP, HOP, synthesis=True)
    assert int(w.argmax()) == HOP - 1 and w.shape == (4 * HOP,)
    assert torch.equal(causal_window("asymmetric", 4 * HOP, HOP, synthesis=False), w.flip(0))


MEL_16K = dict(sample_rate=16000, analysis_n_fft=1024, win_length=1024, n_mels=80, f_min=0.0, f_max=8000.0)


def _prior(power: float = 1.0, n_fft: int = 640) -> MelMagnitudePrior:
    return MelMagnitudePrior(n_fft, causal_window("asymmetric", n_fft, 160, synthesis=True), power=power, **MEL_16K)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_mel_prior_is_exact_on_a_flat_spectrum(power):
    """A flat analysis magnitude a gives ln(a * sum(w_s) / sum(w_a)) at every synthesis bin."""
    prior = _prior(power)
    bank = mel_filterbank(sample_rate=16000, n_fft=1024, n_mels=80, f_max=8000.0)
    a = torch.tensor([0.01, 0.5, 3.0])
    mel = (bank.sum(1)[None, :, None] * a.pow(power)[:, None, None]).expand(3, 80, 5)  # [B, n_mels, T]
    out = prior(mel.log())
    assert out.shape == (3, 5, 321)
    window_ratio = float(causal_window("asymmetric", 640, 160, synthesis=True).sum()) / 512.0  # periodic Hann 1024 sums to 512
    expected = (a * window_ratio).log()[:, None, None].expand_as(out)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def _log_mel_16k(x: torch.Tensor) -> torch.Tensor:
    bank = mel_filterbank(sample_rate=16000, n_fft=1024, n_mels=80, f_max=8000.0)
    spec = torch.stft(x, 1024, 160, 1024, torch.hann_window(1024), return_complex=True).abs()
    return (bank @ spec).clamp_min(1e-5).log()[None]


def test_mel_prior_puts_a_tone_where_it_is():
    t = torch.arange(16000) / 16000.0
    prior = _prior()(_log_mel_16k(0.3 * torch.sin(2 * torch.pi * 1000.0 * t)))[0]  # [T, 321]
    peak_hz = float(prior[20:-20].mean(0).argmax()) * 16000 / 640
    assert abs(peak_hz - 1000.0) < 80.0, peak_hz  # the mel bands near 1 kHz are ~66 Hz apart


def test_mel_prior_follows_a_coloured_spectrum():
    """Noise through a one-pole low-pass (a smooth envelope falling ~25 dB to 8 kHz): the prior's
    envelope lies within a tenth of the flat spectrum's error from the true synthesis-grid one."""
    noise = torch.randn(32000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = torch.zeros_like(noise)
    for n in range(1, noise.numel()):  # y[n] = 0.9 y[n-1] + x[n]
        x[n] = 0.9 * x[n - 1] + noise[n]
    x = (0.01 * x).float()
    prior = _prior()(_log_mel_16k(x))[0][20:-20]
    w = causal_window("asymmetric", 640, 160, synthesis=True)
    frames = x[160:].unfold(0, 640, 160)[20 : 20 + prior.shape[0]]  # synthesis frame t peaks at (t + 1) * hop
    true = torch.fft.rfft(frames * w, dim=-1).abs().mean(0).log()  # the envelope: averaged over frames
    estimate = prior[: frames.shape[0]].exp().mean(0).log()
    # the prior scales for tones (sum of the windows); noise scales with their energies instead
    noise_scale = 0.5 * float((w.square().sum() / torch.hann_window(1024).square().sum()).log())
    estimate = estimate - float((w.sum() / 512.0).log()) + noise_scale
    error = (estimate - true)[4:].abs().mean()  # above 100 Hz
    flat = (true - true[4:].mean())[4:].abs().mean()
    assert error < 0.1 * flat, (error, flat)


def test_head_prior_scales_the_predicted_magnitude():
    head = StreamingISTFTHead(8, N_FFT, HOP, subframes=2)
    x = torch.randn(2, 8, 5)
    prior = torch.randn(2, 5, head.n_bins)
    expected = head.spectrum(x) * prior.repeat_interleave(2, dim=1).unsqueeze(1).exp()
    torch.testing.assert_close(head.spectrum(x, prior), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="prior must be"):
        head.spectrum(x, prior[:, :4])


@pytest.mark.parametrize("subframes", [1, 2])
@pytest.mark.parametrize("window", ["hann", "asymmetric"])
def test_accumulated_phase_head_streams_like_offline_and_stays_causal(subframes, window):
    torch.manual_seed(0)
    head = StreamingISTFTHead(8, 4 * HOP, HOP, channels=2, window=window, subframes=subframes, phase="accumulated")
    z = torch.randn(2, 8, 23)
    assert check_streaming(head, z, 1, seed=1) <= 1e-5
    measured = measure_lookahead(lambda x: head.double()(x.double()), 24, 8, subframes * HOP, upsample=True)
    assert measured == (-1 if window == "hann" else 0)  # as the absolute head (test_istft_head_is_causal)


def _one_bin_head(phase: str, k: int) -> StreamingISTFTHead:
    """A head whose every frame is bin ``k`` at magnitude 1 and phase (or phase deviation) 0."""
    head = StreamingISTFTHead(4, 4 * HOP, HOP, window="hann", phase=phase)
    with torch.no_grad():
        head.proj.weight.zero_()
        bias = torch.full((2, head.n_bins), -30.0)
        bias[0, k], bias[1] = 0.0, 0.0
        head.proj.bias.copy_(bias.flatten())
    return head


def test_accumulated_phase_makes_a_steady_tone_where_absolute_phase_cancels():
    """Bin 3 of a 64-point frame with hop 16 advances 3/4 of a turn per hop: with zero deviations
    the accumulated head overlap-adds frames in phase into a pure tone of constant amplitude, while
    the absolute head (the same phase in every frame) lets them cancel."""
    k, n_frames = 3, 40
    z = torch.zeros(1, 4, n_frames)
    settled = slice(4 * HOP, n_frames * HOP)  # after the first n_fft - hop samples
    with torch.no_grad():
        tone = _one_bin_head("accumulated", k)(z)[0, 0, settled]
    n = torch.arange(n_frames * HOP)[settled].double()
    reference = torch.cos(2 * torch.pi * k * n / (4 * HOP))
    gain = float((tone.double() @ reference) / (reference @ reference))
    torch.testing.assert_close(tone.double(), gain * reference, atol=1e-6 * abs(gain) + 1e-9, rtol=0)
    with torch.no_grad():
        absolute = _one_bin_head("absolute", k)(z)[0, 0, settled].double()
    quadrature = torch.sin(2 * torch.pi * k * n / (4 * HOP))
    fit = torch.linalg.lstsq(torch.stack([reference, quadrature], 1), absolute[:, None]).solution
    residual = absolute - torch.stack([reference, quadrature], 1) @ fit[:, 0]
    assert float(residual.square().sum() / absolute.square().sum()) > 0.5  # mostly not the tone
