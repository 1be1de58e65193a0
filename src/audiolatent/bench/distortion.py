"""Distortion metrics: how well audio comes back. One definition each, stated here and in DESIGN.md.

All functions take ``reference`` and ``estimate`` as ``[B, C, N]`` (or ``[B, N]``) float tensors of
equal shape at the same sample rate and return one value per batch item, ``[B]``. Multi-channel
inputs are averaged over channels first.

* :func:`si_snr` — scale-invariant signal-to-noise ratio in dB (Le Roux et al. 2019, "SDR —
  half-baked or well done?"). Both signals are made zero-mean; the target is the projection
  of the estimate on the reference, ``s = (<e, r> / ||r||^2) r``, the noise ``n = e - s``, and
  ``SI-SNR = 10 log10(||s||^2 / ||n||^2)``. Identical signals give ~+inf (capped by ``eps``:
  we report at most ~+140 dB in float32); independent noise gives about ``10 log10(rho^2/(1-rho^2))``,
  strongly negative. Insensitive to gain, sensitive to any phase change: phase-free decoders
  (Griffin-Lim) score near or below 0 dB even when they sound fine.
* :func:`mel_distance` — multi-resolution log-mel L1 (DAC's reconstruction loss used as a
  metric). For each resolution (n_fft, n_mels) in ``MEL_RESOLUTIONS`` (hop = n_fft / 4, Hann
  window, magnitude spectrum, Slaney mel filters up to Nyquist) compute
  ``mean |log10(max(M_ref, 1e-5)) - log10(max(M_est, 1e-5))|`` over mel bins and frames; the
  distance is the mean over resolutions. Unit: log10 magnitude. 0 for identical audio; lower is
  better; white noise vs speech is typically > 0.5.
* :func:`stft_distance` — multi-resolution STFT distance (the spectral-convergence + log-magnitude
  loss of Parallel WaveGAN, Yamamoto et al. 2020, used as a metric). For each ``n_fft`` in
  ``STFT_RESOLUTIONS`` (hop = n_fft / 4, Hann window of n_fft, magnitudes ``S``):
  ``SC = ||S_ref - S_est||_F / ||S_ref||_F`` and
  ``LM = mean |log10(max(S_ref, 1e-5)) - log10(max(S_est, 1e-5))|``; the distance is the mean
  over resolutions of ``SC + LM``. Unitless; 0 for identical audio, lower is better.
* :func:`pesq_wb` — PESQ wide-band (ITU-T P.862.2) via the ``pesq`` package, at 16 kHz (inputs
  are resampled with soxr). MOS-LQO scale, 1.04 (bad) to 4.64 (identical); higher is better.
  NaN, with a warning, where PESQ cannot score (silent or shorter than ~0.25 s).
* :func:`stoi` / :func:`estoi` — short-time objective intelligibility (Taal et al. 2011) and
  extended STOI (Jensen & Taal 2016) via ``pystoi``, which resamples to its native 10 kHz.
  Unitless, ~0..1 (ESTOI may dip below 0); higher is better. NaN with a warning when fewer than
  30 non-silent frames (~0.4 s of speech) remain.
* :func:`f0_rmse_cents` / :func:`voicing_error` — pitch accuracy of speech from our YIN tracker
  (:func:`yin_pitch`): RMSE in cents over frames voiced in both signals, and the voicing decision
  error (fraction of frames whose voiced/unvoiced decision differs; Nakatani et al. 2008).
  Lower is better for both.
* :func:`asr_wer` — word error rate of an ASR transcript of the decoded audio against the true
  transcript (:func:`word_error_rate` over normalised words; ASR by pocketsphinx's English model,
  :func:`asr_transcribe`). Lower is better; absolute values include the recogniser's own errors,
  so compare tokenizers against the WER of the original audio.
* :func:`dnsmos` — DNSMOS P.835 overall quality (Reddy et al. 2022) via ``speechmos``; no
  reference needed; MOS 1..5, higher is better.

Every metric is registered in :mod:`audiolatent.bench.metrics` with its metadata; see also
docs/metrics.md for the known-answer test of each.
"""

from __future__ import annotations

import functools
import re
import warnings

import numpy as np
import torch

from audiolatent.bench.metrics import Metric, MetricUnavailable, register_metric, require_package
from audiolatent.core.audio import resample

__all__ = [
    "si_snr",
    "mel_distance",
    "stft_distance",
    "pesq_wb",
    "stoi",
    "estoi",
    "yin_pitch",
    "f0_rmse_cents",
    "voicing_error",
    "word_error_rate",
    "normalize_words",
    "asr_transcribe",
    "asr_wer",
    "dnsmos",
    "MEL_RESOLUTIONS",
    "STFT_RESOLUTIONS",
    "MetricUnavailable",
]

#: (n_fft, n_mels) pairs of mel_distance; hop is n_fft // 4
MEL_RESOLUTIONS: tuple[tuple[int, int], ...] = ((512, 64), (1024, 80), (2048, 128))
#: n_fft of stft_distance; hop is n_fft // 4, Hann window of n_fft
STFT_RESOLUTIONS: tuple[int, ...] = (512, 1024, 2048)


def _mono(x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 3:
        x = x.mean(1)
    if x.dim() != 2:
        raise ValueError(f"expected [B, C, N] or [B, N] audio, got {tuple(x.shape)}")
    return x.float()


def _check_pair(reference: torch.Tensor, estimate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if reference.shape != estimate.shape:
        raise ValueError(f"reference {tuple(reference.shape)} and estimate {tuple(estimate.shape)} differ in shape")
    return _mono(reference), _mono(estimate)


def si_snr(reference: torch.Tensor, estimate: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SNR in dB, ``[B]``. See the module docstring for the definition."""
    ref, est = _check_pair(reference, estimate)
    ref = ref - ref.mean(-1, keepdim=True)
    est = est - est.mean(-1, keepdim=True)
    scale = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * ref
    noise = est - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


def _log_mel(x: torch.Tensor, sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    from audiolatent.nn.melscale import mel_filterbank

    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(x, n_fft, n_fft // 4, window=window, center=True, pad_mode="constant", return_complex=True).abs()
    fb = mel_filterbank(
        sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, f_min=0.0, f_max=sample_rate / 2, mel_scale="slaney", norm="slaney"
    ).to(x.device)
    mel = torch.einsum("mf,bft->bmt", fb, spec)
    return torch.log10(mel.clamp_min(1e-5))


def mel_distance(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Multi-resolution log-mel L1 distance, ``[B]``. See the module docstring for the definition."""
    ref, est = _check_pair(reference, estimate)
    total = torch.zeros(ref.shape[0], device=ref.device)
    for n_fft, n_mels in MEL_RESOLUTIONS:
        total += (_log_mel(ref, sample_rate, n_fft, n_mels) - _log_mel(est, sample_rate, n_fft, n_mels)).abs().mean((1, 2))
    return total / len(MEL_RESOLUTIONS)


def _magnitude(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=x.device)
    return torch.stft(x, n_fft, n_fft // 4, window=window, center=True, pad_mode="constant", return_complex=True).abs()


def stft_distance(reference: torch.Tensor, estimate: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Multi-resolution STFT distance (spectral convergence + log10-magnitude L1), ``[B]``.

    See the module docstring for the definition; ``eps`` guards ``||S_ref||_F`` of silence.
    """
    ref, est = _check_pair(reference, estimate)
    total = torch.zeros(ref.shape[0], device=ref.device)
    for n_fft in STFT_RESOLUTIONS:
        s_ref, s_est = _magnitude(ref, n_fft), _magnitude(est, n_fft)
        convergence = torch.linalg.vector_norm(s_ref - s_est, dim=(1, 2)) / (torch.linalg.vector_norm(s_ref, dim=(1, 2)) + eps)
        log_magnitude = (torch.log10(s_ref.clamp_min(1e-5)) - torch.log10(s_est.clamp_min(1e-5))).abs().mean((1, 2))
        total += convergence + log_magnitude
    return total / len(STFT_RESOLUTIONS)


# --- perceptual speech metrics (optional packages) ------------------------------------------
def _numpy_items(x: torch.Tensor, sample_rate: int, target_rate: int | None) -> list[np.ndarray]:
    x = _mono(x)
    if target_rate is not None:
        x = resample(x, sample_rate, target_rate)
    return [row.astype(np.float64) for row in x.detach().cpu().numpy()]


def _nan(metric: str, index: int, why: str) -> float:
    warnings.warn(f"{metric}: item {index} gives NaN ({why})", RuntimeWarning, stacklevel=3)
    return float("nan")


def pesq_wb(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """PESQ-WB (P.862.2) MOS-LQO per item, ``[B]``, in [1.04, 4.64]; NaN + warning when unscorable."""
    _check_pair(reference, estimate)
    pesq = require_package("pesq", metric="pesq_wb")
    values = []
    pairs = zip(_numpy_items(reference, sample_rate, 16000), _numpy_items(estimate, sample_rate, 16000))
    for i, (ref, est) in enumerate(pairs):
        if np.abs(ref).max(initial=0.0) < 1e-6:
            values.append(_nan("pesq_wb", i, "silent reference"))
            continue
        try:
            values.append(float(pesq.pesq(16000, ref, est, "wb")))
        except Exception as exc:  # pesq raises its own error types and plain C-level errors
            values.append(_nan("pesq_wb", i, f"{type(exc).__name__}: {exc}"))
    return torch.tensor(values, dtype=torch.float32)


def _stoi(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int, extended: bool) -> torch.Tensor:
    name = "estoi" if extended else "stoi"
    _check_pair(reference, estimate)
    pystoi = require_package("pystoi", metric=name)
    values = []
    pairs = zip(_numpy_items(reference, sample_rate, None), _numpy_items(estimate, sample_rate, None))
    for i, (ref, est) in enumerate(pairs):
        if np.abs(ref).max(initial=0.0) < 1e-6:
            values.append(_nan(name, i, "silent reference"))
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = float(pystoi.stoi(ref, est, sample_rate, extended=extended))
        if any("Not enough STFT frames" in str(w.message) for w in caught):
            value = _nan(name, i, "fewer than 30 non-silent frames (too short or silent)")
        values.append(value)
    return torch.tensor(values, dtype=torch.float32)


def stoi(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """STOI (Taal et al. 2011) per item, ``[B]``, ~[0, 1]; pystoi works at 10 kHz internally."""
    return _stoi(reference, estimate, sample_rate, extended=False)


def estoi(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Extended STOI (Jensen & Taal 2016) per item, ``[B]``, ~[0, 1]; higher is better."""
    return _stoi(reference, estimate, sample_rate, extended=True)


def dnsmos(reference: torch.Tensor | None, estimate: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """DNSMOS P.835 overall MOS of ``estimate`` per item, ``[B]`` (reference ignored), via speechmos."""
    speechmos = require_package("speechmos.dnsmos", pip_name="speechmos", metric="dnsmos")
    values = []
    for est in _numpy_items(estimate, sample_rate, 16000):
        values.append(float(speechmos.run(np.clip(est, -1, 1), sr=16000)["ovrl_mos"]))
    return torch.tensor(values, dtype=torch.float32)


# --- pitch ------------------------------------------------------------------------------------
def yin_pitch(
    audio: torch.Tensor,
    sample_rate: int,
    fmin: float = 50.0,
    fmax: float = 500.0,
    hop_seconds: float = 0.01,
    window_seconds: float = 0.025,
    threshold: float = 0.15,
    silence_db: float = -40.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """F0 track of a mono signal ``[N]`` with YIN (de Cheveigné & Kawahara 2002).

    For each frame (centred every ``hop_seconds``; integration window ``W`` =
    ``window_seconds``; lags ``tau`` up to ``tau_max = ceil(sr / fmin)``):

    1. difference function ``d(tau) = sum_{j<W} (x_j - x_{j+tau})^2``, computed for all lags with
       one FFT cross-correlation and running energy sums;
    2. cumulative mean normalised difference ``d'(0) = 1``,
       ``d'(tau) = d(tau) * tau / sum_{k=1..tau} d(k)``;
    3. the period is the first ``tau >= sr / fmax`` with ``d'(tau) < threshold``, followed down
       to its local minimum (else the global minimum), refined by parabolic interpolation;
    4. the frame is **voiced** when ``d'`` at that period is below ``threshold`` and the frame's
       energy is within ``silence_db`` dB of the loudest frame.

    Written here (numpy-free torch, ~40 lines) rather than pulled from a package so the
    definition is fixed and has no heavy dependency. Returns ``(f0_hz [F], voiced [F] bool)``;
    ``f0`` is 0 on unvoiced frames.
    """
    x = torch.as_tensor(audio).detach().double().reshape(-1)
    hop = max(1, round(hop_seconds * sample_rate))
    tau_min, tau_max = max(2, int(sample_rate / fmax)), int(np.ceil(sample_rate / fmin))
    window = max(round(window_seconds * sample_rate), tau_max)
    length = window + tau_max
    x = torch.nn.functional.pad(x, (length // 2, length - length // 2))
    frames = x.unfold(0, length, hop)  # [F, W + tau_max]
    n_fft = 1 << (length + window).bit_length()
    head = frames[:, :window]
    cross = torch.fft.irfft(torch.fft.rfft(frames, n_fft) * torch.fft.rfft(head, n_fft).conj(), n_fft)[:, : tau_max + 1]
    cumulative = torch.nn.functional.pad(frames.pow(2).cumsum(1), (1, 0))
    energy_head = cumulative[:, window : window + 1]
    energy_lag = cumulative[:, window : window + tau_max + 1] - cumulative[:, : tau_max + 1]
    diff = (energy_head + energy_lag - 2 * cross).clamp_min(0)
    taus = torch.arange(1, tau_max + 1, dtype=torch.float64)
    cmnd = torch.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * taus / diff[:, 1:].cumsum(1).clamp_min(1e-12)
    search = cmnd[:, tau_min : tau_max + 1]
    below = search < threshold
    index = torch.where(below.any(1), below.int().argmax(1), search.argmin(1)) + tau_min
    rows = torch.arange(cmnd.shape[0])
    for _ in range(tau_max):  # descend to the local minimum after the first dip
        step = (index < tau_max) & (cmnd[rows, (index + 1).clamp(max=tau_max)] < cmnd[rows, index])
        if not bool(step.any()):
            break
        index = index + step.long()
    left, centre = cmnd[rows, (index - 1).clamp(min=0)], cmnd[rows, index]
    right = cmnd[rows, (index + 1).clamp(max=tau_max)]
    curvature = left - 2 * centre + right
    shift = torch.where(curvature > 0, 0.5 * (left - right) / curvature.clamp_min(1e-12), torch.zeros_like(centre))
    shift = torch.where((index > tau_min) & (index < tau_max), shift.clamp(-0.5, 0.5), torch.zeros_like(shift))
    f0 = sample_rate / (index.double() + shift)
    power = energy_head[:, 0] / window
    loud = power > power.max().clamp_min(1e-20) * 10 ** (silence_db / 10)
    voiced = (centre < threshold) & loud
    return torch.where(voiced, f0, torch.zeros_like(f0)).float(), voiced


def _pitch_pairs(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int):
    ref, est = _check_pair(reference, estimate)
    for r, e in zip(ref, est):
        yield yin_pitch(r, sample_rate), yin_pitch(e, sample_rate)


def f0_rmse_cents(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """F0 RMSE in cents over frames voiced in both signals, ``[B]``; NaN + warning if none are.

    ``sqrt(mean_frames (1200 * log2(f0_est / f0_ref))^2)``; 100 cents = one semitone.
    """
    values = []
    for i, ((f_ref, v_ref), (f_est, v_est)) in enumerate(_pitch_pairs(reference, estimate, sample_rate)):
        both = v_ref & v_est
        if not bool(both.any()):
            values.append(_nan("f0_rmse_cents", i, "no frame voiced in both signals"))
            continue
        cents = 1200 * torch.log2(f_est[both].double() / f_ref[both].double())
        values.append(float(cents.pow(2).mean().sqrt()))
    return torch.tensor(values, dtype=torch.float32)


def voicing_error(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Voicing decision error, ``[B]`` in [0, 1]: fraction of frames whose voiced flags differ."""
    pairs = _pitch_pairs(reference, estimate, sample_rate)
    values = [float((v_ref != v_est).double().mean()) for (_, v_ref), (_, v_est) in pairs]
    return torch.tensor(values, dtype=torch.float32)


# --- speech recognition ---------------------------------------------------------------------
def normalize_words(text: str) -> list[str]:
    """Lower-case, drop punctuation except in-word apostrophes, split on whitespace."""
    text = re.sub(r"[^\w\s']", " ", text.lower()).replace("_", " ")
    return [w.strip("'") for w in text.split() if w.strip("'")]


def word_error_rate(reference_text: str, hypothesis_text: str) -> float:
    """``(substitutions + deletions + insertions) / reference words``, by word-level Levenshtein.

    Both texts go through :func:`normalize_words` first (numbers are *not* spelled out, so
    "4" vs "four" counts as an error). 0 is perfect; it can exceed 1 with many insertions.
    Raises ValueError for an empty reference.
    """
    ref, hyp = normalize_words(reference_text), normalize_words(hypothesis_text)
    if not ref:
        raise ValueError("word_error_rate: the reference transcript has no words")
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / len(ref)


@functools.lru_cache(maxsize=1)
def _sphinx_decoder():
    pocketsphinx = require_package("pocketsphinx", metric="asr_wer")
    return pocketsphinx.Decoder(samprate=16000, logfn="/dev/null")


def asr_transcribe(audio: torch.Tensor, sample_rate: int) -> str:
    """English transcript of one signal (``[N]`` or ``[C, N]``) by pocketsphinx (CMU Sphinx).

    Raises :class:`MetricUnavailable` when pocketsphinx is not installed.
    """
    x = torch.as_tensor(audio).detach().float()
    x = x.reshape(-1, x.shape[-1]).mean(0)
    x = resample(x, sample_rate, 16000)
    pcm = (x.clamp(-1, 1) * 32767).round().to(torch.int16).numpy().tobytes()
    decoder = _sphinx_decoder()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return hypothesis.hypstr if hypothesis is not None else ""


def asr_wer(reference: torch.Tensor | None, estimate: torch.Tensor, sample_rate: int, transcripts: list[str]) -> torch.Tensor:
    """WER of the ASR transcript of each ``estimate`` item against ``transcripts[i]``, ``[B]``."""
    est = _mono(estimate)
    if len(transcripts) != est.shape[0]:
        raise ValueError(f"asr_wer: {est.shape[0]} signals but {len(transcripts)} transcripts")
    values = [word_error_rate(t, asr_transcribe(e, sample_rate)) for t, e in zip(transcripts, est)]
    return torch.tensor(values, dtype=torch.float32)


# --- registry ---------------------------------------------------------------------------------
def _without_rate(fn):
    @functools.wraps(fn)
    def call(reference, estimate, sample_rate, **_):
        return fn(reference, estimate)

    return call


_INF = float("inf")
for _metric in (
    Metric("si_snr", "distortion", _without_rate(si_snr), "dB", (-_INF, _INF), True,
           "scale-invariant SNR", needs_reference=True),
    Metric("mel_distance", "distortion", mel_distance, "log10 magnitude", (0.0, _INF), False,
           "multi-resolution log-mel L1", needs_reference=True),
    Metric("stft_distance", "distortion", _without_rate(stft_distance), "", (0.0, _INF), False,
           "multi-resolution STFT spectral convergence + log-magnitude L1", needs_reference=True),
    Metric("pesq_wb", "distortion", pesq_wb, "MOS-LQO", (1.0, 4.64), True,
           "PESQ wide-band (P.862.2) at 16 kHz", needs_reference=True, speech_only=True, package="pesq",
           sample_rate=16000),
    Metric("stoi", "distortion", stoi, "", (0.0, 1.0), True,
           "short-time objective intelligibility", needs_reference=True, speech_only=True, package="pystoi",
           sample_rate=10000),
    Metric("estoi", "distortion", estoi, "", (-1.0, 1.0), True,
           "extended STOI", needs_reference=True, speech_only=True, package="pystoi", sample_rate=10000),
    Metric("f0_rmse_cents", "distortion", f0_rmse_cents, "cents", (0.0, _INF), False,
           "F0 RMSE over frames voiced in both (YIN)", needs_reference=True, speech_only=True),
    Metric("voicing_error", "distortion", voicing_error, "fraction", (0.0, 1.0), False,
           "voicing decision error (YIN)", needs_reference=True, speech_only=True),
    Metric("asr_wer", "distortion", asr_wer, "fraction", (0.0, _INF), False,
           "word error rate of pocketsphinx ASR on decoded audio", needs_transcript=True, speech_only=True,
           package="pocketsphinx", sample_rate=16000),
    Metric("dnsmos", "distortion", dnsmos, "MOS", (1.0, 5.0), True,
           "DNSMOS P.835 overall quality (no reference)", speech_only=True, package="speechmos",
           sample_rate=16000),
):
    register_metric(_metric)
