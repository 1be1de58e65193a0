"""Adapters: the pretrained codecs of other projects as audiolatent tokenizers.

An adapter wraps a model of a well-kept library (``transformers``; later ``diffusers``,
``snac``) behind the :class:`~audiolatent.core.tokenizer.Tokenizer` interface, so the bench
places EnCodec, DAC, ... on the same four axes as our own tokenizers, on the same audio.

* **Weights the way users hold them**: ``pretrained=True`` (the default) loads the official
  checkpoint (:attr:`AdapterSpec.hub_id` at ``revision``) through the library's own
  ``from_pretrained``: the local cache first, offline when ``HF_HUB_OFFLINE=1``, or a local
  directory given as ``weights``. Absent weights are one :class:`AdapterError` line naming the id
  and how to get it. ``pretrained=False`` builds the same architecture with random weights (the
  library's init, seeded, and codebooks re-randomised, since several libraries start them at
  zero and would give all-zero codes) for tests and speed figures; such a tokenizer is named
  ``NAME (random weights)``, never the bare famous name.
* **Bitrate**: RVQ codecs keep the first ``n_q`` codebooks. ``load_tokenizer("encodec-24k@6kbps")``
  or ``load_tokenizer("dac-16k@4q")`` pick it by bitrate or by count (see :func:`parse_options`).
* **Provenance**: :attr:`AdapterTokenizer.weights` says what was loaded (hub id, revision,
  package versions, or ``random``); the bench stores it in ``results.json``.
* **Causality**: declared from the architecture (:attr:`AdapterSpec.causal`, ``lookahead``) and
  probed by the bench's streaming axis like every tokenizer.

An adapter file defines one :class:`AdapterSpec` per name (how to build the model from a
config or a checkpoint, how to encode and decode codes) and calls :func:`register_adapter`.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from audiolatent.core.errors import AudioLatentError, ConfigError, StreamingError
from audiolatent.core.latent import Stream
from audiolatent.core.registry import register_kind, register_tokenizer
from audiolatent.core.tokenizer import Tokenizer

__all__ = ["AdapterError", "AdapterSpec", "AdapterConfig", "AdapterTokenizer", "register_adapter", "ADAPTERS",
           "parse_options", "adapter_status", "rerandomise_codebooks", "meta_parameters", "apply_overrides", "capture_input"]

EXTRA = "adapters"


class AdapterError(AudioLatentError, RuntimeError):
    """A missing package or missing weights for an adapter."""


@dataclass(frozen=True)
class AdapterSpec:
    """Everything an adapter name needs (see the module docstring).

    ``build(weights, revision, pretrained, overrides) -> nn.Module``; ``encode(model, audio [B, C, N], n_q)
    -> codes [B, K, T]`` (one RVQ stream) or a list of :class:`Stream` (several streams: a
    multi-scale codec, a side stream, a continuous latent); ``decode(model, values) -> audio
    [B, C, N']`` with ``values`` the single stream's tensor, or the list of every stream's.
    ``overrides`` (random weights only): config fields replaced to build a reduced model of
    the same classes (tests), e.g. ``{"num_hidden_layers": 2, "semantic_model_config":
    {"hidden_size": 64}}``.
    """

    name: str
    description: str
    package: str
    hub_id: str
    sample_rate: int
    channels: int
    hop_length: int
    codebook_size: int
    max_codebooks: int
    default_codebooks: int
    causal: bool
    lookahead: int | None
    build: Callable[..., torch.nn.Module]
    encode: Callable[..., torch.Tensor]
    decode: Callable[..., torch.Tensor]
    codebook_choices: tuple[int, ...] | None = None  # allowed n_q (None: 1 .. max_codebooks)
    revision: str = "main"
    #: random weights: where the encoder's latents lie (model -> (mean [D], std [D]) over frames), so
    #: re-randomised codebooks lie there too (N(0, 1) codebooks around near-constant latents give one code)
    latent_scale: Callable[[torch.nn.Module], tuple] | None = None
    #: random weights: a model-specific re-randomisation ``(model, seed)`` instead of :func:`rerandomise_codebooks`
    randomise: Callable[[torch.nn.Module, int], None] | None = None
    #: exact streaming encode ``(model, audio chunk, n_q, state dict) -> codes`` (None: offline only)
    stream_encode: Callable[..., torch.Tensor] | None = None
    #: nominal bits/s at ``n_q`` codebooks when it is not frame_rate x n_q x log2(codebook_size)
    #: (multi-scale streams, side information); None for a continuous latent is given by ``continuous``
    bits: Callable[[int], float] | None = None
    #: a continuous latent (no codebooks, no bitrate choices; ``codebook_size`` unused)
    continuous: bool = False
    #: what the streams are, for the README table and ``audiolatent list`` (e.g. "3 x 4096 at 12, 23, 47 Hz")
    streams_note: str = ""
    #: the checkpoint's config file in its hub repository (how ``adapter_status`` sees a cached download)
    config_file: str = "config.json"
    #: False when decoding draws random numbers (SNAC's noise blocks): the bench then probes the
    #: encoder's reach and takes the round trip's lookahead as declared
    deterministic: bool = True

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def bits_per_second(self, n_q: int) -> float:
        if self.continuous:
            return 0.0
        if self.bits is not None:
            return self.bits(n_q)
        return self.frame_rate * n_q * math.log2(self.codebook_size)


ADAPTERS: dict[str, AdapterSpec] = {}


@dataclass
class AdapterConfig:
    """What rebuilds an adapter: its registered ``name``, the codebooks kept, and the weights.

    Attributes:
        name: the adapter (``encodec-24k``, ``dac-16k``, ...).
        n_q: codebooks kept (None: the adapter's default bitrate).
        pretrained: load the official weights (True) or build random ones (False).
        weights: a local checkpoint directory instead of the hub id (None: the hub id).
        revision: hub revision (None: the adapter's pinned one).
        seed: random weights' seed.
        overrides: random weights only: config fields of the wrapped library replaced (nested
            dicts for sub-configs) to build a reduced model of the same classes, e.g. for tests
            of a 600 M-parameter codec. Such a tokenizer is named ``NAME (random weights, reduced)``.
    """

    name: str = ""
    n_q: int | None = None
    pretrained: bool = True
    weights: str | None = None
    revision: str | None = None
    seed: int = 0
    overrides: dict | None = None

    def __post_init__(self) -> None:
        if self.name not in ADAPTERS:
            raise ConfigError(f"unknown adapter {self.name!r}; adapters: {', '.join(sorted(ADAPTERS))}")
        spec = ADAPTERS[self.name]
        if self.overrides and self.pretrained:
            raise ConfigError(f"{self.name}: config overrides build a reduced model with random weights; "
                              "they need pretrained=False")
        if self.n_q is not None and spec.continuous:
            raise ConfigError(f"{self.name} is a continuous latent: it has no codebooks to choose")
        if self.n_q is not None:
            choices = spec.codebook_choices or tuple(range(1, spec.max_codebooks + 1))
            if self.n_q not in choices:
                rates = ", ".join(f"{n} ({spec.bits_per_second(n) / 1000:g} kbps)" for n in choices)
                raise ConfigError(f"{self.name}: {self.n_q} codebooks is not a bitrate it has; choose one of {rates}")


def require(package: str, name: str) -> None:
    """AdapterError naming the extra when ``package`` is not installed."""
    if importlib.util.find_spec(package) is None:
        raise AdapterError(f"{name} needs the {package!r} package: pip install 'audiolatent[{EXTRA}]'")


def rerandomise_codebooks(model: torch.nn.Module, seed: int, mean=0.0, std=1.0) -> int:
    """Fill every codebook tensor (params and buffers named ``*codebook*``) with seeded random
    vectors; usage counters become 1. Returns the number of tensors changed.

    ``mean``, ``std`` (scalars or ``[D]``): where the encoder's latents lie. The first codebook
    (the first RVQ stage) is drawn from ``N(mean, std^2)``, later ones (residuals) from
    ``N(0, std^2)``, so random weights give varied codes instead of one code everywhere.
    """
    generator = torch.Generator().manual_seed(seed)
    changed, first_module = 0, None
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if "codebook" not in name or not tensor.is_floating_point():
                continue
            module, leaf = name.rsplit(".", 1)
            if leaf in ("cluster_size", "cluster_usage"):
                tensor.fill_(1.0)
            elif leaf in ("embed", "embed_avg", "embed_sum", "weight"):
                first_module = module if first_module is None else first_module
                values = torch.randn(tensor.shape, generator=generator) * torch.as_tensor(std)
                tensor.copy_(values + torch.as_tensor(mean) if module == first_module else values)
            else:
                continue
            changed += 1
        for name, tensor in model.named_buffers():
            if "codebook" in name and name.endswith(("inited", "initialized")):
                tensor.fill_(1)
    return changed


@register_kind
class AdapterTokenizer(Tokenizer):
    """A registered adapter (:data:`ADAPTERS`) as a tokenizer: one discrete stream ``[B, n_q, T]``."""

    kind = "adapter"
    config_class = AdapterConfig

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        self.spec = ADAPTERS[config.name]
        require(self.spec.package, config.name)
        torch.manual_seed(config.seed)
        self.model = self.spec.build(weights=config.weights or self.spec.hub_id,
                                     revision=config.revision or self.spec.revision, pretrained=config.pretrained,
                                     overrides=config.overrides or {})
        if not config.pretrained:
            with torch.no_grad():
                if self.spec.randomise is not None:
                    self.spec.randomise(self.model, config.seed)
                else:
                    mean, std = self.spec.latent_scale(self.model) if self.spec.latent_scale is not None else (0.0, 1.0)
                    rerandomise_codebooks(self.model, config.seed, mean, std)
        self.model.eval()
        label = config.name + (f"@{self.n_q}q" if config.n_q else "")
        self.name = label if config.pretrained else f"{label} (random weights{', reduced' if config.overrides else ''})"

    #: load_tokenizer keeps the name set here (a random-weight model never carries the bare famous name)
    names_itself = True
    #: streaming decode is not wired for any adapter yet (long audio decodes in one pass)
    can_stream_decode = False

    @property
    def can_stream(self) -> bool:
        """Whether ``streaming()`` is available (exact streaming encode through the library's caches)."""
        return self.spec.stream_encode is not None

    # --- the Tokenizer protocol ------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate

    @property
    def channels(self) -> int:
        return self.spec.channels

    @property
    def hop_length(self) -> int:
        return self.spec.hop_length

    @property
    def causal(self) -> bool:
        return self.spec.causal

    @property
    def lookahead(self) -> int | None:
        """Declared samples of future input a frame needs; None: the whole signal (global attention)."""
        return self.spec.lookahead

    @property
    def deterministic(self) -> bool:
        return self.spec.deterministic

    @property
    def n_q(self) -> int:
        return self.config.n_q or self.spec.default_codebooks

    @property
    def weights(self) -> dict:
        """Provenance of the weights: hub id + revision (or local directory), or ``random``."""
        import importlib.metadata

        version = importlib.metadata.version(self.spec.package)
        if not self.config.pretrained:
            return {"source": "random", "seed": self.config.seed, "package": self.spec.package, "version": version}
        return {"source": self.config.weights or self.spec.hub_id, "revision": self.config.revision or self.spec.revision,
                "package": self.spec.package, "version": version}

    def streaming(self, batch_size: int = 1):
        if self.spec.stream_encode is None:
            raise StreamingError(f"{self.name}: streaming through this adapter is not wired yet; encode and decode "
                                 "offline (the bench still probes its causality and lookahead)")
        return super().streaming(batch_size)

    def _init_streaming_state(self, batch_size: int) -> dict:
        return {}

    def _encode(self, audio: torch.Tensor) -> list[Stream]:
        if self.is_streaming:
            out = self.spec.stream_encode(self.model, audio, self.n_q, self._streaming_state)
        else:
            out = self.spec.encode(self.model, audio, self.n_q)
        if isinstance(out, torch.Tensor):
            return [Stream(out.long(), self.frame_rate, (self.spec.codebook_size,) * out.shape[1], "codes")]
        return out

    def _decode(self, streams: list[Stream]) -> torch.Tensor:
        if self.is_streaming:
            raise StreamingError(f"{self.name}: decoding in streaming mode is not supported (the library's decoder "
                                 "does not carry the state of its convolutions, so chunks would not equal offline); "
                                 "encode in streaming mode, decode offline")
        values = streams[0].values if len(streams) == 1 else [s.values for s in streams]
        audio = self.spec.decode(self.model, values)
        want = round(streams[0].num_frames * self.sample_rate / streams[0].frame_rate)
        if audio.shape[-1] < want:  # some decoders (DAC) return a few samples less than T * hop
            audio = torch.nn.functional.pad(audio, (0, want - audio.shape[-1]))
        return audio[..., :want]

    def stream_spec(self) -> list[dict]:
        if self.spec.bits is not None or self.spec.continuous:  # several streams: what encode really makes
            return super().stream_spec()
        # one RVQ stream: every prefix of the codebooks decodes (a lower bitrate); the spec lists them all
        return [{"kind": "discrete", "frame_rate": self.frame_rate, "codebook_sizes": (self.spec.codebook_size,) * self.spec.max_codebooks,
                 "dim": None}]


def capture_input(module: torch.nn.Module, method: str, run: Callable[[], Any]) -> torch.Tensor:
    """The first positional argument ``module.<method>`` receives while ``run()`` runs (e.g. the
    quantiser's input, to place random codebooks where the latents lie)."""
    original, seen = getattr(module, method), []

    def spy(*args, **kwargs):
        seen.append(args[0])
        return original(*args, **kwargs)

    setattr(module, method, spy)
    try:
        run()
    finally:
        delattr(module, method)  # back to the class's method
    if not seen:
        raise AdapterError(f"{type(module).__name__}.{method} was not called")
    return seen[0]


def meta_parameters(name: str) -> int:
    """Parameters of the full-size architecture of adapter ``name``, built on the meta device
    (no memory, no weights): how tests check the size of codecs too big to build in CI."""
    spec = ADAPTERS[name]
    require(spec.package, name)
    with torch.device("meta"):
        model = spec.build(weights=spec.hub_id, revision=spec.revision, pretrained=False, overrides={})
    return sum(p.numel() for p in model.parameters())


def apply_overrides(config: Any, overrides: dict) -> Any:
    """Set ``overrides`` on a library config in place (a dict value on a sub-config recurses);
    an unknown field is a ConfigError naming it."""
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise ConfigError(f"{type(config).__name__} has no field {key!r} to override")
        current = getattr(config, key)
        if isinstance(value, dict) and not isinstance(current, dict):
            apply_overrides(current, value)
        else:
            setattr(config, key, value)
    return config


_OPTION = re.compile(r"^(?:(?P<kbps>\d+(?:\.\d+)?)kbps|(?P<q>\d+)q)$")


def parse_options(spec: AdapterSpec, option: str) -> dict:
    """``6kbps`` -> ``{"n_q": 8}`` for encodec-24k; ``4q`` -> ``{"n_q": 4}`` (the part after ``NAME@``)."""
    m = _OPTION.match(option)
    if not m:
        raise ConfigError(f"{spec.name}@{option}: the option must be a bitrate (e.g. @6kbps) or a number of "
                          f"codebooks (e.g. @4q)")
    if spec.continuous:
        raise ConfigError(f"{spec.name}@{option}: {spec.name} is a continuous latent; it has no bitrate to choose")
    if m.group("q"):
        return {"n_q": int(m.group("q"))}
    kbps = float(m.group("kbps"))
    choices = spec.codebook_choices or tuple(range(1, spec.max_codebooks + 1))
    if spec.bits is not None:  # a rate that is not linear in n_q: match it among the choices
        found = [n for n in choices if abs(spec.bits_per_second(n) / 1000 - kbps) <= 0.01 * kbps]
        if not found:
            rates = ", ".join(f"{spec.bits_per_second(n) / 1000:.3g}" for n in choices)
            raise ConfigError(f"{spec.name}@{option}: not a bitrate it has; it has {rates} kbps")
        return {"n_q": found[0]}
    n_q = kbps * 1000 / (spec.frame_rate * math.log2(spec.codebook_size))
    if abs(n_q - round(n_q)) > 1e-6:
        raise ConfigError(f"{spec.name}@{option}: {m.group('kbps')} kbps is not a whole number of codebooks "
                          f"({spec.bits_per_second(1) / 1000:g} kbps each)")
    return {"n_q": int(round(n_q))}


def register_adapter(spec: AdapterSpec) -> None:
    """Add ``spec`` to :data:`ADAPTERS` and register its name (family ``external``)."""
    ADAPTERS[spec.name] = spec

    def factory(pretrained: bool = True, n_q: int | None = None, weights: str | None = None, **kwargs) -> AdapterTokenizer:
        return AdapterTokenizer(AdapterConfig(spec.name, n_q=n_q, pretrained=pretrained, weights=weights, **kwargs))

    register_tokenizer(spec.name, factory, spec.description, family="external",
                       options=lambda option: parse_options(spec, option), takes_pretrained=True)


def adapter_status(name: str) -> str:
    """``package missing`` / ``weights cached`` / ``weights not cached`` (no import of the model library)."""
    from audiolatent.core.registry import hub_status

    spec = ADAPTERS[name]
    return hub_status(spec.package, spec.hub_id, spec.revision, spec.config_file, EXTRA)


def from_pretrained(cls, weights: str, revision: str, name: str, **kwargs) -> Any:
    """``cls.from_pretrained`` with a one-line error naming the id when the weights are not here."""
    try:
        return cls.from_pretrained(weights, revision=revision, **kwargs)
    except (OSError, ValueError) as exc:
        raise AdapterError(
            f"{name}: cannot load weights {weights!r} (revision {revision}): {' '.join(str(exc).split())[:200]}. "
            f"Download them on a machine with network (huggingface-cli download {weights}) and copy the cache, "
            f"pass a local directory, or use pretrained=False for random weights"
        ) from None
