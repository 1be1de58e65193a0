"""Training-crop augmentations: pitch shift, equalisation, band limiting, noise, room reverberation.

Each transform is a pure function of a ``[C, N]`` float32 tensor (channels, samples at
``sample_rate`` Hz) and its parameters, returns ``[C, N]`` (the duration never changes), and is
the identity at its neutral parameter (0 semitones, 0 dB, a cutoff at or above Nyquist, no
noise, RT60 0):

* :func:`pitch_shift` by ``s`` semitones (ratio ``r = 2 ** (s / 12)``) with tempo kept: a phase
  vocoder (Flanagan & Golden 1966; Laroche & Dolson 1999, without phase locking) stretches the
  crop to ``round(N * r)`` samples at the same pitch, then soxr plays it ``r`` times faster.
  Formants move with the pitch, as with speed perturbation, but time does not.
* :func:`equalise`: a zero-phase filter whose gain in dB is given at octave-spaced control
  frequencies (:func:`eq_control_frequencies`: 125, 250, 500, ... Hz up to Nyquist), joined by
  raised-cosine interpolation in log frequency and held flat below the first and above the last;
  every gain on the curve lies between the smallest and largest control gain.
* :func:`lowpass`: zero-phase low-pass, gain 1 up to ``(1 - transition) * cutoff``, a
  raised-cosine fall to 0 at ``cutoff`` and 0 above (``transition=0``: brick-wall).
* :func:`add_noise`: white (flat spectrum) or pink (power ~ 1/f) Gaussian noise scaled so that
  ``10 log10(mean(x^2) / mean(noise^2))`` is exactly the requested SNR (a silent crop is left as it is).
* :func:`reverberate`: convolution with :func:`synthetic_impulse_response` (a unit direct path
  followed by Gaussian noise whose amplitude falls 60 dB in RT60 seconds, its energy set by a
  direct-to-reverberant ratio), cut to ``N`` samples and scaled back to the dry crop's RMS.

The zero-phase filters multiply the real FFT of the crop, zero-padded to at least twice its
length so that the filter's (short, symmetric) impulse response does not wrap around. They are
torch operations, so the training losses reuse :func:`lowpass` on signals that need a gradient.

:class:`CropAugmentation` holds the ranges and probabilities of all five (each off by default),
draws one crop's parameters from a seed sequence (:meth:`CropAugmentation.draw`, so a crop's
augmentation is a function of ``(seed, epoch, index)`` as its window is) and applies them in a
fixed order: pitch, reverberation, noise, equalisation, band limit, i.e. talker, room, background,
microphone, channel. Example::

    aug = CropAugmentation(pitch_semitones=(-3, 3), noise_snr_db=(10, 40), noise_prob=0.5)
    params = aug.draw([seed, epoch, index])
    crop = aug.apply(crop, 16000, params)      # [C, N] -> [C, N]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import soxr
import torch

from audiolatent.data.manifest import DataError

__all__ = ["AugmentationDraw", "CropAugmentation", "add_noise", "augmentation_range", "coloured_noise",
           "eq_control_frequencies", "equalise", "lowpass", "pitch_shift", "reverberate",
           "synthetic_impulse_response", "time_stretch", "NOISE_COLOURS"]

NOISE_COLOURS = ("white", "pink")
"""Noise spectra :func:`coloured_noise` makes; :class:`CropAugmentation` picks one per crop, uniformly."""

_EQ_FIRST_HZ = 125.0


def augmentation_range(name: str, value: Any, positive: bool, non_negative: bool = False) -> tuple[float, float] | None:
    """``value`` as a ``(low, high)`` augmentation range, or None: the one check of every range
    (``speed``, ``gain_db``, ``pitch_semitones``, ...) for :class:`~audiolatent.data.AudioDataset`,
    :class:`CropAugmentation` and training configs.

    Raises:
        DataError: not a pair of finite numbers with ``low <= high`` (and ``low > 0`` if
            ``positive``, ``low >= 0`` if ``non_negative``).
    """
    if value is None:
        return None
    if not (isinstance(value, list | tuple) and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
        raise DataError(f"{name} must be a (low, high) pair of numbers or None, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi) or (positive and lo <= 0) or (non_negative and lo < 0):
        bound = "0 < low <= high" if positive else "0 <= low <= high" if non_negative else "low <= high, both finite"
        raise DataError(f"{name} must satisfy {bound}, got {value!r}")
    return lo, hi


# --- zero-phase filtering -----------------------------------------------------------------
def _filter_size(n: int) -> int:
    """FFT size for zero-phase filtering of ``n`` samples: a power of two >= 2n (no wrap-around)."""
    return 1 << max(1, (2 * n - 1).bit_length())


def _zero_phase(audio: torch.Tensor, gain: torch.Tensor, size: int) -> torch.Tensor:
    """``audio [..., N]`` filtered by the real gain ``[..., size // 2 + 1]`` of its ``size``-point rfft."""
    n = audio.shape[-1]
    spectrum = torch.fft.rfft(audio, n=size)
    return torch.fft.irfft(spectrum * gain.to(spectrum.real.dtype), n=size)[..., :n]


def _rfft_frequencies(size: int, sample_rate: float, device: torch.device | None = None) -> torch.Tensor:
    return torch.arange(size // 2 + 1, dtype=torch.float64, device=device) * (sample_rate / size)


def lowpass(audio: torch.Tensor, sample_rate: int, cutoff_hz: float | torch.Tensor,
            transition: float = 0.1) -> torch.Tensor:
    """Zero-phase low-pass of ``audio [..., N]`` at ``cutoff_hz`` (see the module docstring).

    ``cutoff_hz`` is a number or a tensor broadcastable to ``audio.shape[:-1]`` (one cutoff per
    row: ``[B, 1]`` for ``[B, C, N]`` audio); ``inf`` or anything at or above Nyquist keeps a row
    as it is (to float rounding). ``transition`` is the fraction of the cutoff over which the gain
    falls from 1 to 0. Differentiable with respect to ``audio``.
    """
    if not 0.0 <= transition < 1.0:
        raise ValueError(f"transition must be in [0, 1), got {transition}")
    size = _filter_size(audio.shape[-1])
    freqs = _rfft_frequencies(size, sample_rate, audio.device)
    cutoff = torch.as_tensor(cutoff_hz, dtype=torch.float64, device=audio.device)[..., None]
    if transition == 0:
        gain = (freqs <= cutoff).to(torch.float64)
    else:
        start = cutoff * (1.0 - transition)
        fall = ((freqs - start) / (cutoff - start)).clamp(0.0, 1.0)
        gain = 0.5 * (1.0 + torch.cos(torch.pi * fall))
    gain = torch.where(cutoff >= sample_rate / 2, torch.ones_like(gain), gain)
    return _zero_phase(audio, gain, size)


def eq_control_frequencies(sample_rate: int) -> list[float]:
    """Control frequencies of :func:`equalise`: ``125 * 2 ** k`` Hz for every ``k >= 0`` up to Nyquist."""
    out, f = [], _EQ_FIRST_HZ
    while f <= sample_rate / 2:
        out.append(f)
        f *= 2
    return out


def eq_curve_db(freqs_hz: torch.Tensor, sample_rate: int, gains_db: Sequence[float]) -> torch.Tensor:
    """Gain in dB of :func:`equalise` at ``freqs_hz`` (raised-cosine interpolation in log frequency)."""
    controls = eq_control_frequencies(sample_rate)
    if len(gains_db) != len(controls):
        raise ValueError(f"{len(gains_db)} gains for {len(controls)} control frequencies {controls}")
    position = torch.log2(freqs_hz.clamp_min(1e-3) / _EQ_FIRST_HZ).clamp(0.0, len(controls) - 1.0)
    lower = position.floor().long().clamp(max=len(controls) - 1)
    upper = (lower + 1).clamp(max=len(controls) - 1)
    weight = 0.5 * (1.0 - torch.cos(torch.pi * (position - lower)))
    table = torch.as_tensor(list(gains_db), dtype=torch.float64)
    return (1.0 - weight) * table[lower] + weight * table[upper]


def equalise(audio: torch.Tensor, sample_rate: int, gains_db: Sequence[float]) -> torch.Tensor:
    """``audio [C, N]`` through the zero-phase EQ of ``gains_db`` (one per :func:`eq_control_frequencies`)."""
    if not any(gains_db):
        return audio
    size = _filter_size(audio.shape[-1])
    gain = 10.0 ** (eq_curve_db(_rfft_frequencies(size, sample_rate), sample_rate, gains_db) / 20.0)
    return _zero_phase(audio, gain, size)


# --- pitch ---------------------------------------------------------------------------------
def _stft_size(sample_rate: int) -> int:
    """Phase-vocoder frame: the power of two nearest 32 ms (512 samples at 16 kHz)."""
    return 1 << max(6, round(math.log2(0.032 * sample_rate)))


def _nearest_peak(magnitude: torch.Tensor) -> torch.Tensor:
    """Index of the nearest spectral peak (local maximum over frequency) of every bin, ``[..., F, K]``.

    A frame without a peak (silence) maps every bin to itself.
    """
    bins = magnitude.shape[-2]
    padded = torch.nn.functional.pad(magnitude, (0, 0, 1, 1), value=-1.0)
    peak = (magnitude > padded[..., :-2, :]) & (magnitude >= padded[..., 2:, :])
    index = torch.arange(bins, device=magnitude.device)[:, None].expand_as(magnitude)
    before = torch.where(peak, index, -1).cummax(dim=-2).values
    after = torch.where(peak, index, 2 * bins).flip(-2).cummin(dim=-2).values.flip(-2)
    nearest = torch.where((index - before <= after - index) & (before >= 0), before, after)
    return torch.where(nearest < bins, nearest, index)


def time_stretch(audio: torch.Tensor, sample_rate: int, stretch: float) -> torch.Tensor:
    """``audio [C, N]`` made ``round(N * stretch)`` samples long at the same pitch (phase vocoder).

    Hann frames of ~32 ms (:func:`_stft_size`), hop a quarter frame. Output frame ``k`` reads input
    time ``k / stretch`` (in frames): magnitudes are interpolated linearly between the two nearest
    input frames; the phase of every spectral peak advances by its measured instantaneous
    frequency, and the bins around a peak keep their input phase offsets to it (identity phase
    locking, Laroche & Dolson 1999), which keeps the partials of voiced speech coherent.
    """
    n_fft = _stft_size(sample_rate)
    hop = n_fft // 4
    window = torch.hann_window(n_fft, dtype=audio.dtype)
    spec = torch.stft(audio, n_fft, hop, window=window, center=True, pad_mode="constant", return_complex=True)
    frames = spec.shape[-1]
    spec = torch.nn.functional.pad(spec, (0, 1))  # a silent frame to interpolate towards at the end
    length = max(1, int(math.floor(audio.shape[-1] * stretch + 0.5)))
    position = (torch.arange(length // hop + 1, dtype=torch.float64) / stretch).clamp(max=frames)
    left = position.floor().long().clamp(max=frames - 1)
    frac = (position - left).to(audio.dtype)
    magnitude = (1 - frac) * spec[..., left].abs() + frac * spec[..., left + 1].abs()
    input_phase = spec[..., left].angle().double()
    expected = 2 * torch.pi * hop * torch.arange(spec.shape[-2], dtype=torch.float64)[:, None] / n_fft
    advance = spec[..., left + 1].angle().double() - input_phase - expected
    advance = expected + torch.remainder(advance + torch.pi, 2 * torch.pi) - torch.pi
    # Locked phase of frame k: phase[k - 1] + advance[k - 1] read at each bin's peak, plus the bin's input
    # offset to that peak. Only the first term is recursive; the loop runs in NumPy on [K, C * F] rows
    # because per-frame torch calls would cost more than the arithmetic.
    peak = _nearest_peak(magnitude)
    channels, bins, out_frames = peak.shape
    rows = lambda t: t.permute(2, 0, 1).reshape(out_frames, channels * bins).numpy()  # noqa: E731
    index = rows(peak + bins * torch.arange(channels)[:, None, None])
    theta, step = rows(input_phase), rows(advance)
    frame = np.arange(out_frames)[:, None]
    offset = theta - theta[frame, index]
    offset[1:] += step[frame[:-1], index[1:]]
    phase = np.empty_like(theta)
    phase[0] = theta[0]
    for k in range(1, out_frames):
        phase[k] = phase[k - 1][index[k]] + offset[k]
    phase = torch.from_numpy(phase).reshape(out_frames, channels, bins).permute(1, 2, 0)
    stretched = torch.polar(magnitude, phase.to(audio.dtype))
    return torch.istft(stretched, n_fft, hop, window=window, center=True, length=length)


def pitch_shift(audio: torch.Tensor, sample_rate: int, semitones: float) -> torch.Tensor:
    """``audio [C, N]`` with every frequency times ``2 ** (semitones / 12)`` and its length kept."""
    if semitones == 0:
        return audio
    ratio = 2.0 ** (semitones / 12.0)
    n = audio.shape[-1]
    stretched = time_stretch(audio, sample_rate, ratio)
    # Read at sample_rate * ratio, the stretched crop lasts round(N * ratio) / ratio = N samples again.
    played = soxr.resample(stretched.T.numpy(), sample_rate * ratio, sample_rate)
    out = torch.from_numpy(np.ascontiguousarray(played.T, dtype=np.float32))[:, :n]
    return torch.nn.functional.pad(out, (0, n - out.shape[-1]))


# --- noise and room ------------------------------------------------------------------------
def coloured_noise(shape: tuple[int, int], colour: str, rng: np.random.Generator) -> torch.Tensor:
    """Gaussian noise ``[C, N]``: ``white`` (flat power spectrum) or ``pink`` (power ~ 1/f, 0 at DC)."""
    if colour not in NOISE_COLOURS:
        raise ValueError(f"noise colour must be one of {NOISE_COLOURS}, got {colour!r}")
    noise = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    if colour == "pink":
        size = _filter_size(shape[-1])
        bins = torch.arange(size // 2 + 1, dtype=torch.float64)
        noise = _zero_phase(noise, torch.where(bins > 0, 1.0 / bins.clamp_min(1).sqrt(), 0.0), size)
    return noise


def add_noise(audio: torch.Tensor, snr_db: float, colour: str, rng: np.random.Generator) -> torch.Tensor:
    """``audio [C, N]`` plus :func:`coloured_noise` at ``snr_db`` (power ratio over the whole crop)."""
    signal_power = float(audio.double().pow(2).mean())
    if signal_power == 0.0:
        return audio
    noise = coloured_noise(tuple(audio.shape), colour, rng).double()
    scale = math.sqrt(signal_power / (float(noise.pow(2).mean()) * 10.0 ** (snr_db / 10.0)))
    return (audio.double() + scale * noise).to(audio.dtype)


def synthetic_impulse_response(sample_rate: int, rt60: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Room impulse response ``h [L]``, ``L = 1 + ceil(rt60 * sample_rate)`` (float64).

    ``h[0] = 1`` is the direct path; ``h[n] = g * w[n] * 10 ** (-3 n / (rt60 * sample_rate))``
    for ``n >= 1``, ``w`` standard Gaussian, so the tail's energy decays 60 dB in ``rt60``
    seconds (Sabine's RT60), and ``g`` makes ``sum(h[1:] ** 2) = 10 ** (-drr_db / 10)``.
    """
    tail = int(math.ceil(rt60 * sample_rate))
    n = np.arange(1, tail + 1)
    decay = rng.standard_normal(tail) * 10.0 ** (-3.0 * n / (rt60 * sample_rate))
    decay *= math.sqrt(10.0 ** (-drr_db / 10.0) / max(float(np.sum(decay**2)), 1e-30))
    return np.concatenate([[1.0], decay])


def reverberate(audio: torch.Tensor, sample_rate: int, rt60: float, drr_db: float,
                rng: np.random.Generator) -> torch.Tensor:
    """``audio [C, N]`` in a synthetic room (see the module docstring); ``rt60 <= 0`` is the identity."""
    if rt60 <= 0:
        return audio
    h = torch.from_numpy(synthetic_impulse_response(sample_rate, rt60, drr_db, rng))
    n = audio.shape[-1]
    size = 1 << (n + h.numel() - 1).bit_length()
    wet = torch.fft.irfft(torch.fft.rfft(audio.double(), n=size) * torch.fft.rfft(h, n=size), n=size)[..., :n]
    dry_rms, wet_rms = audio.double().pow(2).mean().sqrt(), wet.pow(2).mean().sqrt()
    if wet_rms > 0:
        wet = wet * (dry_rms / wet_rms)
    return wet.to(audio.dtype)


# --- per-crop parameters -------------------------------------------------------------------
@dataclass(frozen=True)
class AugmentationDraw:
    """One crop's augmentation parameters (None: that transform is skipped).

    ``semitones``: pitch shift; ``eq_gains_db``: ten control gains, of which the first
    ``len(eq_control_frequencies(sample_rate))`` are used (seven at 16 kHz);
    ``cutoff_hz``: band limit; ``snr_db`` and ``noise_colour``; ``rt60`` (s) and ``drr_db``;
    ``noise_seed``, ``room_seed``: seeds of the noise and of the impulse response's noise.
    """

    semitones: float | None = None
    eq_gains_db: tuple[float, ...] | None = None
    cutoff_hz: float | None = None
    snr_db: float | None = None
    noise_colour: str = "white"
    noise_seed: int = 0
    rt60: float | None = None
    drr_db: float = 0.0
    room_seed: int = 0

    @property
    def pitch_ratio(self) -> float:
        """Factor by which the crop's frequencies move (1 without a pitch shift)."""
        return 2.0 ** (self.semitones / 12.0) if self.semitones is not None else 1.0


@dataclass(frozen=True)
class CropAugmentation:
    """Ranges and probabilities of the crop augmentations (see the module docstring).

    A transform is on when its range is set; each crop then gets it with its probability
    (``*_prob``, default 1) and a parameter drawn uniformly from the range.

    Attributes:
        pitch_semitones: ``(low, high)`` pitch shift in semitones (tempo kept).
        eq_db: largest gain or cut of the random EQ in dB (control gains uniform in ``[-eq_db, eq_db]``).
        band_limit_hz: ``(low, high)`` low-pass cutoff in Hz (> 0); cutoffs at or above Nyquist do nothing.
        noise_snr_db: ``(low, high)`` SNR of added white or pink noise (colour drawn 50/50), in dB.
        reverb_rt60: ``(low, high)`` RT60 of the synthetic room in seconds (>= 0; 0 = dry).
        reverb_drr_db: ``(low, high)`` direct-to-reverberant energy ratio of the room in dB.
    """

    pitch_semitones: tuple[float, float] | None = None
    pitch_prob: float = 1.0
    eq_db: float | None = None
    eq_prob: float = 1.0
    band_limit_hz: tuple[float, float] | None = None
    band_limit_prob: float = 1.0
    noise_snr_db: tuple[float, float] | None = None
    noise_prob: float = 1.0
    reverb_rt60: tuple[float, float] | None = None
    reverb_drr_db: tuple[float, float] = (0.0, 10.0)
    reverb_prob: float = 1.0

    def __post_init__(self) -> None:
        checks = {"pitch_semitones": {}, "band_limit_hz": {"positive": True}, "noise_snr_db": {},
                  "reverb_rt60": {"non_negative": True}, "reverb_drr_db": {}}
        for name, bounds in checks.items():
            value = augmentation_range(name, getattr(self, name), positive=bounds.get("positive", False),
                                       non_negative=bounds.get("non_negative", False))
            if value is None and name == "reverb_drr_db":
                raise DataError("reverb_drr_db must be a (low, high) pair of numbers, got None")
            object.__setattr__(self, name, value)
        if self.eq_db is not None:
            if isinstance(self.eq_db, bool) or not isinstance(self.eq_db, int | float) or not 0 <= self.eq_db < math.inf:
                raise DataError(f"eq_db must be a number >= 0 (dB) or None, got {self.eq_db!r}")
            object.__setattr__(self, "eq_db", float(self.eq_db))
        for f in fields(self):
            if f.name.endswith("_prob"):
                p = getattr(self, f.name)
                if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
                    raise DataError(f"{f.name} must be a probability in [0, 1], got {p!r}")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> CropAugmentation | None:
        """A :class:`CropAugmentation` of these field values, or None when no transform is on."""
        augmentation = cls(**options)
        return augmentation if augmentation.active else None

    @property
    def active(self) -> bool:
        """Whether any transform is on (a range set, or a non-zero ``eq_db``)."""
        return any(v is not None for v in (self.pitch_semitones, self.band_limit_hz, self.noise_snr_db,
                                           self.reverb_rt60)) or bool(self.eq_db)

    def draw(self, key: Sequence[int]) -> AugmentationDraw:
        """Parameters of the crop whose seed sequence is ``key`` (e.g. ``[seed, epoch, index]``).

        Each transform draws from its own generator ``default_rng([*key, 2, k])``, so turning
        one on or off leaves the others' draws as they were.
        """
        def rng(k: int) -> np.random.Generator:
            return np.random.default_rng([*key, 2, k])

        def happens(r: np.random.Generator, prob: float) -> bool:
            return bool(r.random() < prob)

        params: dict[str, Any] = {}
        if self.pitch_semitones is not None and happens(r := rng(0), self.pitch_prob):
            params["semitones"] = float(r.uniform(*self.pitch_semitones))
        if self.eq_db and happens(r := rng(1), self.eq_prob):
            # The control count depends on the sample rate: draw enough for 192 kHz, use the first ones.
            params["eq_gains_db"] = tuple(float(g) for g in r.uniform(-self.eq_db, self.eq_db, 10))
        if self.band_limit_hz is not None and happens(r := rng(2), self.band_limit_prob):
            params["cutoff_hz"] = float(r.uniform(*self.band_limit_hz))
        if self.noise_snr_db is not None and happens(r := rng(3), self.noise_prob):
            params.update(snr_db=float(r.uniform(*self.noise_snr_db)), noise_colour=NOISE_COLOURS[int(r.integers(2))],
                          noise_seed=int(r.integers(2**63)))
        if self.reverb_rt60 is not None and happens(r := rng(4), self.reverb_prob):
            params.update(rt60=float(r.uniform(*self.reverb_rt60)), drr_db=float(r.uniform(*self.reverb_drr_db)),
                          room_seed=int(r.integers(2**63)))
        return AugmentationDraw(**params)

    @staticmethod
    def apply(audio: torch.Tensor, sample_rate: int, params: AugmentationDraw) -> torch.Tensor:
        """``audio [C, N]`` with the transforms of ``params``: pitch, reverb, noise, EQ, band limit."""
        if params.semitones is not None:
            audio = pitch_shift(audio, sample_rate, params.semitones)
        if params.rt60 is not None:
            audio = reverberate(audio, sample_rate, params.rt60, params.drr_db, np.random.default_rng(params.room_seed))
        if params.snr_db is not None:
            audio = add_noise(audio, params.snr_db, params.noise_colour, np.random.default_rng(params.noise_seed))
        if params.eq_gains_db is not None:
            audio = equalise(audio, sample_rate, params.eq_gains_db[:len(eq_control_frequencies(sample_rate))])
        if params.cutoff_hz is not None and params.cutoff_hz < sample_rate / 2:
            audio = lowpass(audio, sample_rate, params.cutoff_hz).to(torch.float32)
        return audio.to(torch.float32).contiguous()
