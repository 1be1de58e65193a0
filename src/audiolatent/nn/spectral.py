"""Causal short-time Fourier analysis and a Vocos-style causal ISTFT synthesis head, both streaming.

Both modules use the framing of :mod:`audiolatent.nn.conv`, so they stack with causal convs and
compose through :mod:`audiolatent.nn.latency`.

Analysis (:class:`StreamingSTFT`)
---------------------------------
Frame ``t`` covers the input samples ``[(t + 1) * hop - n_fft, (t + 1) * hop)`` (zeros before
sample 0): it ends with the last sample of its hop window and reads nothing after it, exactly like
a causal :class:`~audiolatent.nn.conv.StreamingConv1d` with kernel ``n_fft`` and stride ``hop``.
``N`` samples give ``ceil(N / hop)`` frames (a partial last hop window is zero-padded, offline
only). Output ``[B, C * F, T]``: log magnitudes (``F = n_fft // 2 + 1``) or log-mel magnitudes
(``F = n_mels``, fixed filterbank of :func:`audiolatent.nn.melscale.mel_filterbank`), natural
log of ``max(magnitude, eps)``. Streaming state: the last ``n_fft - hop`` input samples.
Lookahead 0.

Synthesis (:class:`StreamingISTFTHead`)
---------------------------------------
The head of Vocos (Siuzdak 2023, "Vocos: Closing the gap between time-domain and Fourier-based
neural vocoders"): a pointwise conv predicts, per frame, a log magnitude ``m`` and a phase ``p``
per FFT bin; ``S = exp(min(m, log 100)) * (cos p + i sin p)`` is inverted with ``irfft`` to
``n_fft`` samples, multiplied by a synthesis window and overlap-added. Unlike Vocos (centred,
non-causal frames) the overlap-add is *causal*, like a causal transposed conv: frame ``t`` is
placed at output samples ``[t * hop, t * hop + n_fft)``, ``T`` frames give ``T * hop`` samples and
the last ``n_fft - hop`` samples of the overlap-add are carried to the next call in streaming.
Output sample ``n`` depends on frames ``<= n // hop`` only: lookahead 0.

With ``subframes = S > 1`` the head predicts ``S`` consecutive synthesis frames per input frame
(the pointwise conv outputs ``S`` spectra, hop ``hop_length``), so a frame-rate backbone drives a
synthesis with ``S`` times finer time resolution and a ``S`` times shorter window at the same cost:
input frame ``t`` owns sub-frames ``t * S ... t * S + S - 1`` and output samples
``[t * S * hop, (t + 1) * S * hop)``; the head's stride is ``S * hop`` and its lookahead stays 0.

Optional window-sum normalisation divides sample ``n`` by the *steady-state* envelope
``env[n mod hop] = sum_m w[n mod hop + m * hop] ** 2`` (the classic ISTFT normaliser): it depends
on ``n mod hop`` only, so streaming and offline agree, and the first ``n_fft - hop`` samples
(fewer overlapping frames) are simply quieter, as in a causal transposed conv.

Latency, honestly: a causal codec with this head has algorithmic latency ``hop`` (the encoder
needs a whole hop window), but frame ``t`` reaches only ``[t * hop, (t + 1) * hop)`` with the
*start* of its window. With the symmetric ``hann`` window of Vocos most of the weight of sample
``n`` comes from frames ``n // hop - 1`` and older: the network must extrapolate up to
``n_fft / 2`` samples past what its encoder frame has seen. The ``asymmetric`` window (rise over
``hop`` samples, fall over the remaining ``n_fft - hop``; the low-delay window idea of
AAC-LD / Opus CELT) puts the peak of frame ``t`` at the end of its own hop window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.core.cache import TableCache
from audiolatent.core.errors import StreamingError
from audiolatent.core.streaming import StreamingModule
from audiolatent.nn.conv import SMALL_CHUNK_FRAMES
from audiolatent.nn.matvec import linear_rows
from audiolatent.nn.melscale import mel_filterbank
from audiolatent.nn.pghi import PhaseState, rtpghi_tensor

__all__ = ["WINDOWS", "causal_window", "StreamingSTFT", "StreamingISTFTHead", "MelMagnitudePrior"]

WINDOWS = ("hann", "asymmetric")
PHASES = ("absolute", "accumulated", "pghi")
_MAX_LOG_MAGNITUDE = math.log(100.0)  # Vocos clips exp(m) at 1e2


def causal_window(kind: str, n_fft: int, hop_length: int, *, synthesis: bool) -> torch.Tensor:
    """Window ``[n_fft]`` (float32).

    ``hann``: periodic Hann (symmetric in time). ``asymmetric``: a half-Hann rise over ``hop``
    samples and a half-Hann fall over ``n_fft - hop`` samples for synthesis (peak at sample
    ``hop``), time-reversed for analysis (peak ``hop`` samples before the frame end), so that in
    both directions the newest hop window carries the most weight.
    """
    if kind not in WINDOWS:
        raise ValueError(f"unknown window {kind!r}; known: {WINDOWS}")
    if kind == "hann":
        return torch.hann_window(n_fft)
    fall = n_fft - hop_length
    rise = torch.sin(0.5 * math.pi * torch.arange(1, hop_length + 1) / hop_length).square()
    down = torch.cos(0.5 * math.pi * torch.arange(1, fall + 1) / (fall + 1)).square()
    window = torch.cat([rise, down]).float()
    return window.flip(0) if not synthesis else window


@dataclass
class _STFTState:
    previous: torch.Tensor  # [B, C, n_fft - hop]: the last input samples seen


class StreamingSTFT(StreamingModule):
    """Causal log-magnitude / log-mel STFT ``[B, C, N] -> [B, C * F, ceil(N / hop)]``.

    Args:
        n_fft: frame length and FFT size (samples), ``>= hop_length``.
        hop_length: samples per frame.
        channels: input channels ``C`` (their features are stacked on the feature axis).
        features: ``"log-magnitude"`` (``F = n_fft // 2 + 1``) or ``"log-mel"`` (``F = n_mels``).
        sample_rate, n_mels, f_min, f_max: the mel filterbank (``log-mel`` only).
        window: ``"hann"`` or ``"asymmetric"`` (see :func:`causal_window`).
        eps: magnitude floor before the natural log.

    Attributes: ``stride`` (= ``hop_length``), ``lookahead`` (0), ``causal`` (True),
    ``n_features`` (``C * F``).
    """

    causal = True
    lookahead = 0

    def __init__(
        self,
        n_fft: int,
        hop_length: int,
        *,
        channels: int = 1,
        features: str = "log-magnitude",
        sample_rate: int = 16000,
        n_mels: int = 80,
        f_min: float = 0.0,
        f_max: float | None = None,
        window: str = "hann",
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if hop_length < 1 or n_fft < hop_length:
            raise ValueError(f"need n_fft {n_fft} >= hop_length {hop_length} >= 1")
        if features not in ("log-magnitude", "log-mel"):
            raise ValueError(f"unknown features {features!r}; known: ('log-magnitude', 'log-mel')")
        self.n_fft, self.hop_length, self.stride = n_fft, hop_length, hop_length
        self.channels, self.features, self.eps = channels, features, eps
        self.register_buffer("window", causal_window(window, n_fft, hop_length, synthesis=False), persistent=False)
        if features == "log-mel":
            fb = mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, f_min=f_min, f_max=f_max)
            self.register_buffer("filterbank", fb, persistent=False)
            bins = n_mels
        else:
            self.filterbank = None
            bins = n_fft // 2 + 1
        self.n_features = channels * bins

    def n_frames(self, n_samples: int) -> int:
        """Frames for ``n_samples`` samples offline: ``ceil(n_samples / hop_length)``."""
        return -(-n_samples // self.hop_length)

    def _init_streaming_state(self, batch_size: int) -> _STFTState:
        return _STFTState(self.window.new_zeros(batch_size, self.channels, self.n_fft - self.hop_length))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, C, N]`` -> ``[B, C * F, ceil(N / hop)]`` (streaming: N a multiple of hop)."""
        context = self.n_fft - self.hop_length
        if self.is_streaming:
            self._check_streaming_batch(x)
            if x.shape[-1] % self.hop_length:
                raise StreamingError(f"StreamingSTFT: streaming chunks must be a multiple of hop {self.hop_length}, got {x.shape[-1]}")
            state: _STFTState = self._streaming_state
            x = torch.cat([state.previous, x], dim=-1)
            state.previous = x[..., x.shape[-1] - context :]
        else:
            x = F.pad(x, (context, (-x.shape[-1]) % self.hop_length))
        b, c, _ = x.shape
        frames = x.unfold(-1, self.n_fft, self.hop_length)  # [B, C, T, n_fft]
        magnitude = torch.fft.rfft(frames * self.window, dim=-1).abs()  # [B, C, T, n_fft // 2 + 1]
        if self.filterbank is not None:
            magnitude = torch.matmul(magnitude, self.filterbank.T)
        features = magnitude.clamp_min(self.eps).log()
        return features.permute(0, 1, 3, 2).reshape(b, self.n_features, -1)


@dataclass
class _ISTFTState:
    tail: torch.Tensor  # [B, C, n_fft - hop]: overlap-add contributions to the next samples


@dataclass
class _AccumulatedPhaseState(_ISTFTState):
    phase: torch.Tensor  # [B, C, n_bins] float64: accumulated phase deviations of the last frame, mod 2 pi
    frames: torch.Tensor  # [1] long: synthesis frames emitted so far (the bin-centre phase of the next)


@dataclass
class _PGHIState(_ISTFTState):
    pghi: PhaseState  # the phase integration's last frame, per batch item and channel


class StreamingISTFTHead(StreamingModule):
    """Vocos head with causal overlap-add: features ``[B, dim, T]`` -> audio ``[B, C, T * S * hop]``.

    Args:
        dim: input feature channels.
        n_fft: synthesis frame length and FFT size (samples), ``>= hop_length`` (Vocos: 4 * hop).
        hop_length: output samples per synthesis frame.
        subframes: synthesis frames ``S`` per input frame (see the module docstring).
        channels: output audio channels ``C``.
        window: ``"hann"`` (Vocos) or ``"asymmetric"`` (see the module docstring).
        normalize: divide by the steady-state squared-window envelope (streaming-consistent).
        phase: ``"absolute"`` (Vocos: the phase of each frame is predicted) or ``"accumulated"``
            (phase-vocoder style: the network predicts each bin's deviation ``d`` from its
            bin-centre advance, and the phase of synthesis frame ``j`` is
            ``2 pi k j hop / n_fft + sum_{i <= j} d_i``, so a stationary partial keeps a
            consistent phase from frame to frame; the running sum is streaming state) or
            ``"pghi"`` (the network predicts only the log magnitude; the phase comes from it by
            causal phase-gradient heap integration, :mod:`audiolatent.nn.pghi`, whose last
            frame is streaming state; needs the ``hann`` window). A ``pghi`` head can be trained
            with the reference's own phase (``phase_reference`` of :meth:`forward`), so the
            losses see only the magnitude.

    Attributes: ``stride`` (= ``subframes * hop_length``, samples per input frame), ``lookahead``
    (0 output samples), ``causal``, ``phase``.
    """

    causal = True
    lookahead = 0

    def __init__(
        self,
        dim: int,
        n_fft: int,
        hop_length: int,
        *,
        channels: int = 1,
        window: str = "hann",
        normalize: bool = True,
        subframes: int = 1,
        phase: str = "absolute",
    ) -> None:
        super().__init__()
        if hop_length < 1 or n_fft < hop_length:
            raise ValueError(f"need n_fft {n_fft} >= hop_length {hop_length} >= 1")
        if phase not in PHASES:
            raise ValueError(f"ISTFT head: phase must be one of {PHASES}, got {phase!r}")
        if phase == "pghi" and window != "hann":
            raise ValueError(f"ISTFT head: phase 'pghi' integrates the phase gradients of a Hann window; got window {window!r}")
        self.phase = phase
        if subframes < 1:
            raise ValueError(f"subframes must be >= 1, got {subframes}")
        self.n_fft, self.hop_length, self.channels, self.subframes = n_fft, hop_length, channels, subframes
        self.stride = subframes * hop_length
        self.n_bins = n_fft // 2 + 1
        self.n_parts = 1 if phase == "pghi" else 2  # log magnitude (and phase) per bin
        self.proj = nn.Conv1d(dim, channels * self.n_parts * self.n_bins * subframes, 1)
        w = causal_window(window, n_fft, hop_length, synthesis=True)
        self.register_buffer("window", w, persistent=False)
        envelope = torch.ones(hop_length)
        if normalize:
            squared = F.pad(w.square(), (0, (-n_fft) % hop_length)).view(-1, hop_length)
            envelope = squared.sum(0).clamp_min(1e-3)
        self.register_buffer("inverse_envelope", 1.0 / envelope, persistent=False)
        self._rows = TableCache()  # the projection's one-frame form (nn.matvec)

    def n_samples(self, n_frames: int) -> int:
        """Output samples for ``n_frames`` input frames: ``n_frames * subframes * hop_length``."""
        return n_frames * self.stride

    def _init_streaming_state(self, batch_size: int) -> _ISTFTState:
        tail = self.window.new_zeros(batch_size, self.channels, self.n_fft - self.hop_length)
        if self.phase == "accumulated":
            phase = torch.zeros(batch_size, self.channels, self.n_bins, dtype=torch.float64, device=tail.device)
            return _AccumulatedPhaseState(tail, phase, torch.zeros(1, dtype=torch.long, device=tail.device))
        if self.phase == "pghi":
            return _PGHIState(tail, PhaseState())
        return _ISTFTState(tail)

    def _accumulate(self, deviation: torch.Tensor) -> torch.Tensor:
        """Phase ``[B, C, T, n_bins]`` of ``T`` synthesis frames from their deviations (float64
        running sum, wrapped to ``[0, 2 pi)``, plus the exact bin-centre advance)."""
        t = deviation.shape[2]
        if self.is_streaming:
            state: _AccumulatedPhaseState = self._streaming_state
            start, before = state.frames, state.phase
        else:
            start = torch.zeros(1, dtype=torch.long, device=deviation.device)
            before = None
        running = torch.cumsum(deviation.double(), dim=2)
        if before is not None:
            running = running + before[:, :, None]
        running = torch.remainder(running, 2 * math.pi)
        frame = start + torch.arange(t, device=deviation.device)  # [T] global synthesis frame
        bins = torch.arange(self.n_bins, device=deviation.device)
        centre = torch.remainder(frame[:, None] * bins[None] * self.hop_length, self.n_fft)  # exact integers
        if self.is_streaming and t:
            state.phase, state.frames = running[:, :, -1].detach(), start + t
        return (running + centre.double() * (2 * math.pi / self.n_fft)).to(deviation.dtype)

    def reference_phase(self, audio: torch.Tensor, n_frames: int) -> torch.Tensor:
        """Phase ``[B, C, n_frames, n_bins]`` of ``audio [B, C, N]`` in this head's framing: synthesis
        frame ``j`` is ``rfft(audio[j * hop : j * hop + n_fft] * window)`` (zeros past the end)."""
        need = (n_frames - 1) * self.hop_length + self.n_fft
        padded = F.pad(audio, (0, max(0, need - audio.shape[-1])))[..., :need]
        frames = padded.unfold(-1, self.n_fft, self.hop_length)  # [B, C, n_frames, n_fft]
        return torch.fft.rfft(frames * self.window, dim=-1).angle()

    def _pghi_phase(self, log_magnitude: torch.Tensor) -> torch.Tensor:
        """Phase of ``log_magnitude [B, C, T, n_bins]`` by :func:`~audiolatent.nn.pghi.rtpghi` (streaming: carried)."""
        b, c, t, n = log_magnitude.shape
        state = self._streaming_state.pghi if self.is_streaming else None
        phase = rtpghi_tensor(log_magnitude.reshape(b * c, t, n), self.n_fft, self.hop_length, state)
        return phase.to(log_magnitude.dtype).view(b, c, t, n)

    def spectrum(self, x: torch.Tensor, prior: torch.Tensor | None = None,
                 phase_reference: torch.Tensor | None = None) -> torch.Tensor:
        """Complex spectrum ``[B, C, T * S, n_fft // 2 + 1]`` (synthesis frames) from ``x [B, dim, T]``.

        ``prior``: an optional log-magnitude ``[B, T, n_fft // 2 + 1]`` per input frame (e.g.
        :class:`MelMagnitudePrior`) added to the predicted log magnitude of each of the frame's
        ``S`` synthesis frames and every channel: the network then predicts a correction.
        ``phase_reference`` (``pghi`` only): audio ``[B, C, N]`` whose phase (:meth:`reference_phase`)
        replaces the integrated one: training on the magnitude alone."""
        b, _, t = x.shape
        s = self.subframes
        if t == 1 and self.is_streaming:  # one frame (a 20 ms chunk): a matrix-vector product
            weight = self.proj.weight
            projected = linear_rows(x[..., 0], weight[..., 0], self.proj.bias, self._rows, self, sources=(weight,)).unsqueeze(-1)
        else:
            projected = self.proj(x)
        parts = self.n_parts
        out = projected.view(b, self.channels, parts, self.n_bins, s, t).permute(0, 1, 2, 5, 4, 3)
        out = out.reshape(b, self.channels, parts, t * s, self.n_bins)
        log_magnitude = out[:, :, 0]
        if self.phase == "accumulated":
            phase = self._accumulate(out[:, :, 1])
        elif self.phase == "absolute":
            phase = out[:, :, 1]
        if prior is not None:
            if tuple(prior.shape) != (b, t, self.n_bins):
                raise ValueError(f"ISTFT head: prior must be [B, T, n_bins] = {[b, t, self.n_bins]}, got {list(prior.shape)}")
            log_magnitude = log_magnitude + prior.repeat_interleave(s, dim=1).unsqueeze(1)
        log_magnitude = log_magnitude.clamp(max=_MAX_LOG_MAGNITUDE)
        if self.phase == "pghi":
            phase = self._pghi_phase(log_magnitude) if phase_reference is None else self.reference_phase(phase_reference, t * s)
        elif phase_reference is not None:
            raise ValueError(f"ISTFT head: phase_reference is for phase 'pghi', not {self.phase!r}")
        magnitude = log_magnitude.exp()
        return torch.complex(magnitude * phase.cos(), magnitude * phase.sin())

    @torch.no_grad()
    def warm_start_from_single_frame(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Initialise this ``S``-sub-frame head from the projection of a single-frame head with
        ``S`` times its FFT size and hop (same ``dim`` and channels): a starting point for fine-tuning
        a trained decoder with a finer synthesis, not an equivalent model.

        Sub-frame ``s``, bin ``m`` takes the old head's log-magnitude and phase rows of bin ``m * S``
        (the same frequency), and its phase bias is advanced by ``2 pi m s hop / n_fft`` (the linear
        phase of a shift by ``s`` synthesis hops), so that the ``S`` sub-frames of one latent frame
        start as the old frame's spectrum sampled at their own bins.

        Raises:
            ValueError: ``weight``/``bias`` are not the projection of such a single-frame head.
        """
        if self.phase == "pghi":
            raise ValueError("warm start: a 'pghi' head predicts no phase; it has no single-frame form to start from")
        s, c, n_new = self.subframes, self.channels, self.n_bins
        n_old = s * self.n_fft // 2 + 1
        dim = self.proj.in_channels
        if s < 2 or tuple(weight.shape) != (c * 2 * n_old, dim, 1) or tuple(bias.shape) != (c * 2 * n_old,):
            raise ValueError(
                f"warm start of a {s}-sub-frame head (n_fft {self.n_fft}): needs the projection of a single-frame "
                f"head with n_fft {s * self.n_fft} ([{c * 2 * n_old}, {dim}, 1]), got {tuple(weight.shape)}"
            )
        bins = torch.arange(n_new, device=weight.device) * s  # old bin of the same frequency
        w_old = weight.detach().reshape(c, 2, n_old, dim)[:, :, bins]  # [C, 2, n_new, dim]
        b_old = bias.detach().reshape(c, 2, n_old)[:, :, bins]
        shift = 2 * math.pi * torch.arange(n_new, device=weight.device) * self.hop_length / self.n_fft
        new_w = w_old[:, :, :, None].expand(c, 2, n_new, s, dim)  # channel ((c * 2 + k) * n_bins + bin) * S + s
        new_b = b_old[:, :, :, None].repeat(1, 1, 1, s)
        new_b[:, 1] += shift[:, None] * torch.arange(s, device=weight.device)
        self.proj.weight.copy_(new_w.reshape(self.proj.weight.shape))
        self.proj.bias.copy_(new_b.reshape(-1))

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None,
                phase_reference: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, dim, T]`` (and an optional log-magnitude ``prior`` and ``phase_reference``, see
        :meth:`spectrum`) -> ``[B, C, T * subframes * hop_length]``."""
        self._check_streaming_batch(x)
        b, _, t = x.shape
        n_out = t * self.stride
        t = t * self.subframes  # synthesis frames
        if t == 0:
            return x.new_zeros(b, self.channels, 0)
        frames = torch.fft.irfft(self.spectrum(x, prior, phase_reference), n=self.n_fft, dim=-1) * self.window  # [B, C, T, n_fft]
        hop, context = self.hop_length, self.n_fft - self.hop_length
        if self.is_streaming and t <= SMALL_CHUNK_FRAMES:
            # a few frames: add them one by one onto the carried tail (cheaper than fold's fixed cost)
            full = frames.new_zeros(b, self.channels, (t - 1) * hop + self.n_fft)
            full[..., :context] = self._streaming_state.tail
            for j in range(t):
                full[..., j * hop : j * hop + self.n_fft] += frames[:, :, j]
            self._streaming_state.tail = full[..., n_out:]
        else:
            full = F.fold(
                frames.reshape(b * self.channels, t, self.n_fft).transpose(1, 2),
                output_size=(1, (t - 1) * hop + self.n_fft),
                kernel_size=(1, self.n_fft),
                stride=(1, hop),
            ).view(b, self.channels, -1)  # causal overlap-add: frame j starts at sample j * hop
            if self.is_streaming and context:
                state: _ISTFTState = self._streaming_state
                full = torch.cat([full[..., :context] + state.tail, full[..., context:]], dim=-1)
                state.tail = full[..., n_out:]
        # the envelope depends on n mod hop: broadcast it over the T hops
        return (full[..., :n_out].view(b, self.channels, t, hop) * self.inverse_envelope).view(b, self.channels, n_out)


class MelMagnitudePrior(nn.Module):
    """A log-magnitude spectrum on a synthesis grid from a log-mel frame: ``[B, n_mels, T] -> [B, T, F]``.

    A mel vocoder has to rebuild the magnitude the mel analysis smoothed; most of it is a fixed
    linear map that needs no learning. This module computes it, so that a decoder head
    (:class:`StreamingISTFTHead` ``prior``) only learns a correction and the phase:

    1. ``a_m = mel_m / sum_k fb[m, k]`` (the analysis filterbank ``fb``, ``analysis_n_fft`` grid): the
       mean analysis magnitude (``power`` 1) or power (``power`` 2) inside band ``m``;
    2. on the synthesis grid (``n_fft``, the head's FFT size, ``F = n_fft // 2 + 1`` bins) bin ``j``
       takes the average of the ``a_m`` weighted by the same mel filters sampled on that grid,
       ``sum_m g[m, j] a_m / sum_m g[m, j]`` (a convex interpolation: non-negative and exact on a
       flat spectrum); bins outside every filter copy the nearest covered bin;
    3. ``power`` 2 is undone with a square root, and the result is scaled by
       ``sum(synthesis_window) / sum(analysis_window)`` (a sinusoid's peak in one STFT relative to
       the other), then ``ln(max(., floor))``.

    On a flat spectrum this is exact; on speech it is the spectral envelope Griffin-Lim starts
    from. The map is a fixed buffer ``[F, n_mels]``: per-frame, no state, so it streams.

    Args:
        n_fft: synthesis FFT size.
        synthesis_window: the head's window ``[n_fft]``.
        sample_rate, analysis_n_fft, win_length, n_mels, f_min, f_max, mel_scale, norm, power,
        log_floor: the mel analysis (:class:`~audiolatent.tokenizers.mel.MelConfig` fields;
            ``analysis_n_fft`` is its ``n_fft``, the analysis window a periodic Hann of
            ``win_length``).
    """

    def __init__(
        self,
        n_fft: int,
        synthesis_window: torch.Tensor,
        *,
        sample_rate: int,
        analysis_n_fft: int,
        win_length: int,
        n_mels: int,
        f_min: float = 0.0,
        f_max: float | None = None,
        mel_scale: str = "slaney",
        norm: str | None = "slaney",
        power: float = 1.0,
        log_floor: float = 1e-5,
    ) -> None:
        super().__init__()
        if power <= 0:
            raise ValueError(f"mel prior: power must be positive, got {power}")
        bank = dict(sample_rate=sample_rate, n_mels=n_mels, f_min=f_min, f_max=f_max, mel_scale=mel_scale, norm=norm)
        analysis = mel_filterbank(n_fft=analysis_n_fft, **bank).double()
        synthesis = mel_filterbank(n_fft=n_fft, **bank).double()  # [n_mels, F]
        band_sums = analysis.sum(1)
        if bool((band_sums <= 0).any()):
            raise ValueError(f"mel prior: some of the {n_mels} mel bands hold no FFT bin at n_fft {analysis_n_fft}")
        coverage = synthesis.sum(0)  # [F]
        covered = torch.nonzero(coverage > 0).squeeze(1)
        if covered.numel() == 0:
            raise ValueError(f"mel prior: no bin of the n_fft {n_fft} grid falls inside the mel filters")
        nearest = covered[(torch.arange(coverage.numel())[:, None] - covered[None]).abs().argmin(1)]
        weights = synthesis[:, nearest] / coverage[nearest]  # [n_mels, F], columns sum to 1
        mapping = (weights / band_sums[:, None]).T  # [F, n_mels]
        scale = float(synthesis_window.double().sum()) / float(torch.hann_window(win_length, dtype=torch.float64).sum())
        self.register_buffer("mapping", mapping.float(), persistent=False)
        self.power, self.scale = float(power), scale
        self.floor = math.log(max(log_floor, 1e-12) ** (1.0 / power) * scale * 1e-2)
        self.n_bins = n_fft // 2 + 1

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``log_mel [B, n_mels, T]`` -> log magnitude ``[B, T, F]``."""
        values = torch.matmul(self.mapping, log_mel.exp()).clamp_min(1e-30)  # [B, F, T]
        log_magnitude = values.log() / self.power + math.log(self.scale)
        return log_magnitude.clamp_min(self.floor).transpose(1, 2)
