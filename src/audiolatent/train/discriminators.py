"""GAN discriminators for codec training, and a container that builds any subset from a config.

Every discriminator here takes audio ``[B, C, N]`` of any length ``N >= 1`` (C = ``in_channels``)
and returns ``(logits, feature_maps)``:

* ``logits``: ``list[Tensor]``, one per sub-discriminator (a period, an FFT size), each a map
  of real-vs-fake scores (``[B, 1, ...]``, shape depends on ``N``);
* ``feature_maps``: ``list[list[Tensor]]``, for each sub-discriminator the activations after
  each hidden layer, for :func:`audiolatent.train.losses.feature_matching_loss`.

Kinds, registered in :data:`DISCRIMINATORS` by name:

* ``mpd`` :class:`MultiPeriodDiscriminator` — HiFi-GAN (Kong et al. 2020, Sec. 2.2): the
  waveform folded into ``[N / p, p]`` for each period ``p``, 2-D convs along time only.
* ``msstft`` :class:`MultiScaleSTFTDiscriminator` — EnCodec (Défossez et al. 2022, Sec. 3.3):
  real and imaginary parts of complex STFTs at several FFT sizes, 2-D convs over (time, freq)
  with dilation growing along time.
* ``mbstft`` :class:`MultiBandMultiScaleSTFTDiscriminator` — DAC (Kumar et al. 2023, Sec. 3.3):
  as ``msstft`` but each STFT is split into frequency bands, each band with its own conv stack,
  the band outputs concatenated along frequency before the output conv.

All convolutions carry weight normalisation (Salimans & Kingma 2016); activations are
LeakyReLU(0.2). Channel widths are arguments so tests can use tiny ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from audiolatent.train.losses import stft

__all__ = [
    "DiscriminatorOutput", "MultiPeriodDiscriminator", "MultiScaleSTFTDiscriminator",
    "MultiBandMultiScaleSTFTDiscriminator", "Discriminators", "DISCRIMINATORS", "register_discriminator",
]

#: ``(logits, feature_maps)``: one logit map and one list of hidden activations per sub-discriminator.
DiscriminatorOutput = tuple[list[torch.Tensor], list[list[torch.Tensor]]]

#: discriminator classes by config ``kind``; fill with :func:`register_discriminator`.
DISCRIMINATORS: dict[str, type[nn.Module]] = {}

_SLOPE = 0.2


def register_discriminator(kind: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make a discriminator buildable by :class:`Discriminators` from ``{"kind": kind, ...}``."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        DISCRIMINATORS[kind] = cls
        return cls

    return add


def _conv2d(in_ch: int, out_ch: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1),
            dilation: tuple[int, int] = (1, 1)) -> nn.Module:
    """Weight-normed Conv2d, 'same' padding for odd kernels (output size = ceil(input / stride))."""
    padding = tuple((k - 1) * d // 2 for k, d in zip(kernel, dilation))
    return weight_norm(nn.Conv2d(in_ch, out_ch, kernel, stride, padding, dilation))


def _run_stack(layers: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    features = []
    for layer in layers:
        x = F.leaky_relu(layer(x), _SLOPE)
        features.append(x)
    return post(x), features


class PeriodDiscriminator(nn.Module):
    """One HiFi-GAN period sub-discriminator: ``[B, C, N]`` -> fold to ``[B, C, ceil(N / p), p]`` -> convs.

    The signal is right-padded (reflect when possible, else zeros) to a multiple of ``period``.
    Kernels are ``(kernel_size, 1)`` so samples ``p`` apart are compared, never neighbours.
    """

    def __init__(self, period: int, in_channels: int = 1, channels: Sequence[int] = (32, 128, 512, 1024, 1024),
                 kernel_size: int = 5, stride: int = 3) -> None:
        super().__init__()
        self.period = int(period)
        widths = [in_channels, *channels]
        self.layers = nn.ModuleList(
            _conv2d(widths[i], widths[i + 1], (kernel_size, 1), (stride if i < len(channels) - 1 else 1, 1))
            for i in range(len(channels))
        )
        self.post = _conv2d(widths[-1], 1, (3, 1))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        batch, channels, length = audio.shape
        pad = (-length) % self.period
        if pad:
            audio = F.pad(audio, (0, pad), mode="reflect" if pad < length else "constant")
        x = audio.reshape(batch, channels, -1, self.period)
        return _run_stack(self.layers, self.post, x)


@register_discriminator("mpd")
class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN multi-period discriminator: one :class:`PeriodDiscriminator` per period (primes avoid overlap).

    Args:
        periods: fold periods in samples (HiFi-GAN: 2, 3, 5, 7, 11).
        in_channels: audio channels C.
        channels: conv widths of each sub-discriminator (HiFi-GAN: 32, 128, 512, 1024, 1024).
        kernel_size, stride: along folded time.
    """

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), in_channels: int = 1,
                 channels: Sequence[int] = (32, 128, 512, 1024, 1024), kernel_size: int = 5, stride: int = 3) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(p, in_channels, channels, kernel_size, stride) for p in periods
        )

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        outputs = [d(audio) for d in self.discriminators]
        return [o[0] for o in outputs], [o[1] for o in outputs]


def _complex_to_channels(spec: torch.Tensor, batch: int) -> torch.Tensor:
    """``[B * C, F, T]`` complex -> ``[B, 2 * C, T, F]`` real (real parts of every channel, then imaginary)."""
    spec = spec.reshape(batch, -1, *spec.shape[-2:]).transpose(-1, -2)
    return torch.cat([spec.real, spec.imag], dim=1)


class STFTDiscriminator(nn.Module):
    """One EnCodec STFT sub-discriminator at one FFT size.

    ``[B, C, N]`` -> complex STFT (Hann, ``hop = n_fft // 4``) -> ``[B, 2C, T, n_fft // 2 + 1]``
    -> Conv2d (3, 9) -> ``len(dilations)`` Conv2d (3, 9) with time dilation ``d`` and
    frequency stride 2 -> Conv2d (3, 3) -> output Conv2d (3, 3) to one channel. Widths double
    per strided layer from ``channels`` up to ``max_channels``.
    """

    def __init__(self, n_fft: int, in_channels: int = 1, channels: int = 32, max_channels: int = 1024,
                 dilations: Sequence[int] = (1, 2, 4), hop_length: int | None = None) -> None:
        super().__init__()
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length or n_fft // 4)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        widths = [channels] + [min(channels * 2 ** (i + 1), max_channels) for i in range(len(dilations))]
        layers = [_conv2d(2 * in_channels, widths[0], (3, 9))]
        layers += [
            _conv2d(widths[i], widths[i + 1], (3, 9), stride=(1, 2), dilation=(d, 1)) for i, d in enumerate(dilations)
        ]
        layers.append(_conv2d(widths[-1], widths[-1], (3, 3)))
        self.layers = nn.ModuleList(layers)
        self.post = _conv2d(widths[-1], 1, (3, 3))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = _complex_to_channels(stft(audio, self.n_fft, self.hop_length, self.window), audio.shape[0])
        return _run_stack(self.layers, self.post, x)


@register_discriminator("msstft")
class MultiScaleSTFTDiscriminator(nn.Module):
    """EnCodec multi-scale STFT discriminator: one :class:`STFTDiscriminator` per FFT size.

    Args:
        n_ffts: FFT sizes = window lengths in samples (EnCodec: 2048, 1024, 512, 256, 128).
        in_channels: audio channels C.
        channels, max_channels: first and largest conv widths (EnCodec: 32, 1024).
        dilations: time dilations of the strided layers (EnCodec: 1, 2, 4).
    """

    def __init__(self, n_ffts: Sequence[int] = (2048, 1024, 512, 256, 128), in_channels: int = 1,
                 channels: int = 32, max_channels: int = 1024, dilations: Sequence[int] = (1, 2, 4)) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            STFTDiscriminator(n, in_channels, channels, max_channels, dilations) for n in n_ffts
        )

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        outputs = [d(audio) for d in self.discriminators]
        return [o[0] for o in outputs], [o[1] for o in outputs]


class BandedSTFTDiscriminator(nn.Module):
    """One DAC sub-discriminator: an STFT split into frequency bands, each with its own conv stack.

    ``[B, C, N]`` -> complex STFT (Hann, ``hop = n_fft // 4``) -> ``[B, 2C, T, F]`` -> for each
    band ``(lo, hi)`` (fractions of ``F = n_fft // 2 + 1`` bins) the bins ``[lo F, hi F)`` go
    through Conv2d (3, 9) and ``n_strided`` Conv2d (3, 9) with frequency stride 2 and a final
    Conv2d (3, 3), all ``channels`` wide; layer ``l``'s features of all bands are concatenated
    along frequency (one feature map per layer), then an output Conv2d (3, 3) gives the logits.
    """

    def __init__(self, n_fft: int, in_channels: int = 1, channels: int = 32,
                 bands: Sequence[Sequence[float]] = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)),
                 n_strided: int = 3, hop_length: int | None = None) -> None:
        super().__init__()
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length or n_fft // 4)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        n_bins = self.n_fft // 2 + 1
        self.band_bins = [(int(lo * n_bins), int(hi * n_bins)) for lo, hi in bands]
        if any(hi <= lo for lo, hi in self.band_bins):
            raise ValueError(f"n_fft={n_fft} gives an empty band among {self.band_bins}; use larger n_fft or wider bands")

        def stack() -> nn.ModuleList:
            layers = [_conv2d(2 * in_channels, channels, (3, 9))]
            layers += [_conv2d(channels, channels, (3, 9), stride=(1, 2)) for _ in range(n_strided)]
            layers.append(_conv2d(channels, channels, (3, 3)))
            return nn.ModuleList(layers)

        self.band_stacks = nn.ModuleList(stack() for _ in self.band_bins)
        self.post = _conv2d(channels, 1, (3, 3))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = _complex_to_channels(stft(audio, self.n_fft, self.hop_length, self.window), audio.shape[0])
        per_band = []
        for (lo, hi), layers in zip(self.band_bins, self.band_stacks):
            h = x[..., lo:hi]
            band_features = []
            for layer in layers:
                h = F.leaky_relu(layer(h), _SLOPE)
                band_features.append(h)
            per_band.append(band_features)
        features = [torch.cat(layer_outputs, dim=-1) for layer_outputs in zip(*per_band)]
        return self.post(features[-1]), features


@register_discriminator("mbstft")
class MultiBandMultiScaleSTFTDiscriminator(nn.Module):
    """DAC multi-band multi-scale STFT discriminator: one :class:`BandedSTFTDiscriminator` per FFT size.

    Args:
        n_ffts: FFT sizes = window lengths in samples (DAC: 2048, 1024, 512).
        in_channels: audio channels C.
        channels: conv width of every band stack (DAC: 32).
        bands: frequency bands as fractions of the bins (DAC's five bands by default).
        n_strided: frequency-strided convs per band stack (DAC: 3).
    """

    def __init__(self, n_ffts: Sequence[int] = (2048, 1024, 512), in_channels: int = 1, channels: int = 32,
                 bands: Sequence[Sequence[float]] = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)),
                 n_strided: int = 3) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            BandedSTFTDiscriminator(n, in_channels, channels, bands, n_strided) for n in n_ffts
        )

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        outputs = [d(audio) for d in self.discriminators]
        return [o[0] for o in outputs], [o[1] for o in outputs]


class Discriminators(nn.Module):
    """Several discriminators as one: their sub-discriminator outputs concatenated in config order.

    ``configs`` is a list of dicts, each ``{"kind": <key of DISCRIMINATORS>, **constructor
    arguments}``, e.g. ``[{"kind": "mpd", "periods": [2, 3, 5, 7, 11]}, {"kind": "mbstft",
    "n_ffts": [2048, 1024, 512]}]``; any subset, any order, a kind may repeat.

    Example::

        discs = Discriminators([{"kind": "mpd", "channels": [4, 8]}, {"kind": "msstft", "channels": 4}])
        logits, fmaps = discs(audio)  # audio [B, 1, N]; len(logits) == len(fmaps) == 5 + 5
    """

    def __init__(self, configs: Sequence[Mapping[str, Any]]) -> None:
        super().__init__()
        if not configs:
            raise ValueError("Discriminators needs at least one config")
        members = []
        for config in configs:
            options = dict(config)
            kind = options.pop("kind", None)
            if kind not in DISCRIMINATORS:
                raise ValueError(f"unknown discriminator kind {kind!r}; known: {sorted(DISCRIMINATORS)}")
            members.append(DISCRIMINATORS[kind](**options))
        self.members = nn.ModuleList(members)

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        """``[B, C, N]`` audio -> ``(logits, feature_maps)`` of every sub-discriminator of every member."""
        if audio.dim() != 3:
            raise ValueError(f"audio must be [B, C, N], got shape {tuple(audio.shape)}")
        logits: list[torch.Tensor] = []
        feature_maps: list[list[torch.Tensor]] = []
        for member in self.members:
            member_logits, member_features = member(audio)
            logits.extend(member_logits)
            feature_maps.extend(member_features)
        return logits, feature_maps
