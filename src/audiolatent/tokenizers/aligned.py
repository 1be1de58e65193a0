"""Text-aligned tokens: one token per phone, from a phone alignment (kind ``phone-aligned``).

TADA (one vector per text token) and its relatives place one latent frame per unit of the
transcript; their boundaries come from the text, not from the audio's own changes. This
tokenizer is that comparison point for the variable-rate codec: a trained codec with a
``segment`` bottleneck (``codec-16k-varrate``) whose segment boundaries are given by a phone
alignment instead of its causal router. Everything else (pooling, the RVQ of segment tokens,
the duration stream, the decoder) is the codec's own, so beside the codec it isolates one
question: do the learned, causal boundaries serve the decoder as well as the phone onsets?

* **Boundaries**: phone ``[phone, start_s, end_s]`` starts a segment at encoder frame
  ``round(start_s * frame_rate)`` (frame ``t`` covers ``[t, t + 1) / frame_rate``); two phones
  that round to one frame share a token; a phone longer than the codec's ``max_length`` frames
  is split (the duration code cannot say more). The latent is the codec's: token streams and a
  duration stream, one frame per segment.
* **Non-causal and offline**: a boundary is known only from the alignment of the whole
  utterance, so ``causal`` is False, ``lookahead`` None and it does not stream.
* **Input**: :meth:`PhoneAlignedCodec.encode_aligned` takes the alignment (the ``phones`` of a
  manifest row, as ``speech_aligned`` has); plain :meth:`encode` has none and refuses. The
  bench passes each file's alignment and skips corpora without one.

Name: ``codec-16k-varrate-phones`` (the shipped variable-rate codec, boundaries from phones).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.core.latent import Latent, Stream
from audiolatent.core.tokenizer import Tokenizer

__all__ = ["PhoneAlignedCodec", "phone_starts"]

Phones = Sequence[Sequence]  # [[phone, start_s, end_s], ...]


def phone_starts(phones: Phones, n_frames: int, frame_rate: float) -> torch.Tensor:
    """``bool [n_frames]``: the frames at which a phone of ``phones`` starts (frame 0 always)."""
    starts = torch.zeros(n_frames, dtype=torch.bool)
    if n_frames == 0:
        return starts
    for row in phones:
        if len(row) != 3:
            raise ConfigError(f"phone alignment: each entry must be [phone, start_s, end_s], got {row!r}")
        start = float(row[1])
        if not start == start or start < 0:  # NaN or negative
            raise ConfigError(f"phone alignment: start time {row[1]!r} of {row[0]!r} is not a time >= 0")
        frame = round(start * frame_rate)
        if frame < n_frames:
            starts[frame] = True
    starts[0] = True
    return starts


class PhoneAlignedCodec(Tokenizer):
    """A variable-rate codec whose segments are the phones of an alignment (module docstring).

    Args:
        codec: a :class:`~audiolatent.tokenizers.codec.NeuralCodec` with a ``segment`` bottleneck.
        source: what the codec was loaded from (a name or path), recorded in the config.
    """

    kind = "phone-aligned"
    needs_phones = True
    checkpointable = False  # a view of the codec: save or export the codec itself

    def __init__(self, codec, source: str) -> None:
        if not getattr(codec, "variable_rate", False):
            raise ConfigError(f"phone-aligned: {source} has no segment bottleneck (a variable-rate codec is needed)")
        super().__init__({"codec": str(source), "codec_config_hash": codec.config_hash, "boundaries": "phones"})
        self.codec = codec
        self._phones: list | None = None

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    @property
    def channels(self) -> int:
        return self.codec.channels

    @property
    def hop_length(self) -> int:
        return self.codec.hop_length

    @property
    def causal(self) -> bool:
        return False

    @property
    def lookahead(self) -> int | None:
        return None  # the whole utterance's alignment

    @property
    def streamable(self) -> bool:
        return False

    def streaming(self, batch_size: int = 1):
        raise StreamingError(f"{self.name}: boundaries come from a whole-utterance phone alignment; it does not stream")

    def encode(self, audio: torch.Tensor, lengths: torch.Tensor | None = None) -> Latent:
        if self._phones is None:
            raise ConfigError(f"{self.name}: needs a phone alignment; call encode_aligned(audio, phones) "
                              "(phones: [[phone, start_s, end_s], ...] per item, as a speech_aligned manifest row has)")
        return super().encode(audio, lengths)

    def encode_aligned(self, audio: torch.Tensor, phones, lengths: torch.Tensor | None = None) -> Latent:
        """``audio [B, C, N]`` and one alignment per item (a single alignment for B = 1) -> Latent."""
        if phones and isinstance(phones[0], (list, tuple)) and phones[0] and isinstance(phones[0][0], str):
            phones = [phones]  # one alignment, not a batch of them
        if audio.dim() == 3 and len(phones) != audio.shape[0]:
            raise ConfigError(f"{self.name}: {len(phones)} alignment(s) for a batch of {audio.shape[0]}")
        self._phones = [list(p) for p in phones]
        try:
            return self.encode(audio, lengths)
        finally:
            self._phones = None

    def _encode(self, audio: torch.Tensor) -> list[Stream]:
        z = self.codec.encoder(audio)
        rate = self.codec.sample_rate / self.codec.encoder_hop
        starts = torch.stack([phone_starts(p, z.shape[-1], rate) for p in self._phones])
        return self.codec._segment_streams(*self.codec.bottleneck.encode_segments(z, None, starts=starts))

    def _decode(self, streams: list[Stream]) -> torch.Tensor:
        return self.codec._decode(streams)

    def silence_probe(self) -> Latent:
        """One second of silence as one (split) pause: the latent's streams and shapes."""
        cached = self.__dict__.get("_silence_probe_cache")
        if cached is None:
            with torch.inference_mode():
                silence = torch.zeros(1, self.channels, self.sample_rate, device=self.device)
                cached = self.encode_aligned(silence, [["pau", 0.0, 1.0]])
            self.__dict__["_silence_probe_cache"] = cached
        return cached
