"""Neural vocoders for the handcrafted latents: ``mel-16k`` / ``dmel-16k`` features, a trained decoder.

A mel spectrogram is what most TTS systems generate, and they pair it with a neural vocoder;
decoding it with Griffin-Lim (``mel-16k``) understates what the latent carries. A vocoder here is
a :class:`~audiolatent.tokenizers.codec.NeuralCodec` whose encoder is fixed and whose decoder is
trained with the project's trainer (``audiolatent train mel-16k-vocoder``):

* encoder kind ``log-mel`` (:class:`StreamingLogMel`): exactly the analysis of
  :class:`~audiolatent.tokenizers.mel.MelTokenizer` (default: mel-16k, 80 slaney mels, n_fft
  1024, hop 160, natural log floored at 1e-5), no parameters, so the latent *is* mel-16k's;
* bottleneck ``identity`` (stream ``mel``: the vocoder of ``mel-16k``) or ``levels`` (16 uniform
  levels per bin over ``[ln 1e-5, ln 10]``, stream ``dmel``: the codes of ``dmel-16k``);
* decoder ``vocos`` at the mel frame rate (causal ConvNeXt + causal iSTFT head, lookahead 0). The
  packaged configs predict magnitudes only (head ``phase: pghi``, one 40 ms Hann synthesis frame
  per mel frame, and a declared ``delay`` of two hops so that frame is centred on its own
  analysis window): the phase is integrated from them by causal RTPGHI (:mod:`audiolatent.nn.pghi`),
  training synthesises with each crop's own phase (so the losses see the magnitudes alone), and
  decoding runs one frame per call so that streaming equals offline bit for bit. Latency: hop +
  lookahead + delay = 160 + 352 + 320 samples = 52 ms. The first,
  learned-phase decoder is ``configs/codecs/mel-16k-vocoder-phase.yaml``.

Streaming with lookahead. Frame ``t`` of the mel analysis is *centred* at sample ``t * hop``: its
window reads samples up to ``t * hop + n_fft / 2 - 1`` (offline, zeros past the end), i.e.
``lookahead = n_fft / 2 - hop`` samples past the end of its own hop window (352 samples = 22 ms for
mel-16k; algorithmic latency ``hop + lookahead`` = 512 samples = 32 ms). In streaming the frontend
therefore emits frame ``t`` only once that sample has arrived: a chunk of ``k`` hops yields between
0 and ``k`` frames and the frames still held at the end of the signal come out of
``codec.flush_encode()``, computed with the zeros that offline analysis pads. Streamed frames,
then the flushed ones, equal the offline latent; the causal decoder turns each chunk of frames
into ``frames * hop`` samples, so the whole round trip streams with the declared latency (the
bench probes it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.core.streaming import StreamingModule
from audiolatent.nn.melscale import mel_filterbank
from audiolatent.tokenizers.mel import MelConfig, spectrum_to_log_mel
from audiolatent.tokenizers.griffinlim import stft_frames

__all__ = ["StreamingLogMel", "ANALYSIS_FIELDS", "analysis_of"]

#: the MelConfig fields that define the analysis (the rest configure Griffin-Lim synthesis)
ANALYSIS_FIELDS = ("n_fft", "win_length", "hop_length", "n_mels", "f_min", "f_max", "mel_scale", "norm", "power",
                   "log_floor")


@dataclass
class _LogMelState:
    buffer: torch.Tensor  # [B, L]: padded-signal samples from the window start of the next frame on
    received: int  # input samples received so far
    emitted: int  # frames returned so far
    ended: bool  # flush() was called


class StreamingLogMel(StreamingModule):
    """Waveform ``[B, 1, N]`` -> log-mel ``[B, n_mels, N / hop]``, the analysis of mel-16k, streaming.

    Args:
        channels: must be 1 (mono; mel-16k is mono).
        sample_rate: Hz.
        n_fft, win_length, hop_length, n_mels, f_min, f_max, mel_scale, norm, power, log_floor:
            as :class:`~audiolatent.tokenizers.mel.MelConfig` (defaults: mel-16k).

    Attributes: ``hop_length`` (= ``stride``), ``dimension`` (``n_mels``), ``lookahead`` (input
    samples past a frame's own hop window that it reads), ``causal`` (False: it reads ahead, and
    streams with that lookahead), ``mel_config``, ``mel_analysis`` (sample rate and
    analysis fields, for a decoder's mel prior).

    Offline input must be a whole number of hops (the codec pads). In streaming, each call
    returns the frames whose window is complete (possibly none); :meth:`flush` ends the signal
    and returns the rest.
    """

    causal = False

    def __init__(self, channels: int = 1, sample_rate: int = 16000, **analysis) -> None:
        super().__init__()
        unknown = sorted(set(analysis) - set(ANALYSIS_FIELDS))
        if unknown:
            raise ConfigError(f"log-mel encoder: unknown argument(s) {unknown}; known: {list(ANALYSIS_FIELDS)}")
        if channels != 1:
            raise ConfigError(f"log-mel encoder: mono only (mel-16k is a mono analysis), got channels={channels}")
        self.mel_config = c = MelConfig(sample_rate=sample_rate, **analysis)
        self.register_buffer("mel_basis", mel_filterbank(
            sample_rate=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, f_min=c.f_min, f_max=c.f_max,
            mel_scale=c.mel_scale, norm=c.norm), persistent=False)  # derived from the config: not in checkpoints
        self.register_buffer("window", torch.hann_window(c.win_length, periodic=True), persistent=False)
        self.channels, self.dimension = channels, c.n_mels
        self.hop_length = self.stride = c.hop_length
        self.mel_analysis = {"sample_rate": c.sample_rate, **analysis_of(c)}  # what a decoder's mel prior reads
        # the last non-zero window sample of frame t is at t * hop + reach (torch.stft centres the
        # window inside the n_fft frame); the frame's own hop window ends at t * hop + hop - 1
        reach = (c.n_fft - c.win_length) // 2 + c.win_length - 1 - c.n_fft // 2
        self.lookahead = max(0, reach - (c.hop_length - 1))

    def n_frames(self, n_samples: int) -> int:
        return -(-n_samples // self.hop_length)

    def _log_mel(self, spec: torch.Tensor) -> torch.Tensor:
        return spectrum_to_log_mel(spec, self.mel_basis.to(spec.real.dtype), self.mel_config)

    def _frames(self, buffer: torch.Tensor, count: int) -> torch.Tensor:
        """The first ``count`` frames of ``buffer`` (whose sample 0 starts frame 0's window): ``[B, n_mels, count]``.

        Computed in float64 and rounded: a frame then comes out the same bit for bit whichever
        chunk it was computed in (a float32 FFT or matmul over a different number of frames can
        differ in the last bits), which a ``pghi`` decoder's heap integration needs to stream
        exactly like the offline decode."""
        c = self.mel_config
        if count == 0:
            return buffer.new_zeros(buffer.shape[0], c.n_mels, 0)
        piece = buffer[:, : (count - 1) * c.hop_length + c.n_fft].double()
        window = self.window.double()
        spec = torch.stft(piece, c.n_fft, c.hop_length, c.win_length, window, center=False, return_complex=True)
        return self._log_mel(spec).to(buffer.dtype)

    def _init_streaming_state(self, batch_size: int) -> _LogMelState:
        zeros = torch.zeros(batch_size, self.mel_config.n_fft // 2, device=self.window.device)
        return _LogMelState(zeros, 0, 0, False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, 1, N]`` (N a multiple of the hop) -> ``[B, n_mels, N / hop]`` offline, or the
        frames completed by this chunk in streaming."""
        hop = self.hop_length
        if x.shape[-1] % hop:
            raise StreamingError(f"log-mel encoder: input must be a multiple of hop_length {hop} samples, got {x.shape[-1]}")
        if not self.is_streaming:
            c = self.mel_config
            spec = stft_frames(x[:, 0].double(), c.n_fft, hop, self.window.double(), x.shape[-1] // hop)
            return self._log_mel(spec).to(x.dtype)  # float64, as the streamed frames (_frames)
        state: _LogMelState = self._streaming_state
        if state.ended:
            raise StreamingError("log-mel encoder: the signal was ended by flush(); reset_streaming() to start another")
        buffer = torch.cat([state.buffer.to(x.dtype), x[:, 0]], dim=-1)
        count = max(0, (buffer.shape[-1] - self.mel_config.n_fft) // hop + 1)
        out = self._frames(buffer, count)
        state.buffer = buffer[:, count * hop :]
        state.received += x.shape[-1]
        state.emitted += count
        return out

    def flush(self) -> torch.Tensor:
        """Streaming only: end the signal and return its remaining frames ``[B, n_mels, k]``,
        computed with the zeros offline analysis pads past the end."""
        if not self.is_streaming:
            raise StreamingError("log-mel encoder: flush() is for streaming mode")
        state: _LogMelState = self._streaming_state
        if state.ended:
            raise StreamingError("log-mel encoder: flush() was already called for this signal")
        c = self.mel_config
        remaining = state.received // self.hop_length - state.emitted
        tail = state.buffer.new_zeros(state.buffer.shape[0], c.n_fft - c.n_fft // 2)
        out = self._frames(torch.cat([state.buffer, tail], dim=-1), remaining)
        state.buffer, state.emitted, state.ended = state.buffer[:, :0], state.emitted + remaining, True
        return out


def analysis_of(config: MelConfig) -> dict:
    """The ``log-mel`` encoder arguments that reproduce ``config``'s analysis."""
    return {f.name: getattr(config, f.name) for f in fields(config) if f.name in ANALYSIS_FIELDS}
