"""The log-mel spectrogram as a tokenizer: the handcrafted continuous latent of a decade of TTS.

Encode: audio ``[B, 1, N]`` -> one continuous stream ``"mel"`` of log-mel values
``[B, n_mels, T]`` at ``sample_rate / hop_length`` frames/s, ``T = ceil(N / hop_length)``:

1. STFT with a periodic Hann window, frame ``t`` centred at sample ``t * hop_length``, the
   signal zero-padded by ``n_fft // 2`` on both sides. The base class pads ``N`` samples to
   ``T * hop_length``; ``torch.stft(center=True)`` then gives ``T + 1`` frames and the last
   one (centred just past the signal) is dropped (:func:`~audiolatent.tokenizers.griffinlim.stft_frames`);
2. ``|X| ** power`` (``power`` 1: magnitude, as HiFi-GAN and Vocos; 2: power);
3. a triangular mel filterbank ``[n_mels, n_fft // 2 + 1]`` (:func:`mel_filterbank`,
   librosa-compatible: Slaney's Auditory Toolbox scale or the HTK scale, optional Slaney
   area normalisation);
4. ``log(clamp(mel, min=log_floor))``, natural log. Digital silence gives ``log(log_floor)``
   in every bin (``log(1e-5) = -11.51`` for mel-16k).

Decode: ``exp`` (bins at the floor become 0) -> a non-negative least-squares inverse of the
filterbank (pseudo-inverse clamped at 0, refined by multiplicative NNLS updates, Lee & Seung
2001) -> ``** (1 / power)`` -> fast Griffin-Lim (Perraudin et al. 2013) with a fixed-seed
initial phase, so decoding is deterministic. Output ``[B, 1, T * hop_length]``.

Latency: Griffin-Lim iterates over the whole spectrogram, so this tokenizer is not causal,
``lookahead`` is None (the whole signal) and ``streaming()`` raises StreamingError. Mono only.

Built-ins: ``mel-16k`` (HiFi-GAN-style, 100 frames/s, 80 dims = 8000 values/s), ``mel-24k``
(Vocos-style, 93.75 frames/s, 100 dims = 9375 values/s). Continuous latents have no nominal
bit rate (see :mod:`audiolatent.core.latent`); :mod:`audiolatent.tokenizers.dmel` quantises
these features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.core.latent import Stream
from audiolatent.core.registry import register_kind, register_tokenizer
from audiolatent.core.tokenizer import Tokenizer
from audiolatent.nn.melscale import hz_to_mel, mel_filterbank, mel_to_hz, triangular_filters
from audiolatent.nn.pghi import rtpghi_tensor
from audiolatent.tokenizers.griffinlim import griffin_lim, istft_frames, stft_frames

__all__ = [
    "MelConfig", "MelTokenizer", "hz_to_mel", "mel_to_hz", "mel_filterbank", "triangular_filters",
    "mel_16k_config", "mel_24k_config",
]

@dataclass
class MelConfig:
    """Log-mel analysis and classical synthesis. Defaults are ``mel-16k`` (HiFi-GAN-style).

    Attributes:
        sample_rate: Hz.
        n_fft: FFT size in samples.
        win_length: periodic Hann window length in samples (``2 * hop_length <= win_length <= n_fft``).
        hop_length: samples per frame.
        n_mels: mel bins, the latent's dimension D.
        f_min, f_max: filterbank range in Hz; ``f_max=None`` = Nyquist.
        mel_scale: ``"slaney"`` (librosa default, HiFi-GAN) or ``"htk"`` (torchaudio default, Vocos).
        norm: ``"slaney"`` (each filter has unit area) or None (unit peak).
        power: 1 = mel of the magnitude, 2 = mel of the power spectrum.
        log_floor: features are ``ln(max(mel, log_floor))``.
        griffin_lim_iterations: fast Griffin-Lim iterations at decode.
        griffin_lim_momentum: Perraudin et al. 2013 inertia (0 = classic Griffin-Lim).
        phase_seed: seed of Griffin-Lim's random initial phase (decode is deterministic).
        nnls_iterations: multiplicative NNLS refinements of the filterbank inverse at decode.
        synthesis: the phase of the NNLS magnitude at decode: ``"griffin-lim"`` (iterations
            above, from random phase) or ``"pghi"`` (causal phase-gradient heap integration,
            :mod:`audiolatent.nn.pghi`: no iterations; needs ``win_length == n_fft``).
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 160
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = 8000.0
    mel_scale: str = "slaney"
    norm: str | None = "slaney"
    power: float = 1.0
    log_floor: float = 1e-5
    griffin_lim_iterations: int = 32
    griffin_lim_momentum: float = 0.99
    phase_seed: int = 0
    nnls_iterations: int = 30
    synthesis: str = "griffin-lim"

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate <= 0:
            problems.append(f"sample_rate must be positive, got {self.sample_rate}")
        if not 0 < 2 * self.hop_length <= self.win_length <= self.n_fft:
            problems.append(
                f"need 0 < 2 * hop_length <= win_length <= n_fft (Griffin-Lim needs >= 50% overlap), got "
                f"hop_length={self.hop_length}, win_length={self.win_length}, n_fft={self.n_fft}"
            )
        if self.n_mels < 1:
            problems.append(f"n_mels must be >= 1, got {self.n_mels}")
        nyquist = self.sample_rate / 2
        f_max = nyquist if self.f_max is None else self.f_max
        if not 0 <= self.f_min < f_max <= nyquist:
            problems.append(
                f"need 0 <= f_min < f_max <= Nyquist ({nyquist:g} Hz), got f_min={self.f_min}, f_max={self.f_max}"
            )
        if self.mel_scale not in ("slaney", "htk"):
            problems.append(f"mel_scale must be 'slaney' or 'htk', got {self.mel_scale!r}")
        if self.norm not in ("slaney", None):
            problems.append(f"norm must be 'slaney' or null, got {self.norm!r}")
        if self.power not in (1.0, 2.0):
            problems.append(f"power must be 1 (magnitude) or 2 (power), got {self.power}")
        if not self.log_floor > 0:
            problems.append(f"log_floor must be positive, got {self.log_floor}")
        if self.griffin_lim_iterations < 0 or self.nnls_iterations < 0:
            problems.append("griffin_lim_iterations and nnls_iterations must be >= 0")
        if not 0 <= self.griffin_lim_momentum < 1:
            problems.append(f"griffin_lim_momentum must be in [0, 1), got {self.griffin_lim_momentum}")
        if self.synthesis not in ("griffin-lim", "pghi"):
            problems.append(f"synthesis must be 'griffin-lim' or 'pghi', got {self.synthesis!r}")
        elif self.synthesis == "pghi" and self.win_length != self.n_fft:
            problems.append(f"synthesis 'pghi' integrates a Hann window of n_fft samples: needs win_length == n_fft, "
                            f"got {self.win_length} and {self.n_fft}")
        if problems:
            raise ConfigError("MelConfig: " + "; ".join(problems))


def mel_16k_config() -> MelConfig:
    """``mel-16k``: 16 kHz, 80 slaney mels to 8 kHz, n_fft 1024, hop 160 (100 frames/s), floor 1e-5."""
    return MelConfig()


def mel_24k_config() -> MelConfig:
    """``mel-24k``: the Vocos features: 24 kHz, 100 HTK mels (unnormalised) to 12 kHz, n_fft 1024, hop 256, floor 1e-7.

    Vocos pads the signal by reflection; we zero-pad, so only the first and last few frames differ.
    """
    return MelConfig(
        sample_rate=24000, n_fft=1024, win_length=1024, hop_length=256, n_mels=100,
        f_min=0.0, f_max=None, mel_scale="htk", norm=None, power=1.0, log_floor=1e-7,
    )


def spectrum_to_log_mel(spec: torch.Tensor, basis: torch.Tensor, config: MelConfig) -> torch.Tensor:
    """Complex STFT ``[B, F, T]`` -> natural-log mel ``[B, n_mels, T]`` (steps 2-4 of the module docstring)."""
    magnitude = spec.abs()
    if config.power == 2.0:
        magnitude = magnitude.square()
    return torch.matmul(basis.to(magnitude.dtype), magnitude).clamp_min(config.log_floor).log()


def refuse_streaming(name: str) -> StreamingError:
    """The error every Griffin-Lim tokenizer raises from ``streaming()``."""
    return StreamingError(
        f"{name} cannot stream: its decoder (Griffin-Lim) iterates over the whole spectrogram, so it needs "
        "the whole signal (lookahead=None); encode and decode offline"
    )


@register_kind
class MelTokenizer(Tokenizer):
    """Log-mel features ``[B, n_mels, T]`` out, Griffin-Lim audio back. See the module docstring."""

    kind = "mel"
    config_class = MelConfig

    def __init__(self, config: MelConfig | None = None) -> None:
        config = MelConfig() if config is None else config
        super().__init__(config)
        c = config
        basis = mel_filterbank(
            sample_rate=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, f_min=c.f_min, f_max=c.f_max,
            mel_scale=c.mel_scale, norm=c.norm,
        )
        # Derived from the config, so not part of the checkpoint (persistent=False).
        self.register_buffer("mel_basis", basis, persistent=False)  # [M, F]
        self.register_buffer("mel_basis_pinv", torch.linalg.pinv(basis.double()).float(), persistent=False)  # [F, M]
        self.register_buffer("window", torch.hann_window(c.win_length, periodic=True), persistent=False)

    # --- Tokenizer properties ----------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def causal(self) -> bool:
        return False

    @property
    def lookahead(self) -> int | None:
        return None  # Griffin-Lim needs the whole signal

    @property
    def n_mels(self) -> int:
        return self.config.n_mels

    def streaming(self, batch_size: int = 1):
        """Always raises StreamingError: Griffin-Lim needs the whole signal."""
        raise refuse_streaming(self.name)

    # --- analysis and synthesis (also used by DMelTokenizer) -----------------------------------
    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """Frame-aligned audio ``[B, 1, T * hop]`` -> natural-log mel ``[B, n_mels, T]``."""
        c = self.config
        n_frames = audio.shape[-1] // c.hop_length
        return spectrum_to_log_mel(stft_frames(audio[:, 0], c.n_fft, c.hop_length, self.window, n_frames), self.mel_basis, c)

    def mel_to_linear(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, n_mels, T]`` -> non-negative linear magnitude ``[B, n_fft // 2 + 1, T]``.

        Solves ``min ||basis @ S - mel||`` over ``S >= 0`` approximately: the pseudo-inverse
        clamped at 0 (plus a small positive offset so no bin is stuck at 0), then
        ``nnls_iterations`` multiplicative updates ``S *= basis^T mel / basis^T basis S``
        (Lee & Seung 2001), which keep ``S >= 0`` and lower the residual. Bins outside
        ``[f_min, f_max]`` come back as 0.
        """
        c = self.config
        basis = self.mel_basis.to(log_mel.dtype)
        # bins at the floor were silent (or below the floor): make them exactly silent
        at_floor = log_mel <= math.log(c.log_floor) + 1e-4
        mel = torch.where(at_floor, torch.zeros_like(log_mel), log_mel.exp())
        spec = torch.matmul(self.mel_basis_pinv.to(log_mel.dtype), mel).clamp_min(0.0)  # [B, F, T]
        if c.nnls_iterations:
            covered = (basis.sum(0) > 0).to(spec.dtype)[:, None]  # bins some filter sees
            spec = spec + 1e-3 * spec.mean(dim=1, keepdim=True) * covered
            numerator = torch.matmul(basis.T, mel)
            for _ in range(c.nnls_iterations):
                denominator = torch.matmul(basis.T, torch.matmul(basis, spec))
                spec = spec.mul_(numerator).div_(denominator.clamp_min_(1e-12))
                # bins whose NNLS solution is 0 decay geometrically towards it and reach subnormal
                # floats (slow on CPUs) within ~20 updates; at <= 1e-12 they are inaudible: set 0
                spec = torch.threshold(spec, 1e-12, 0.0)
        return spec.pow(1.0 / c.power) if c.power != 1.0 else spec

    def synthesize(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, n_mels, T]`` -> audio ``[B, 1, T * hop]`` by NNLS inverse + fast Griffin-Lim
        (or + RTPGHI phase, ``synthesis: pghi``)."""
        c = self.config
        magnitude = self.mel_to_linear(log_mel)
        if c.synthesis == "pghi":
            return self._pghi_synthesis(magnitude)[:, None]
        audio = griffin_lim(
            magnitude, c.n_fft, c.hop_length, c.win_length, self.window,
            n_iter=c.griffin_lim_iterations, momentum=c.griffin_lim_momentum, seed=c.phase_seed,
        )
        return audio[:, None]

    def _pghi_synthesis(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Magnitude ``[B, F, T]`` (centred frames) -> audio ``[B, T * hop]`` with RTPGHI phase."""
        c = self.config
        b, n_bins, t = magnitude.shape
        # one silent frame past the end, as the centred analysis pads: the last hop gets its overlap
        padded = torch.cat([magnitude, magnitude.new_zeros(b, n_bins, 1)], dim=-1).double()
        phase = rtpghi_tensor(padded.clamp_min(1e-12).log().transpose(1, 2), c.n_fft, c.hop_length)  # [B, T + 1, F]
        spec = torch.polar(padded, phase.transpose(1, 2))
        window = self.window.double()
        return istft_frames(spec, c.n_fft, c.hop_length, window, t * c.hop_length).to(magnitude.dtype)

    # --- Tokenizer hooks ---------------------------------------------------------------------
    def _encode(self, audio: torch.Tensor) -> list[Stream]:
        return [Stream(self.log_mel(audio), self.frame_rate, None, "mel")]

    def _decode(self, streams: list[Stream]) -> torch.Tensor:  # Tokenizer.decode has checked the stream
        return self.synthesize(streams[0].values.to(self.mel_basis.dtype))


register_tokenizer(
    "mel-16k", lambda: MelTokenizer(mel_16k_config()),
    "log-mel, 16 kHz, 80 slaney mels to 8 kHz, hop 160 (100 frames/s, 8000 values/s); Griffin-Lim decode",
    family="handcrafted",
)
register_tokenizer(
    "mel-16k-pghi", lambda: MelTokenizer(replace(mel_16k_config(), synthesis="pghi")),
    "log-mel, 16 kHz, 80 slaney mels to 8 kHz, hop 160 (the latent of mel-16k); NNLS + RTPGHI phase decode "
    "(no iterations)",
    family="handcrafted",
)
register_tokenizer(
    "mel-24k", lambda: MelTokenizer(mel_24k_config()),
    "log-mel, Vocos features: 24 kHz, 100 HTK mels, hop 256 (93.75 frames/s, 9375 values/s); Griffin-Lim decode",
    family="handcrafted",
)
