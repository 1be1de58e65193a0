"""Classical codecs as reference tokenizers: Opus (libopus) and Codec2.

They put a user's tokenizer beside codecs people know, on the rate and distortion axes
(DESIGN.md, "Classical and external reference points"). They have no learned latent, so the
bench skips the modelability axis for family ``"classical"``.

What their Latent holds
-----------------------
One discrete stream ``"bitstream"``: the codec's packets, one frame per packet, each byte a code
of a 256-way codebook, ``[B, bytes_per_packet, T]``. Both codecs run at a *constant* bitrate
(Opus in hard CBR, ``vbr=off``; Codec2 is CBR by design), so every packet has the same size and
the nominal rate ``frame_rate * sum(log2 codebook sizes)`` is exactly the codec's bitrate:
opus-6k = 50 packets/s x 15 bytes x 8 = 6000 bits/s. Codec2 700C packs 28 bits per 40 ms
packet into 4 bytes; its last byte carries 4 bits (the high nibble), so its last codebook has 16
entries and the nominal rate is the true 700 bits/s, not 800. The bytes are not a latent a
second-stage model should learn (they are entropy-coded bits), which is why modelability is not
measured on them.

Timing
------
* Opus (RFC 6716) runs at 16 kHz with 20 ms packets (hop 320 samples). Its encoder looks
  6.5 ms (104 samples at 16 kHz) ahead; the decoder runs at 48 kHz (libopus via FFmpeg) and is
  resampled to 16 kHz with soxr. ``decode`` removes the 104-sample codec delay so output sample
  ``n`` pairs with input sample ``n``; to make that possible ``encode`` appends one extra
  "flush" packet per item (the stream has ``ceil((N + 104) / 320)`` frames, of which the first
  ``ceil(N / 320)`` are counted as valid by ``lengths``).
* Codec2 (Rowe, codec2 1.x) runs at 8 kHz: input is resampled 16 kHz -> 8 kHz, decoded audio
  8 kHz -> 16 kHz (soxr, offline and linear-phase, so the resampler itself looks a little
  ahead). Packets are 20 ms (3200) or 40 ms (1600, 700C). The round trip delays speech by about
  15 ms (3200, 1600) and 35 ms (700C), which ``decode`` removes the same way. Codec2 is a
  vocoder (phases are synthesised, not coded), so these delays were estimated by
  cross-correlating log-energy envelopes (1 ms frames) of input and output on built-in speech,
  not waveforms.

``lookahead`` (samples at 16 kHz) is the codec delay plus a margin for the resamplers and the
analysis windows: Opus declares 6.5 + 3 ms, checked against the probe of
:func:`audiolatent.bench.streaming.probe_round_trip_lookahead` in the tests (it measures about
129 samples at 24 kbps); Codec2 declares its delay + 15 ms: its decoder draws random phases
from a global generator in libcodec2, so its round trip is not a deterministic function of the
input (``deterministic = False``). The bench probes its (deterministic) encoder instead
(:func:`audiolatent.bench.streaming.probe_encoder_lookahead`: packets need no input past their
own 20/40 ms, about -110 samples) and reports the declared round-trip latency. These
tokenizers run offline only: ``streaming()`` raises StreamingError on encode/decode (libopus and
codec2 could stream, but the resamplers here are offline).

Libraries
---------
Opus: ``pip install av`` (PyAV; its binary wheels bundle FFmpeg with libopus, no system
package). Codec2: ``pip install pycodec2`` (its manylinux wheels bundle libcodec2). When one is
missing, building the tokenizer raises :class:`ClassicalCodecUnavailable` naming the command.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import numpy as np
import soxr
import torch

from audiolatent.core.errors import AudioLatentError, StreamingError
from audiolatent.core.latent import Stream
from audiolatent.core.registry import register_kind, register_tokenizer
from audiolatent.core.tokenizer import Tokenizer

__all__ = [
    "ClassicalCodecUnavailable",
    "OpusConfig",
    "OpusTokenizer",
    "Codec2Config",
    "Codec2Tokenizer",
    "opus_available",
    "codec2_available",
]

_PCM_SCALE = 32767.0


class ClassicalCodecUnavailable(AudioLatentError, ImportError):
    """The Python package of a classical codec is not installed; the message says which."""


def _require(module: str, pip_name: str, who: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ClassicalCodecUnavailable(
            f"{who} needs the package {pip_name!r} ({exc}); install it with: pip install {pip_name}"
        ) from None


def opus_available() -> bool:
    """True when PyAV with a libopus encoder is importable."""
    try:
        av = importlib.import_module("av")
        av.codec.Codec("libopus", "w")
    except Exception:  # noqa: BLE001 - missing package or an FFmpeg build without libopus
        return False
    return True


def codec2_available() -> bool:
    """True when pycodec2 is importable."""
    return importlib.util.find_spec("pycodec2") is not None


def _to_pcm16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1.0, 1.0) * _PCM_SCALE).astype(np.int16)


def _codes_from_packets(packets: list[bytes], bits_per_packet: int, who: str) -> torch.Tensor:
    """Packets of ``ceil(bits/8)`` bytes -> ``[n_codebooks, T]`` codes (last one shifted if partial)."""
    n_bytes = math.ceil(bits_per_packet / 8)
    sizes = {len(p) for p in packets}
    if sizes != {n_bytes}:
        raise AudioLatentError(f"{who}: expected constant {n_bytes}-byte packets, got sizes {sorted(sizes)}")
    codes = torch.tensor(np.frombuffer(b"".join(packets), dtype=np.uint8).reshape(len(packets), n_bytes).T.copy()).long()
    spare = 8 * n_bytes - bits_per_packet
    if spare:
        codes[-1] = codes[-1] >> spare  # codec bits are packed MSB first: keep the used high bits
    return codes


def _packets_from_codes(codes: torch.Tensor, bits_per_packet: int) -> list[bytes]:
    """Inverse of :func:`_codes_from_packets` for one item ``[n_codebooks, T]``."""
    spare = 8 * codes.shape[0] - bits_per_packet
    codes = codes.clone().cpu()
    if spare:
        codes[-1] = codes[-1] << spare
    raw = codes.T.contiguous().to(torch.uint8).numpy()
    return [row.tobytes() for row in raw]


def _codebook_sizes(bits_per_packet: int) -> tuple[int, ...]:
    full, rest = divmod(bits_per_packet, 8)
    return (256,) * full + ((2**rest,) if rest else ())


class _ClassicalTokenizer(Tokenizer):
    """Shared framing: delay compensation, flush packets, offline-only operation."""

    #: samples (at the tokenizer rate) by which the codec delays its output; removed by decode
    codec_delay: int = 0

    def _check_offline(self) -> None:
        if self.is_streaming:
            raise StreamingError(f"{self.name}: classical codecs run offline only in audiolatent (no streaming mode)")

    @property
    def causal(self) -> bool:
        return False

    def _padded(self, item: np.ndarray) -> np.ndarray:
        """Append the codec delay (rounded up to whole packets) so the last input sample is coded."""
        extra = math.ceil(self.codec_delay / self.hop_length) * self.hop_length
        return np.pad(item, (0, extra))

    def _trim(self, audio: np.ndarray, n_frames: int) -> np.ndarray:
        """Drop the codec delay and return exactly ``n_frames * hop`` samples."""
        out = audio[self.codec_delay :][: n_frames * self.hop_length]
        return np.pad(out, (0, n_frames * self.hop_length - len(out)))

    def _encode(self, audio: torch.Tensor) -> list[Stream]:
        self._check_offline()
        items = [self._encode_item(self._padded(a[0].double().cpu().numpy())) for a in audio]
        codes = torch.stack(items)
        return [Stream(codes, self.frame_rate, _codebook_sizes(self.bits_per_packet), "bitstream")]

    def _decode(self, streams: list[Stream]) -> torch.Tensor:
        self._check_offline()
        codes = streams[0].values
        out = [self._trim(self._decode_item(c), codes.shape[-1]) for c in codes]
        return torch.from_numpy(np.stack(out)).float()[:, None].to(codes.device)


@dataclass
class OpusConfig:
    """Opus in hard CBR: ``bitrate`` bits/s, ``frame_ms`` packets, ``application`` audio|voip|lowdelay."""

    bitrate: int = 6000
    sample_rate: int = 16000
    frame_ms: int = 20
    application: str = "audio"


@register_kind
class OpusTokenizer(_ClassicalTokenizer):
    """Opus through FFmpeg's libopus (PyAV). See the module docstring."""

    kind = "opus"
    config_class = OpusConfig
    #: libopus encoder lookahead, 6.5 ms (2.5 ms CELT overlap + 4 ms SILK delay compensation)
    LOOKAHEAD_MS = 6.5

    def __init__(self, config: OpusConfig | None = None) -> None:
        super().__init__(config or OpusConfig())
        self._av = _require("av", "av", "the Opus tokenizer")
        if not opus_available():
            raise ClassicalCodecUnavailable("the Opus tokenizer needs PyAV built with libopus; pip install av")
        if self.config.sample_rate not in (8000, 12000, 16000, 24000, 48000):
            raise AudioLatentError(f"Opus runs at 8/12/16/24/48 kHz, got {self.config.sample_rate}")
        self.codec_delay = round(self.config.sample_rate * self.LOOKAHEAD_MS / 1000)
        if (self.config.bitrate * self.config.frame_ms) % 8000:
            raise AudioLatentError(f"opus: bitrate x frame ({self.config.bitrate} x {self.config.frame_ms} ms) must be whole bytes")
        self.bits_per_packet = self.config.bitrate * self.config.frame_ms // 1000

    sample_rate = property(lambda self: self.config.sample_rate)
    hop_length = property(lambda self: self.config.sample_rate * self.config.frame_ms // 1000)
    # the codec delay plus ~3 ms for the 48 kHz -> 16 kHz resampler; checked by the probe in tests
    lookahead = property(lambda self: self.codec_delay + self.config.sample_rate * 3 // 1000)

    def _encode_item(self, x: np.ndarray) -> torch.Tensor:
        av, sr, hop = self._av, self.sample_rate, self.hop_length
        encoder = av.CodecContext.create("libopus", "w")
        encoder.sample_rate, encoder.layout, encoder.format = sr, "mono", "s16"
        encoder.bit_rate = self.config.bitrate
        encoder.options = {"vbr": "off", "frame_duration": str(self.config.frame_ms), "application": self.config.application}
        pcm = _to_pcm16(x)
        packets: list[bytes] = []
        for start in range(0, len(pcm), hop):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + hop], format="s16", layout="mono")
            frame.sample_rate, frame.pts = sr, start
            packets += [bytes(p) for p in encoder.encode(frame)]
        packets += [bytes(p) for p in encoder.encode(None)]
        return _codes_from_packets(packets[: len(pcm) // hop], self.bits_per_packet, self.name)

    def _decode_item(self, codes: torch.Tensor) -> np.ndarray:
        av = self._av
        decoder = av.CodecContext.create("libopus", "r")
        decoder.layout, decoder.sample_rate = "mono", 48000  # FFmpeg's libopus decoder runs at 48 kHz
        chunks = []
        for packet in _packets_from_codes(codes, self.bits_per_packet):
            for frame in decoder.decode(av.Packet(packet)):
                chunks.append(frame.to_ndarray().reshape(-1))
        y = np.concatenate(chunks).astype(np.float64) / 32768.0 if chunks else np.zeros(0)
        return soxr.resample(y, 48000, self.sample_rate) if self.sample_rate != 48000 else y


@dataclass
class Codec2Config:
    """Codec2 mode (``"3200"``, ``"1600"``, ``"700C"``) at ``sample_rate`` (resampled to 8 kHz inside)."""

    mode: str = "3200"
    sample_rate: int = 16000


#: pycodec2's mode argument, and the codec delay (ms) decode removes, per mode
_CODEC2_MODES = {"3200": (3200, 15.0), "1600": (1600, 15.0), "700C": (700, 35.0)}
_CODEC2_RATE = 8000


@register_kind
class Codec2Tokenizer(_ClassicalTokenizer):
    """Codec2 through pycodec2, at 8 kHz inside. See the module docstring."""

    kind = "codec2"
    config_class = Codec2Config
    #: libcodec2 synthesises unvoiced phases with a process-global pseudo-random generator that
    #: cannot be reseeded, so two round trips of the same input differ: the causality probe
    #: cannot run on it, and the bench reports its declared latency instead
    deterministic = False

    def __init__(self, config: Codec2Config | None = None) -> None:
        super().__init__(config or Codec2Config())
        if self.config.mode not in _CODEC2_MODES:
            raise AudioLatentError(f"codec2 mode must be one of {sorted(_CODEC2_MODES)}, got {self.config.mode!r}")
        self._pycodec2 = _require("pycodec2", "pycodec2", "the Codec2 tokenizer")
        probe = self._pycodec2.Codec2(_CODEC2_MODES[self.config.mode][0])
        self.bits_per_packet = probe.bits_per_frame()
        self._samples_8k = probe.samples_per_frame()
        self.codec_delay = round(self.config.sample_rate * _CODEC2_MODES[self.config.mode][1] / 1000)

    sample_rate = property(lambda self: self.config.sample_rate)
    hop_length = property(lambda self: self._samples_8k * self.config.sample_rate // _CODEC2_RATE)
    # codec delay + codec2's analysis window reaching past its frame + the two resamplers
    lookahead = property(lambda self: self.codec_delay + self.config.sample_rate * 15 // 1000)

    def _encode_item(self, x: np.ndarray) -> torch.Tensor:
        codec = self._pycodec2.Codec2(_CODEC2_MODES[self.config.mode][0])
        pcm = _to_pcm16(soxr.resample(x, self.sample_rate, _CODEC2_RATE))
        spf = self._samples_8k
        pcm = np.pad(pcm, (0, -len(pcm) % spf))
        packets = [bytes(codec.encode(pcm[s : s + spf])) for s in range(0, len(pcm), spf)]
        return _codes_from_packets(packets, self.bits_per_packet, self.name)

    def _decode_item(self, codes: torch.Tensor) -> np.ndarray:
        codec = self._pycodec2.Codec2(_CODEC2_MODES[self.config.mode][0])
        pcm = [np.asarray(codec.decode(p)) for p in _packets_from_codes(codes, self.bits_per_packet)]
        y8 = np.concatenate(pcm).astype(np.float64) / 32768.0
        return soxr.resample(y8, _CODEC2_RATE, self.sample_rate)


def _register() -> None:
    for kbps in (6, 12, 24):
        register_tokenizer(
            f"opus-{kbps}k", lambda kbps=kbps: OpusTokenizer(OpusConfig(bitrate=kbps * 1000)),
            f"Opus (libopus via PyAV) {kbps} kbps CBR, 20 ms packets, 16 kHz; bitstream bytes as codes", "classical",
        )
    for mode in ("3200", "1600", "700C"):
        register_tokenizer(
            f"codec2-{mode.lower()}", lambda mode=mode: Codec2Tokenizer(Codec2Config(mode=mode)),
            f"Codec2 {mode} (pycodec2) at 8 kHz inside, 16 kHz in/out; bitstream bytes as codes", "classical",
        )


_register()
