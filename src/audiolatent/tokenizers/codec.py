"""Neural codec: encoder -> bottleneck -> decoder, as one streaming Tokenizer.

The layout shared by SoundStream (Zeghidour et al. 2021), EnCodec (Défossez et al. 2022), DAC
(Kumar et al. 2023), Mimi (Défossez et al. 2024), SNAC (Siuzdak et al. 2024) and the VAE of
Stable Audio (Evans et al. 2024): the three parts are swap points chosen by the config.

* encoder ``[B, C, N] -> z [B, D, T]``, ``T = N / encoder_hop``, chosen by ``encoder.kind`` from
  :data:`ENCODERS`: ``seanet`` (default; :class:`~audiolatent.nn.seanet.SEANetEncoder`,
  ``encoder_hop = prod(ratios) * extra_stride`` samples) or ``stft-convnext``
  (:class:`~audiolatent.nn.convnext.STFTConvNeXtEncoder`: causal STFT features + ConvNeXt at frame
  rate) or ``log-mel`` (:class:`~audiolatent.tokenizers.vocoder.StreamingLogMel`: the fixed,
  parameter-free analysis of ``mel-16k``, for a trained vocoder) or ``teacher``
  (:class:`~audiolatent.tokenizers.units.TeacherEncoder`: a frozen teacher's features, for k-means
  units) or ``dual`` (:class:`~audiolatent.tokenizers.dual.DualEncoder`: any of these beside a
  frozen teacher, fused before the bottleneck, X-Codec style);
* bottleneck: any :mod:`audiolatent.quantize` bottleneck, ``z -> z_q [B, D, T]`` plus one latent
  stream per :class:`~audiolatent.quantize.base.StreamSpec` (RVQ codes ``[B, K, T]``, FSQ,
  VAE means ``[B, D', T]``, multi-scale codes ``[B, 1, T / stride_i]``, ...);
* decoder ``z_q -> [B, C, T * encoder_hop]``, chosen by ``decoder.kind`` from :data:`DECODERS`:
  ``seanet`` (:class:`~audiolatent.nn.seanet.SEANetDecoder`) or ``vocos``
  (:class:`~audiolatent.nn.convnext.VocosDecoder`: ConvNeXt at frame rate + causal ISTFT head).

Config rule for the decoder (:func:`decoder_kwargs`): its ``kind`` defaults to the encoder's. Of
the same kind, the decoder takes the encoder's arguments updated by the ``decoder`` section (a
SEANet decoder mirrors its encoder). Of another kind, it takes the ``decoder`` section alone, and
``dimension`` and ``hop_length`` default to the built encoder's. Behind a ``dual`` encoder the
decoder mirrors its ``acoustic`` part. Every part receives
``channels`` (and ``sample_rate`` when its constructor takes it) from the top level.

Framing. ``hop_length = encoder_hop * bottleneck.temporal_stride`` samples: the smallest unit
the codec encodes. For every bottleneck but the multi-scale RVQ this is the encoder hop; with
``msrvq`` strides ``(4, 2, 1)`` one "frame" of the tokenizer is 4 encoder frames, because a
coarse code needs its whole block. Stream ``s`` runs at ``sample_rate / (encoder_hop *
spec.stride)`` frames/s, so ``frame_rate`` (= sample_rate / hop_length) is the rate of the
coarsest stream. Offline ``encode`` right-pads to a whole ``hop_length`` and ``decode`` trims
back (the Tokenizer framing rule); streaming chunks must be multiples of ``hop_length``.

Latency. A decoder may declare a ``delay`` (the ``pghi`` mel vocoders: two hops): its output
lags the input by that many samples, training compares against the delayed input, and
``algorithmic_latency_ms`` counts it. ``causal`` is true when encoder and decoder are causal
(every bottleneck is per frame,
``msrvq`` per block of ``hop_length`` samples, which the hop already accounts for).
``lookahead = encoder.lookahead + decoder.lookahead`` samples, computed exactly from the layers
(:mod:`audiolatent.nn.latency`) and checked by probing in the tests; algorithmic latency is
``hop_length + lookahead`` (for ``msrvq`` that is ``max(strides) * encoder_hop``, i.e. the
``(stride - 1) * encoder_hop`` samples of block lookahead plus one encoder hop). An encoder that
streams *with* lookahead (``log-mel``, centred windows) returns only the frames it can complete
from each chunk, possibly none, and the rest from :meth:`flush_encode` at the end of the signal.

Training: ``forward(audio, n_q=None)`` returns reconstruction, ``z``, ``z_q``, the bottleneck's
unweighted losses and stats (see :meth:`NeuralCodec.forward`).

Configs: :class:`CodecConfig` (YAML: ``configs/codecs/*.yaml``); :func:`build_codec` builds
from a YAML path or dict with command-line style overrides.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from audiolatent.core.config import apply_overrides, from_dict, load_yaml, resolve_config
from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.core.latent import Latent, Stream
from audiolatent.core.registry import register_kind
from audiolatent.core.tokenizer import Tokenizer
from audiolatent.nn.conv import relayout_for_time_major, remove_weight_norm, use_winograd
from audiolatent.nn.convnext import STFTConvNeXtEncoder, VocosDecoder
from audiolatent.nn.seanet import SEANetDecoder, SEANetEncoder
from audiolatent.quantize import build_bottleneck
from audiolatent.tokenizers.dual import DualEncoder
from audiolatent.tokenizers.units import TeacherEncoder
from audiolatent.tokenizers.vocoder import StreamingLogMel

__all__ = [
    "CodecConfig", "NeuralCodec", "build_codec", "decoder_kwargs", "ENCODERS", "DECODERS",
    "register_encoder", "register_decoder", "build_encoder",
]

#: codec encoders by ``kind``: classes taking ``channels`` (+ ``sample_rate`` if they accept it) and
#: exposing ``hop_length``, ``dimension``, ``lookahead`` (input samples), ``causal``
ENCODERS: dict[str, type[torch.nn.Module]] = {}
#: codec decoders by ``kind``: the same, with ``lookahead`` in output samples
DECODERS: dict[str, type[torch.nn.Module]] = {}
DEFAULT_KIND = "seanet"


def _registrar(table: dict[str, type], kind: str) -> Callable[[type], type]:
    def register(cls: type) -> type:
        existing = table.get(kind)
        if existing is not None and existing is not cls:
            raise TypeError(f"codec part kind {kind!r} is already registered by {existing.__qualname__}")
        table[kind] = cls
        return cls

    return register


def register_encoder(kind: str) -> Callable[[type], type]:
    """Decorator/function: make an encoder class selectable as ``encoder: {kind: <kind>}``."""
    return _registrar(ENCODERS, kind)


def register_decoder(kind: str) -> Callable[[type], type]:
    """Decorator/function: make a decoder class selectable as ``decoder: {kind: <kind>}``."""
    return _registrar(DECODERS, kind)


register_encoder("seanet")(SEANetEncoder)
register_encoder("stft-convnext")(STFTConvNeXtEncoder)
register_encoder("log-mel")(StreamingLogMel)
register_encoder("teacher")(TeacherEncoder)
register_encoder("dual")(DualEncoder)
register_decoder("seanet")(SEANetDecoder)
register_decoder("vocos")(VocosDecoder)


def _default_bottleneck() -> dict:
    return {"kind": "rvq", "n_codebooks": 8, "codebook_size": 1024}


@dataclass
class CodecConfig:
    """Everything that builds a :class:`NeuralCodec`.

    Attributes:
        sample_rate: Hz.
        channels: audio channels (passed to encoder and decoder; do not repeat it inside them).
        encoder: optional ``kind`` (:data:`ENCODERS`, default ``seanet``) plus that class's
            keyword arguments (SEANet: ``dimension``, ``n_filters``, ``ratios``, ``causal``,
            ``sequence_model``, ...).
        decoder: optional ``kind`` (:data:`DECODERS`, default: the encoder's) plus keyword
            arguments; of the encoder's kind they *override* the mirrored encoder arguments
            (e.g. only ``{n_filters: 96, final_activation: tanh}`` for DAC's wider decoder;
            empty = the exact mirror of the encoder), see :func:`decoder_kwargs`.
        bottleneck: :func:`audiolatent.quantize.build_bottleneck` config (``kind`` + arguments);
            its ``dim`` defaults to the encoder's ``dimension``.
        description: free text (what the config imitates, its reference numbers).
    """

    sample_rate: int = 16000
    channels: int = 1
    encoder: dict = field(default_factory=dict)
    decoder: dict = field(default_factory=dict)
    bottleneck: dict = field(default_factory=_default_bottleneck)
    description: str = ""


def _mirrored(config: CodecConfig) -> dict:
    """The encoder section a decoder mirrors: a ``dual`` encoder's acoustic part, else the encoder's."""
    section = config.encoder
    if isinstance(section, dict) and section.get("kind") == "dual" and isinstance(section.get("acoustic"), dict):
        return section["acoustic"]
    return section


def _kinds(config: CodecConfig) -> tuple[str, str]:
    encoder_kind = _mirrored(config).get("kind", DEFAULT_KIND)
    return encoder_kind, config.decoder.get("kind", encoder_kind)


def decoder_kwargs(config: CodecConfig) -> dict:
    """The decoder's arguments (without ``kind``): the encoder's (a ``dual`` encoder's acoustic
    part's) updated by ``config.decoder`` when both are of the same kind, else ``config.decoder`` alone."""
    encoder_kind, decoder_kind = _kinds(config)
    kwargs = dict(_mirrored(config)) if encoder_kind == decoder_kind else {}
    kwargs.update(config.decoder)
    kwargs.pop("kind", None)
    return kwargs


def _build_part(table: dict[str, type], kind: str, name: str, kwargs: dict, defaults: dict) -> torch.nn.Module:
    cls = table.get(kind)
    if cls is None:
        raise ConfigError(f"codec.{name}: unknown kind {kind!r}; known: {', '.join(sorted(table))}")
    accepted = inspect.signature(cls.__init__).parameters
    for key, value in defaults.items():
        if key in accepted and key not in kwargs:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"codec.{name} ({kind}): {exc}") from None


def build_encoder(section: dict, channels: int, sample_rate: int, name: str = "encoder") -> torch.nn.Module:
    """An encoder from its config section (``kind``, default ``seanet``, plus arguments), given the
    codec's ``channels`` and ``sample_rate`` (used by encoders that wrap another, e.g. ``dual``)."""
    _check_section(section, name)
    args = {k: v for k, v in section.items() if k != "kind"}
    return _build_part(ENCODERS, section.get("kind", DEFAULT_KIND), name, args,
                       {"channels": channels, "sample_rate": sample_rate})


def _check_section(section: dict, name: str) -> None:
    if not isinstance(section, dict):
        raise ConfigError(f"codec.{name}: expected a mapping, got {type(section).__name__}")
    if "channels" in section:
        raise ConfigError(f"codec.{name}: `channels` is set at the top level of the codec config, not in {name}")
    if name == "encoder" and "final_activation" in section:
        raise ConfigError("codec.encoder: `final_activation` is a decoder argument; put it under `decoder`")


@register_kind
class NeuralCodec(Tokenizer):
    """Encoder -> bottleneck -> decoder codec (see the module docstring for framing and latency).

    ``encode(audio [B, C, N], lengths=None, n_q=None) -> Latent``: ``n_q`` keeps the first
    ``n_q`` quantisers of an RVQ-like bottleneck (lower bitrate); None = all.
    ``decode(Latent) -> [B, C, N]``: decodes whatever number of codebooks the latent holds.
    """

    kind = "codec"
    config_class = CodecConfig

    def __init__(self, config: CodecConfig) -> None:
        super().__init__(config)
        _check_section(config.decoder, "decoder")  # the encoder's is checked by build_encoder
        _, decoder_kind = _kinds(config)
        shared = {"channels": config.channels, "sample_rate": config.sample_rate}
        self.encoder = build_encoder(config.encoder, config.channels, config.sample_rate)
        from_encoder = {"dimension": self.encoder.dimension, "hop_length": self.encoder.hop_length}
        if getattr(self.encoder, "mel_analysis", None) is not None:  # a log-mel latent: a mel vocoder's prior reads it
            from_encoder["mel_analysis"] = self.encoder.mel_analysis
        self.decoder = _build_part(DECODERS, decoder_kind, "decoder", decoder_kwargs(config), {**shared, **from_encoder})
        if self.encoder.hop_length != self.decoder.hop_length or self.encoder.dimension != self.decoder.dimension:
            raise ConfigError(
                f"codec: encoder (hop {self.encoder.hop_length}, dimension {self.encoder.dimension}) and decoder "
                f"(hop {self.decoder.hop_length}, dimension {self.decoder.dimension}) must agree"
            )
        bottleneck = dict(config.bottleneck)
        bottleneck.setdefault("dim", self.encoder.dimension)
        self.bottleneck = build_bottleneck(bottleneck)
        self._n_q: int | None = None
        self._name_teacher_by_architecture()

    def _name_teacher_by_architecture(self) -> None:
        """A frozen teacher inside the encoder (``dual``, ``teacher`` kinds) is part of the state
        dict, so a teacher that can describe its architecture (a phone teacher's ``spec()``) is named
        by it in the config instead of by its folder: checkpoints then load on a machine without
        that folder, and a resumed run's config still matches its checkpoint's."""
        spec = getattr(getattr(self.encoder, "teacher", None), "spec", None)
        if callable(spec) and "teacher" in self.config.encoder:
            self.config = replace(self.config, encoder={**self.config.encoder, "teacher": spec()})

    # --- Tokenizer properties ---------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def channels(self) -> int:
        return self.config.channels

    @property
    def encoder_hop(self) -> int:
        """Samples per encoder frame (the finest stream's hop)."""
        return self.encoder.hop_length

    @property
    def hop_length(self) -> int:
        return self.encoder.hop_length * self.bottleneck.temporal_stride

    @property
    def causal(self) -> bool:
        # a segmenting bottleneck reads ahead inside a segment: it streams, with a bounded lookahead
        return bool(self.encoder.causal and self.decoder.causal and not getattr(self.bottleneck, "lookahead_frames", 0))

    @property
    def lookahead(self) -> int | None:
        if self.encoder.lookahead is None or self.decoder.lookahead is None:  # a whole-signal teacher
            return None
        # a segmenting bottleneck holds a segment back until it closes (at most max_length - 1 frames)
        held = getattr(self.bottleneck, "lookahead_frames", 0) * self.encoder.hop_length
        return int(self.encoder.lookahead + self.decoder.lookahead + held)

    @property
    def delay(self) -> int:
        """Samples the decoded audio lags the input: the decoder's declared ``delay`` (0 for most)."""
        return int(getattr(self.decoder, "delay", 0))

    @property
    def streamable(self) -> bool:
        """Causal, or a causal decoder behind an encoder that streams with lookahead and flushes."""
        return bool(self.decoder.causal and (self.encoder.causal or hasattr(self.encoder, "flush")))  # (segment: it flushes)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # --- encode / decode ------------------------------------------------------------------
    def encode(self, audio: torch.Tensor, lengths: torch.Tensor | None = None, n_q: int | None = None) -> Latent:
        """``[B, C, N]`` -> Latent; ``n_q`` selects the number of quantisers (bitrate)."""
        if self.is_streaming and audio.shape[-1] % self.hop_length and self.bottleneck.temporal_stride > 1:
            raise StreamingError(
                f"{self.name}: the multi-scale bottleneck needs whole blocks of {self.bottleneck.temporal_stride} "
                f"frames, so streaming chunks must be a multiple of {self.hop_length} samples "
                f"({self.encoder_hop} x {self.bottleneck.temporal_stride}), got {audio.shape[-1]}"
            )
        self._n_q = n_q
        try:
            return super().encode(audio, lengths)
        finally:
            self._n_q = None

    def _encode(self, audio: torch.Tensor) -> list[Stream]:
        return self._streams_of(self.encoder(audio))

    @property
    def variable_rate(self) -> bool:
        """Whether the latent has one frame per segment of varying duration (a ``segment`` bottleneck)."""
        return bool(getattr(self.bottleneck, "variable_rate", False))

    def _flush_encode(self) -> list[Stream] | None:
        flush = getattr(self.encoder, "flush", None)  # an encoder with lookahead holds frames back
        held = None if flush is None else self._streams_of(flush())
        if not self.variable_rate:
            return held
        last = self._segment_streams(*self.bottleneck.flush(self._n_q))  # the open segment
        if held is None:
            return last
        return [type(a)(torch.cat([a.values, b.values], dim=-1), a.frame_rate, a.codebook_sizes, a.name,
                        a.lengths + b.lengths, torch.cat([a.durations, b.durations], dim=-1)) for a, b in zip(held, last)]

    def _streams_of(self, z: torch.Tensor) -> list[Stream]:
        if self.variable_rate:
            return self._segment_streams(*self.bottleneck.encode_segments(z, self._n_q))
        codes = self.bottleneck.encode(z, self._n_q)
        specs = self.bottleneck.stream_specs(self._n_q)
        return [
            Stream(
                values,
                self.sample_rate / (self.encoder_hop * spec.stride),
                spec.codebook_sizes if spec.kind == "discrete" else None,
                spec.name,
            )
            for values, spec in zip(codes, specs)
        ]

    def _segment_streams(self, codes: list[torch.Tensor], counts: torch.Tensor) -> list[Stream]:
        """Streams of a segmenting bottleneck: every stream has one frame per segment, the
        segments' ``lengths`` and their ``durations`` in seconds (zero on padding)."""
        specs = self.bottleneck.stream_specs(self._n_q)
        counts = counts.detach().cpu().long()
        frames = codes[-1][:, 0].detach().cpu().long() + 1  # the durations stream: frames - 1
        valid = torch.arange(frames.shape[1])[None] < counts[:, None]
        seconds = (frames * valid).double() * self.encoder_hop / self.sample_rate
        return [
            Stream(values, self.sample_rate / self.encoder_hop, spec.codebook_sizes if spec.kind == "discrete" else None,
                   spec.name, counts.clone(), seconds.float())
            for values, spec in zip(codes, specs)
        ]

    def _decode(self, streams: list[Stream]) -> torch.Tensor:
        if self.variable_rate:
            z_q = self.bottleneck.decode([s.values for s in streams], streams[-1].lengths)
        else:
            z_q = self.bottleneck.decode([s.values for s in streams])
        if z_q.shape[-1] == 0:  # a streamed chunk in which an encoder with lookahead completed no frame
            return z_q.new_zeros(z_q.shape[0], self.channels, 0)
        return self.decoder(z_q)

    # --- training ----------------------------------------------------------------------
    def forward(self, audio: torch.Tensor, n_q: int | None = None) -> dict[str, Any]:
        """Training/eval pass on ``audio [B, C, N]``.

        The input is right-padded with zeros to ``T * hop_length`` samples,
        ``T = ceil(N / hop_length)`` (nothing is padded when N is a multiple of the hop, which
        training crops should be), and the reconstruction is trimmed back to N samples.

        Returns a dict with ``audio`` (reconstruction ``[B, C, N]``), ``z`` (encoder output
        ``[B, D, T']``, ``T' = T * temporal_stride`` encoder frames), ``z_q`` (bottleneck output,
        same shape), ``losses`` (unweighted bottleneck losses: ``commitment``, ``codebook``,
        ``kl``, ...), ``stats`` (codebook usage/perplexity, ...), ``streams`` (the codes) and
        ``first_level`` (the first quantiser level's output ``[B, D, T']`` for an RVQ or split
        RVQ, else ``z_q``: what the semantic losses of :mod:`audiolatent.train.semantic` shape).
        ``target``: what ``audio`` should equal: the input, delayed by :attr:`delay` samples when the
        decoder declares a delay (what the reconstruction losses compare against).
        ``n_q=None`` in training mode lets an RVQ apply quantizer dropout. In training mode a
        decoder whose phase comes from its magnitudes (a ``vocos`` decoder with a ``pghi`` head)
        synthesises with the input's own phase, so the losses train the magnitudes; in eval mode
        (and in ``decode``) it integrates the phase itself.
        """
        n = audio.shape[-1]
        pad = -n % self.hop_length
        x = torch.nn.functional.pad(audio, (0, pad)) if pad else audio
        z = self.encoder(x)
        out = self.bottleneck(z, n_q)
        # what the output should equal: the input, delayed by the decoder's declared delay
        reference = torch.nn.functional.pad(x, (self.delay, 0))[..., : x.shape[-1]] if self.delay else x
        target = reference[..., :n] if self.delay else audio
        if self.training and getattr(self.decoder, "trains_on_reference_phase", False):
            recon = self.decoder(out.z_q, phase_reference=reference)[..., :n]  # the losses see the magnitudes only
        else:
            recon = self.decoder(out.z_q)[..., :n]
        first = out.first_level if out.first_level is not None else out.z_q
        return {"audio": recon, "target": target, "z": z, "z_q": out.z_q, "losses": out.losses, "stats": out.stats,
                "streams": out.streams, "first_level": first}

    # --- streaming -------------------------------------------------------------------
    @contextlib.contextmanager
    def streaming(self, batch_size: int = 1, warm_up: bool = True) -> Iterator["NeuralCodec"]:
        """Stream consecutive chunks (see :class:`~audiolatent.core.tokenizer.Tokenizer`).

        ``warm_up``: on entry, encode and decode one hop of silence and then reset every state,
        so the first real chunk does not pay the one-time costs (the latent check's silence
        probe, the inference tables of the quantiser, first-call kernel set-up); the chunks that
        follow see exactly the fresh state they would without it.
        """
        with super().streaming(batch_size):
            if warm_up:
                self._warm_up_streaming(batch_size)
            yield self

    def _warm_up_streaming(self, batch_size: int) -> None:
        dtype = next((p.dtype for p in self.parameters() if p.is_floating_point()), torch.float32)
        silence = torch.zeros(batch_size, self.channels, self.hop_length, device=self.device, dtype=dtype)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):  # leave the caller's RNG as it was
            self.decode(self.encode(silence))
        self.reset_streaming()

    # --- inference ---------------------------------------------------------------------
    def prepare_for_inference(self, winograd: bool = True) -> "NeuralCodec":
        """Fold weight norm into plain weights and switch to eval mode.

        A weight-normed conv recomputes its weight on every call; folding it saves that cost,
        which matters most for small streaming chunks. Every conv weight is then stored in the
        order offline inference reads it (:func:`~audiolatent.nn.conv.relayout_for_time_major` with
        ``min_bytes=0``: same values, and neither a reordered copy per call nor a memoised one:
        DAC-16k kept 19 MiB of channels-last copies of its smaller weights). Training afterwards trains the folded
        weights. Checkpoints saved after folding have different keys: save before folding.

        Args:
            winograd: let offline inference run the wide kernel-7 and kernel-3 convolutions with
                Winograd's algorithm (:func:`~audiolatent.nn.conv.use_winograd`: 1.4-3x faster
                layers, float32 errors of about 3e-5 of a layer's largest output; transformed
                weights memoised for short signals only). ``False`` keeps every output equal to the unprepared codec's
                to float rounding (1e-6). Streaming never uses it.
        """
        use_winograd(relayout_for_time_major(remove_weight_norm(self), min_bytes=0), winograd)
        return self.eval()


def build_codec(source: str | os.PathLike | dict, overrides: list[str] | tuple[str, ...] = ()) -> NeuralCodec:
    """Build a randomly initialised codec from a YAML file or a config dict.

    Args:
        source: path of a YAML file whose top-level keys are :class:`CodecConfig` fields
            (e.g. ``configs/codecs/tiny-16k.yaml``), the name of a packaged config
            (``"tiny-16k"``, ``"encodec-24k"``, ...: see ``packaged_configs("codecs")``), or a dict.
        overrides: ``key.sub=value`` strings, e.g. ``("bottleneck.n_codebooks=4",)``.

    Returns the codec in training mode; its ``name`` is the file stem (or ``"codec"``).
    """
    if not isinstance(source, dict):
        source = resolve_config(source, "codecs")
    data = load_yaml(source) if not isinstance(source, dict) else dict(source)
    if overrides:
        data = apply_overrides(data, list(overrides))
    codec = NeuralCodec(from_dict(CodecConfig, data, where=str(source) if not isinstance(source, dict) else "codec"))
    if not isinstance(source, dict):
        codec.name = Path(source).stem
    return codec
