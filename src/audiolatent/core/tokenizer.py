"""The Tokenizer protocol: audio -> Latent -> audio, offline or streaming.

A tokenizer is an ``nn.Module`` (a :class:`StreamingModule`) with

* ``encode(audio [B, C, N], lengths=None) -> Latent`` and ``decode(Latent) -> audio [B, C, N']``;
* ``sample_rate`` (Hz), ``channels``, ``hop_length`` (samples per frame of its base stream),
  ``frame_rate`` (= sample_rate / hop_length), ``causal`` and ``lookahead`` (samples of future
  input the round trip needs beyond the current frame; ``None`` = the whole signal, i.e. it
  cannot stream, like Griffin-Lim);
* ``streaming(batch_size)``: a context manager in which ``encode`` takes consecutive chunks
  whose length is a multiple of ``hop_length`` and ``decode`` takes consecutive frames, state
  carried between calls.

Framing rule, for every tokenizer: ``N`` samples give ``T = ceil(N / hop_length)`` frames (the
input is zero-padded on the right to a whole frame), and ``decode`` returns ``T * hop_length``
samples, trimmed back to the original ``N`` when the latent recorded it (offline calls).

Subclasses set ``kind`` and ``config_class`` and implement ``_encode(audio) -> list[Stream]`` and
``_decode(streams) -> audio``, both on frame-aligned input, plus the properties above. Their
constructor takes one config dataclass, which is all a checkpoint needs to rebuild them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch

from audiolatent.core.audio import check_audio
from audiolatent.core.config import config_hash, to_dict
from audiolatent.core.errors import LatentError, StreamingError
from audiolatent.core.latent import Latent, Stream
from audiolatent.core.streaming import StreamingModule

__all__ = ["Tokenizer"]


class Tokenizer(StreamingModule):
    """Base class of every tokenizer. See the module docstring for the contract."""

    kind: ClassVar[str] = ""
    config_class: ClassVar[type | None] = None

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        #: the name it was loaded under (built-in name or checkpoint path); set by load_tokenizer
        self.name: str = self.kind

    # --- to implement ------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def channels(self) -> int:
        return 1

    @property
    def hop_length(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def causal(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def lookahead(self) -> int | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _encode(self, audio: torch.Tensor) -> list[Stream]:  # pragma: no cover - abstract
        """Frame-aligned audio ``[B, C, T*hop]`` -> streams (lengths/num_samples filled by encode)."""
        raise NotImplementedError

    def _decode(self, streams: list[Stream]) -> torch.Tensor:  # pragma: no cover - abstract
        """Streams -> audio ``[B, C, T*hop]``."""
        raise NotImplementedError

    # --- derived -----------------------------------------------------------------------
    @property
    def streamable(self) -> bool:
        """Whether ``streaming()`` runs chunk by chunk with output equal to offline: a causal
        tokenizer, or one that streams with a finite lookahead and gives its pending frames
        back through :meth:`flush_encode` (the mel vocoders)."""
        return bool(self.causal)

    @property
    def frame_rate(self) -> float:
        """Frames per second of the base stream."""
        return self.sample_rate / self.hop_length

    @property
    def delay(self) -> int:
        """Samples by which the decoded audio lags the input (a declared decoder delay, as Opus
        has one); 0 for most tokenizers. The bench aligns by cross-correlation either way."""
        return 0

    @property
    def algorithmic_latency_ms(self) -> float | None:
        """Frame duration + lookahead + delay, in ms (None when the tokenizer needs the whole signal)."""
        if self.lookahead is None:
            return None
        return 1000.0 * (self.hop_length + self.lookahead + self.delay) / self.sample_rate

    @property
    def config_hash(self) -> str:
        frozen = self.__dict__.get("_streaming_config_hash")  # computed once per streaming() block
        return frozen if frozen is not None else config_hash({"kind": self.kind, "config": to_dict(self.config)})

    @contextlib.contextmanager
    def streaming(self, batch_size: int = 1) -> Iterator["Tokenizer"]:
        """See :meth:`StreamingModule.streaming`; the config hash that every latent carries is
        computed once on entry (a 20 ms chunk should not re-hash the config twice)."""
        with super().streaming(batch_size):
            self.__dict__["_streaming_config_hash"] = self.config_hash
            try:
                yield self
            finally:
                self.__dict__.pop("_streaming_config_hash", None)

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop_length)

    # --- public API ----------------------------------------------------------------------
    def encode(self, audio: torch.Tensor, lengths: torch.Tensor | None = None) -> Latent:
        """Encode ``[B, C, N]`` audio at ``self.sample_rate`` into a Latent.

        ``lengths`` ([B], samples) marks valid samples of a padded batch; the streams' lengths
        are then ``ceil(length / hop)`` frames. In streaming mode, N must be a multiple of the hop.
        """
        check_audio(audio, self.channels, name=f"{self.name} input")
        audio = audio.to(self.device)
        n = audio.shape[-1]
        if self.is_streaming:
            self._check_streaming_batch(audio)
            if n % self.hop_length:
                raise StreamingError(
                    f"{self.name}: streaming chunks must be a multiple of the hop ({self.hop_length} samples), got {n}"
                )
            frames_audio = audio
        else:
            pad = self.num_frames(n) * self.hop_length - n
            frames_audio = torch.nn.functional.pad(audio, (0, pad)) if pad else audio
        streams = self._encode(frames_audio)
        batch = audio.shape[0]
        if lengths is None:  # every item whole: one length per stream, computed in Python (cheap per chunk)
            for s in streams:
                if s.durations is not None:  # variable-rate: the tokenizer counted its own frames
                    continue
                frames = min(math.ceil(n / (self.sample_rate / s.frame_rate)), s.num_frames)
                s.lengths = torch.full((batch,), frames, dtype=torch.long)
            lengths = None if self.is_streaming else torch.full((batch,), n, dtype=torch.long)
        else:
            lengths = lengths.detach().cpu().long()
            for s in streams:
                if s.durations is not None:
                    s.lengths = self._variable_rate_lengths(s, lengths)
                    continue
                stream_hop = self.sample_rate / s.frame_rate
                s.lengths = torch.ceil(lengths.double() / stream_hop).long().clamp(max=s.num_frames)
        return Latent(
            streams, self.sample_rate, self.name, self.config_hash,
            None if self.is_streaming else lengths,
        )

    def _variable_rate_lengths(self, stream: Stream, lengths: torch.Tensor) -> torch.Tensor:
        """Frames of a variable-rate stream that start inside each item's ``lengths`` samples
        (a padded batch): those whose start time, the running sum of durations, is before the end."""
        counted = stream.lengths if stream.lengths is not None else torch.full_like(lengths, stream.num_frames)
        starts = torch.cumsum(stream.durations.double(), dim=1) - stream.durations.double()  # [B, T] seconds
        inside = (starts * self.sample_rate < lengths.double()[:, None] - 1e-6).sum(1)
        return torch.minimum(inside, counted.cpu().long())

    def flush_encode(self) -> Latent | None:
        """Streaming only: end the signal and return the frames the encoder still holds, or None.

        A tokenizer that streams with a lookahead (a centred analysis window) emits a frame only
        once the samples it reads have arrived, so at the end of a signal some frames are still
        pending; they are computed here with the zeros offline encoding pads past the end. The
        frames of every ``encode`` call followed by these equal the offline latent. A tokenizer
        whose streaming encode returns every frame at once (lookahead 0) holds nothing: None.
        After a flush, ``reset_streaming()`` starts the next signal.
        """
        if not self.is_streaming:
            raise StreamingError(f"{self.name}: flush_encode() is for streaming mode (inside `with tok.streaming():`)")
        streams = self._flush_encode()
        if streams is None:
            return None
        for s in streams:
            if s.lengths is None or s.durations is None:
                s.lengths = torch.full((s.values.shape[0],), s.num_frames, dtype=torch.long)
        return Latent(streams, self.sample_rate, self.name, self.config_hash, None)

    def _flush_encode(self) -> list[Stream] | None:
        """Streams of the frames still held at the end of a streamed signal (None: nothing held)."""
        return None

    def decode(self, latent: Latent) -> torch.Tensor:
        """Decode a Latent made by this tokenizer into ``[B, C, N]`` audio.

        Offline, the output is trimmed to the length the latent recorded at encode time.
        """
        if not isinstance(latent, Latent):
            raise LatentError(f"{self.name}: decode takes a Latent, got {type(latent).__name__}")
        if latent.config_hash and latent.config_hash != self.config_hash:
            raise LatentError(
                f"{self.name}: this latent was made by {latent.tokenizer!r} with another config "
                f"(hash {latent.config_hash}, this tokenizer {self.config_hash}); decode it with that tokenizer"
            )
        if latent.sample_rate != self.sample_rate:
            raise LatentError(f"{self.name}: latent is at {latent.sample_rate} Hz, tokenizer at {self.sample_rate} Hz")
        self.check_latent(latent)
        if self.is_streaming:
            self._check_streaming_batch(latent.streams[0].values)
        streams = [
            type(s)(s.values.to(self.device), s.frame_rate, s.codebook_sizes, s.name, s.lengths, s.durations)
            for s in latent.streams
        ]
        audio = self._decode(streams)
        if not self.is_streaming and latent.num_samples is not None:
            audio = audio[..., : int(latent.num_samples.max())]
        return audio

    def silence_probe(self) -> Latent:
        """The latent of one second of silence, encoded once and cached: what ``encode`` really
        produces (streams, shapes, rates), for :meth:`stream_spec` and :meth:`describe`.

        In streaming mode the states are set aside for that call and put back, so a stream in
        progress is not disturbed.
        """
        cached = self.__dict__.get("_silence_probe_cache")
        if cached is not None:
            return cached
        from audiolatent.core.streaming import streaming_modules

        saved = [(m, m._streaming_state, m._streaming_batch_size) for m in streaming_modules(self)]
        try:
            for m, _, _ in saved:
                m._streaming_state, m._streaming_batch_size = None, None
            with torch.inference_mode():
                dtype = next((p.dtype for p in self.parameters() if p.is_floating_point()), torch.float32)
                probe = self.encode(torch.zeros(1, self.channels, self.sample_rate, device=self.device, dtype=dtype))
        finally:
            for m, state, batch in saved:
                m._streaming_state, m._streaming_batch_size = state, batch
        self.__dict__["_silence_probe_cache"] = probe
        return probe

    def stream_spec(self) -> list[dict]:
        """What ``encode`` produces, per stream: ``kind``, ``frame_rate``, ``codebook_sizes``, ``dim``."""
        return [{"kind": "discrete" if st.is_discrete else "continuous", "frame_rate": st.frame_rate,
                 "codebook_sizes": tuple(st.codebook_sizes) if st.is_discrete else None,
                 "dim": None if st.is_discrete else st.values.shape[1]} for st in self.silence_probe().streams]

    def check_latent(self, latent: Latent) -> None:
        """Raise LatentError unless every stream matches :meth:`stream_spec` and holds valid codes.

        The latent's own header is not trusted: codes are checked against this tokenizer's
        codebook sizes (a code of 900 in a 256-code codebook would read another codebook's row).
        A discrete stream may hold the first codebooks only (the lower bitrates of an RVQ).
        """
        spec = self.stream_spec()
        if len(latent.streams) != len(spec):
            raise LatentError(f"{self.name}: latent has {len(latent.streams)} stream(s), this tokenizer makes {len(spec)}")
        for s, want in zip(latent.streams, spec):
            kind = "discrete" if s.is_discrete else "continuous"
            where = f"{self.name}: latent stream {s.name!r}"
            if kind != want["kind"]:
                raise LatentError(f"{where} is {kind}, this tokenizer's is {want['kind']}")
            if abs(s.frame_rate - want["frame_rate"]) > 1e-6 * want["frame_rate"]:
                raise LatentError(f"{where} is at {s.frame_rate:g} frames/s, this tokenizer's at {want['frame_rate']:g}")
            # a prefix of the codebooks is a lower bitrate of a scalable (RVQ) tokenizer
            if kind == "discrete" and tuple(s.codebook_sizes) != want["codebook_sizes"][: len(s.codebook_sizes)]:
                raise LatentError(f"{where} declares {_sizes(s.codebook_sizes)} codes, this tokenizer has "
                                  f"{_sizes(want['codebook_sizes'])}")
            if kind == "continuous" and s.values.shape[1] != want["dim"]:
                raise LatentError(f"{where} has {s.values.shape[1]} dims, this tokenizer's has {want['dim']}")
            if s.num_frames == 0 and not self.is_streaming:
                raise LatentError(f"{where} has 0 frames: nothing to decode")
            s.check_codes()

    def save(self, directory) -> "Path":
        """Write a checkpoint directory (config.yaml + model.safetensors) that load_tokenizer reads."""
        from audiolatent.core.checkpoint import save_checkpoint

        return save_checkpoint(self, directory)

    def describe(self) -> dict:
        """Facts about this tokenizer (what ``audiolatent info`` prints).

        Stream shapes and the nominal bitrate come from encoding one second of silence
        (:meth:`silence_probe`), so they are what ``encode`` really produces, not what a config claims.
        """
        probe = self.silence_probe()
        streams = [
            {
                "name": s.name,
                "kind": "discrete" if s.is_discrete else "continuous",
                "frame_rate": s.frame_rate,
                "codebooks": len(s.codebook_sizes) if s.is_discrete else None,
                "codebook_sizes": sorted(set(s.codebook_sizes)) if s.is_discrete else None,
                "dim": None if s.is_discrete else s.values.shape[1],
                "bits_per_second": s.bits_per_second,
                "values_per_second": s.values_per_second,
                "description": _stream_line(s),
            }
            for s in probe.streams
        ]
        return {
            "name": self.name,
            "kind": self.kind,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "hop_length": self.hop_length,
            "frame_rate": self.frame_rate,
            "nominal_bits_per_second": probe.bits_per_second if probe.is_discrete else None,
            "values_per_second": probe.values_per_second,
            "causal": self.causal,
            "streamable": self.streamable,
            "lookahead_samples": self.lookahead,
            "algorithmic_latency_ms": self.algorithmic_latency_ms,
            "parameters": sum(p.numel() for p in self.parameters()),
            "config_hash": self.config_hash,
            "streams": streams,
        }


def _sizes(sizes) -> str:
    """``(256, 256, 256)`` -> ``3 x 256``; mixed sizes listed."""
    sizes = list(sizes)
    return f"{len(sizes)} x {sizes[0]}" if len(set(sizes)) == 1 else str(sizes)


def _stream_line(s: Stream) -> str:
    if s.is_discrete:
        sizes = sorted(set(s.codebook_sizes))
        size = str(sizes[0]) if len(sizes) == 1 else str(sizes)
        return f"{s.name}: {len(s.codebook_sizes)} x {size} codes @ {s.frame_rate:g} Hz = {s.bits_per_second:g} bits/s"
    return f"{s.name}: {s.values.shape[1]} continuous dims @ {s.frame_rate:g} Hz = {s.values_per_second:g} values/s"
