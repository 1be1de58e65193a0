"""SEANet convolutional encoder and decoder, streaming when causal.

The architecture of SEANet (Tagliasacchi et al., 2020, "SEANet: A Multi-modal Speech
Enhancement Network") as used by SoundStream (Zeghidour et al., 2021), EnCodec (Défossez et al.,
2022) and Mimi (Défossez et al., 2024); re-implemented here.

Encoder ``[B, channels, N]`` -> ``[B, dimension, ceil(N / hop_length)]``::

    conv(k=kernel_size) channels -> n_filters
    for ratio in ratios:            EncoderBlock: residual units, then conv(k=2 * ratio, stride=ratio)
                                    doubling the channels
    [sequence model]                optional LSTM (EnCodec) or transformer at the bottleneck
    activation, conv(k=last_kernel_size) -> dimension
    [ConvDownsample1d(extra_stride)] optional learned downsampling (Mimi)

Decoder ``[B, dimension, T]`` -> ``[B, channels, T * hop_length]``, the mirror image: optional
``ConvTrUpsample1d(extra_stride)``, conv -> ``n_filters * 2 ** len(ratios)``, optional sequence
model, then ``DecoderBlock`` s (transposed conv with ``stride=ratio``, then residual units) for
``reversed(ratios)``, activation, conv -> channels, optional final activation.

``ratios`` are given in encoder order (first applied first), e.g. ``(2, 4, 5, 8)``: hop 320 —
75 Hz at 24 kHz; with ``ratios=(4, 5, 6, 8)`` and ``extra_stride=2`` it is 1920 — 12.5 Hz. The
decoder takes the same tuple and applies it in reverse. ``hop_length = prod(ratios) *
extra_stride`` samples per frame.

Residual units use dilations ``dilation_base ** j`` for ``j < n_residual_layers`` (EnCodec: 1
layer, base 2; DAC-style: 3 layers, base 3 = dilations 1, 3, 9).

Latency: ``lookahead`` follows :mod:`audiolatent.nn.latency` (encoder: input samples;
decoder: output samples) and is computed exactly from the layers; it is 0 when ``causal``.
Causal encoders stream chunks of any multiple of ``hop_length`` samples; causal decoders stream
chunks of any number of frames. Non-causal ones raise :class:`StreamingError` in ``streaming()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from audiolatent.core.cache import is_tracing
from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.core.streaming import StreamingModule
from audiolatent.nn.activations import ACTIVATION_TYPES, activate_, activate_into, get_activation
from audiolatent.nn.conv import StreamingConv1d, StreamingConvTranspose1d, is_time_major, plain_gemm_ok, to_time_major
from audiolatent.nn.latency import downsampling_lookahead, upsampling_lookahead
from audiolatent.nn.lstm import StreamingLSTM
from audiolatent.nn.resample import ConvDownsample1d, ConvTrUpsample1d
from audiolatent.nn.transformer import StreamingTransformer

__all__ = [
    "LayerOptions",
    "ResidualUnit",
    "EncoderBlock",
    "DecoderBlock",
    "SEANetEncoder",
    "SEANetDecoder",
    "SEQUENCE_MODELS",
    "build_sequence_model",
]

#: bottleneck sequence models by ``kind``; each is built as ``cls(dim, **kwargs)``
SEQUENCE_MODELS: dict[str, type[nn.Module]] = {"lstm": StreamingLSTM, "transformer": StreamingTransformer}


def build_sequence_model(dim: int, spec: Mapping[str, Any] | None) -> nn.Module | None:
    """``{"kind": "lstm", "num_layers": 2}`` -> ``StreamingLSTM(dim, num_layers=2)``; None -> None."""
    if spec is None:
        return None
    kwargs = dict(spec)
    kind = kwargs.pop("kind", None)
    if kind not in SEQUENCE_MODELS:
        raise ConfigError(f"unknown sequence model kind {kind!r}; known: {', '.join(sorted(SEQUENCE_MODELS))}")
    return SEQUENCE_MODELS[kind](dim, **kwargs)


@dataclass(frozen=True)
class LayerOptions:
    """What every conv and activation of a SEANet shares: causality, norm, padding, activation."""

    causal: bool = True
    norm: str = "weight_norm"
    pad_mode: str = "constant"
    activation: str = "elu"
    activation_kwargs: Mapping[str, Any] | None = None

    def act(self, channels: int) -> nn.Module:
        return get_activation(self.activation, channels, **dict(self.activation_kwargs or {}))

    def conv(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> StreamingConv1d:
        return StreamingConv1d(
            in_channels, out_channels, kernel_size, stride, dilation, causal=self.causal, norm=self.norm, pad_mode=self.pad_mode
        )

    def conv_transpose(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> StreamingConvTranspose1d:
        return StreamingConvTranspose1d(in_channels, out_channels, kernel_size, stride, causal=self.causal, norm=self.norm)


class ResidualUnit(StreamingModule):
    """``shortcut(x) + conv1x1(act(conv_k,dilation(act(x))))`` on ``[B, dim, T]``, same length.

    Args:
        dim: channels.
        kernel_size: kernel of the dilated conv (7 in DAC, 3 in EnCodec).
        dilation: its dilation.
        options: shared layer options.
        compress: hidden channels are ``dim // compress`` (EnCodec: 2; DAC: 1).
        true_skip: identity shortcut, else a 1x1 conv.

    Attributes: ``stride = 1``; ``lookahead`` in samples (``(kernel_size - 1) * dilation // 2``
    when non-causal, else 0).
    """

    stride = 1

    def __init__(
        self,
        dim: int,
        kernel_size: int = 7,
        dilation: int = 1,
        options: LayerOptions = LayerOptions(),
        compress: int = 2,
        true_skip: bool = True,
    ) -> None:
        super().__init__()
        hidden = max(1, dim // compress)
        self.block = nn.Sequential(
            options.act(dim),
            options.conv(dim, hidden, kernel_size, dilation=dilation),
            options.act(hidden),
            options.conv(hidden, dim, 1),
        )
        self.shortcut = nn.Identity() if true_skip else options.conv(dim, dim, 1)
        self.lookahead = max(downsampling_lookahead(self.block), downsampling_lookahead([self.shortcut]))

    def forward(self, x: torch.Tensor, spare: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, dim, T]`` -> ``[B, dim, T]``. ``spare``: at inference, a dead buffer shaped and laid
        out as ``x`` (not ``x`` itself) that the first activation may write into instead of a
        fresh one (:func:`_run_layers` hands a unit the input of the unit before)."""
        if torch.is_grad_enabled() or is_tracing():
            return self.shortcut(x) + self.block(x)
        # inference: every buffer after the first activation is this unit's own, so the second
        # activation and the residual sum are written in place
        act, conv, act_hidden, conv_out = self.block
        fits = spare is not None and spare.shape == x.shape and spare.dtype == x.dtype and spare.device == x.device \
            and all(a == b for a, b, n in zip(spare.stride(), x.stride(), x.shape) if n > 1) and _owns(spare, x)
        a = activate_into(act, x, spare) if fits else act(x)
        h = activate_(act_hidden, conv(a))
        # the first activation's buffer is dead once conv has read it: the 1x1 conv writes there
        y = a if _owns(a, x) and _pointwise_gemm(conv_out, h, a, accumulate=False) else conv_out(h)
        if isinstance(self.shortcut, nn.Identity):
            return y.add_(x)
        if _pointwise_gemm(self.shortcut, x, y, accumulate=True):
            return y
        return y.add_(self.shortcut(x))


class EncoderBlock(StreamingModule):
    """Residual units at ``in_channels``, activation, then conv(k=2*stride, stride) -> ``out_channels``.

    ``[B, in_channels, N]`` -> ``[B, out_channels, ceil(N / stride)]``. Attributes: ``stride``,
    ``lookahead`` (input samples).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        dilations: Sequence[int] = (1, 3, 9),
        residual_kernel_size: int = 7,
        options: LayerOptions = LayerOptions(),
        compress: int = 2,
        true_skip: bool = True,
    ) -> None:
        super().__init__()
        units = [ResidualUnit(in_channels, residual_kernel_size, d, options, compress, true_skip) for d in dilations]
        self.layers = nn.Sequential(*units, options.act(in_channels), options.conv(in_channels, out_channels, 2 * stride, stride))
        self.stride = stride
        self.lookahead = downsampling_lookahead(self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run_layers(self.layers, x)


class DecoderBlock(StreamingModule):
    """Activation, transposed conv(k=2*stride, stride) -> ``out_channels``, then residual units.

    ``[B, in_channels, T]`` -> ``[B, out_channels, T * stride]``. Attributes: ``stride``,
    ``lookahead`` (output samples).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        dilations: Sequence[int] = (1, 3, 9),
        residual_kernel_size: int = 7,
        options: LayerOptions = LayerOptions(),
        compress: int = 2,
        true_skip: bool = True,
    ) -> None:
        super().__init__()
        units = [ResidualUnit(out_channels, residual_kernel_size, d, options, compress, true_skip) for d in dilations]
        self.layers = nn.Sequential(options.act(in_channels), options.conv_transpose(in_channels, out_channels, 2 * stride, stride), *units)
        self.stride = stride
        self.lookahead = upsampling_lookahead(self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run_layers(self.layers, x)


class SEANetEncoder(StreamingModule):
    """Waveform ``[B, channels, N]`` -> latent ``[B, dimension, ceil(N / hop_length)]``.

    Args:
        channels: audio channels.
        dimension: latent channels D.
        n_filters: channels after the first conv; doubled by every encoder block.
        ratios: downsampling strides in the order applied; ``prod(ratios)`` samples per frame.
        n_residual_layers, dilation_base: residual units per block and their dilation base.
        kernel_size, last_kernel_size, residual_kernel_size: kernels of the first conv, the last
            conv and the residual units' dilated convs.
        activation, activation_kwargs: see :func:`audiolatent.nn.activations.get_activation`.
        causal: causal convs (streams, lookahead 0) or "same" padding (offline only).
        norm: ``"weight_norm"`` or ``"none"`` for every conv.
        pad_mode: padding of non-causal convs (``constant``, ``reflect``, ``replicate``).
        compress: residual units' hidden channels are ``channels // compress``.
        true_skip: identity shortcuts in residual units (else 1x1 convs).
        sequence_model: optional ``{"kind": "lstm" | "transformer", **kwargs}`` applied at the
            bottleneck, before the last conv (see :data:`SEQUENCE_MODELS`).
        extra_stride: stride of an extra learned :class:`ConvDownsample1d` after the last conv.

    Attributes: ``hop_length`` (= ``stride``; samples per frame), ``lookahead`` (samples),
    ``causal``.
    """

    def __init__(
        self,
        channels: int = 1,
        dimension: int = 128,
        n_filters: int = 32,
        ratios: Sequence[int] = (2, 4, 5, 8),
        n_residual_layers: int = 1,
        dilation_base: int = 2,
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 7,
        activation: str = "elu",
        activation_kwargs: Mapping[str, Any] | None = None,
        causal: bool = True,
        norm: str = "weight_norm",
        pad_mode: str = "constant",
        compress: int = 2,
        true_skip: bool = True,
        sequence_model: Mapping[str, Any] | None = None,
        extra_stride: int = 1,
    ) -> None:
        super().__init__()
        options = LayerOptions(causal, norm, pad_mode, activation, activation_kwargs)
        dilations = [dilation_base**j for j in range(n_residual_layers)]
        layers: list[nn.Module] = [options.conv(channels, n_filters, kernel_size)]
        width = n_filters
        for ratio in ratios:
            layers.append(EncoderBlock(width, 2 * width, ratio, dilations, residual_kernel_size, options, compress, true_skip))
            width *= 2
        bottleneck = build_sequence_model(width, sequence_model)
        if bottleneck is not None:
            layers.append(bottleneck)
        layers += [options.act(width), options.conv(width, dimension, last_kernel_size)]
        if extra_stride > 1:
            layers.append(ConvDownsample1d(dimension, extra_stride, causal=causal))
        self.layers = nn.Sequential(*layers)
        self.channels, self.dimension, self.causal = channels, dimension, causal
        self.hop_length = math.prod(ratios) * extra_stride
        self.stride = self.hop_length
        self.lookahead = downsampling_lookahead(self.layers)

    def n_frames(self, n_samples: int) -> int:
        """Frames for ``n_samples`` samples offline: ``ceil(n_samples / hop_length)``."""
        return -(-n_samples // self.hop_length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, channels, N]`` -> ``[B, dimension, ceil(N / hop_length)]``."""
        if self.is_streaming and x.shape[-1] % self.hop_length:
            raise StreamingError(f"SEANetEncoder: streaming chunks must be a multiple of hop_length {self.hop_length} samples, got {x.shape[-1]}")
        return _run(self.layers, x, self.is_streaming)


class SEANetDecoder(StreamingModule):
    """Latent ``[B, dimension, T]`` -> waveform ``[B, channels, T * hop_length]``.

    Takes the arguments of :class:`SEANetEncoder` (``ratios`` in encoder order, applied in
    reverse) plus ``final_activation`` (e.g. ``"tanh"``; None for none). ``extra_stride`` adds
    a channel-wise :class:`ConvTrUpsample1d` before the first conv.

    Attributes: ``hop_length`` (= ``stride``; samples per frame), ``lookahead`` (output
    samples), ``causal``.
    """

    def __init__(
        self,
        channels: int = 1,
        dimension: int = 128,
        n_filters: int = 32,
        ratios: Sequence[int] = (2, 4, 5, 8),
        n_residual_layers: int = 1,
        dilation_base: int = 2,
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 7,
        activation: str = "elu",
        activation_kwargs: Mapping[str, Any] | None = None,
        final_activation: str | None = None,
        causal: bool = True,
        norm: str = "weight_norm",
        pad_mode: str = "constant",
        compress: int = 2,
        true_skip: bool = True,
        sequence_model: Mapping[str, Any] | None = None,
        extra_stride: int = 1,
    ) -> None:
        super().__init__()
        options = LayerOptions(causal, norm, pad_mode, activation, activation_kwargs)
        dilations = [dilation_base**j for j in range(n_residual_layers)]
        width = n_filters * 2 ** len(ratios)
        layers: list[nn.Module] = []
        if extra_stride > 1:
            layers.append(ConvTrUpsample1d(dimension, extra_stride, causal=causal))
        layers.append(options.conv(dimension, width, kernel_size))
        bottleneck = build_sequence_model(width, sequence_model)
        if bottleneck is not None:
            layers.append(bottleneck)
        for ratio in reversed(tuple(ratios)):
            layers.append(DecoderBlock(width, width // 2, ratio, dilations, residual_kernel_size, options, compress, true_skip))
            width //= 2
        layers += [options.act(width), options.conv(width, channels, last_kernel_size)]
        if final_activation is not None:
            layers.append(get_activation(final_activation, channels))
        self.layers = nn.Sequential(*layers)
        self.channels, self.dimension, self.causal = channels, dimension, causal
        self.hop_length = math.prod(ratios) * extra_stride
        self.stride = self.hop_length
        self.lookahead = upsampling_lookahead(self.layers)

    def n_samples(self, n_frames: int) -> int:
        """Samples for ``n_frames`` frames: ``n_frames * hop_length``."""
        return n_frames * self.hop_length

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``z [B, dimension, T]`` -> ``[B, channels, T * hop_length]``."""
        return _run(self.layers, z, self.is_streaming)


def _run(layers: nn.Module, x: torch.Tensor, streaming: bool) -> torch.Tensor:
    """``layers(x)``; offline inference runs time-major inside and returns a contiguous tensor.

    Time-major activations (``[B, T, C]`` in memory) let oneDNN convolve without reordering
    between layers, make transposed convolutions plain matrix products
    (:meth:`StreamingConvTranspose1d._full_time_major`) and feed the LSTM without a copy. The
    values are those of the channels-first path to float rounding; training (gradients on) and
    streaming keep channels-first.
    """
    if streaming or torch.is_grad_enabled():
        return layers(x)
    return _run_layers(layers, to_time_major(x)).contiguous()


def _run_layers(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)``; at inference an activation whose input a previous layer of ``layers`` made
    (not ``x``, which belongs to the caller, nor a view of it) is applied in place, and a residual
    unit's first activation writes into a buffer that died just before it.

    Encoder and decoder blocks are walked as their layers, so a buffer that dies at the end of one
    block (the input of its strided conv) serves the first unit of the next: EnCodec-24k's encoder
    halves the time axis as it doubles the channels, and each such fresh buffer of a long signal
    costs a round of page faults (10 s: 3 of its 4 fresh 30 MB buffers go; ELU time 88 -> 35 ms).
    """
    if torch.is_grad_enabled() or is_tracing():  # a traced graph has no storages to compare
        return layers(x)
    owned, dead = False, None
    for layer in _flat_layers(layers):
        if owned and isinstance(layer, ACTIVATION_TYPES):
            x = activate_(layer, x)  # nothing allocated: a dead buffer stays on hand
            continue
        if isinstance(layer, ResidualUnit):
            spare, dead = _buffer_like(dead, x), None
            y = layer(x, spare=spare)
            del spare
            # the input of one unit is dead once it has returned: the next unit's first activation
            # writes there (units ping-pong between two buffers instead of a fresh one each)
            reusable = True
        else:
            dead = None  # released before a layer that allocates, so it never adds to the peak
            y = layer(x)
            # a streaming layer may keep a view of its input as state
            reusable = not getattr(layer, "is_streaming", False)
        dead = x if reusable and owned and _owns(y, x) else None
        owned, x = _owns(y, x), y
    return x


def _flat_layers(layers: nn.Sequential):
    """``layers`` with every encoder/decoder block (without hooks) replaced by its own layers."""
    for layer in layers:
        if isinstance(layer, (EncoderBlock, DecoderBlock)) and not (layer._forward_hooks or layer._forward_pre_hooks):
            yield from _flat_layers(layer.layers)
        else:
            yield layer


def _buffer_like(dead: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """A view of ``dead``'s storage laid out as ``like`` (shape and strides), or None where it does
    not fit: other dtype or device, a storage too small, or ``like`` not a dense layout."""
    if dead is None or dead.dtype != like.dtype or dead.device != like.device or like.numel() == 0:
        return None
    if any(s < 0 for s in like.stride()):
        return None
    extent = 1 + sum((n - 1) * s for n, s in zip(like.shape, like.stride()))
    if extent != like.numel() or dead.untyped_storage().nbytes() < extent * like.element_size():
        return None  # overlapping or gapped strides, or not enough room
    return like.new_empty(0).set_(dead.untyped_storage(), 0, like.shape, like.stride())


def _owns(y: torch.Tensor, x: torch.Tensor) -> bool:
    """Whether ``y`` lives in its own storage, not in ``x``'s (a layer's fresh output, not a view)."""
    return y.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()


def _dense_time_major(x: torch.Tensor) -> bool:
    """Time-major with each signal's ``[T, C]`` block contiguous (what ``out=`` of a GEMM needs)."""
    return is_time_major(x) and x[0].t().is_contiguous()


def _pointwise_gemm(conv: nn.Module, x: torch.Tensor, out: torch.Tensor, accumulate: bool) -> bool:
    """``out = conv(x)`` (or ``out += conv(x)``) for a 1x1 conv on time-major tensors, one GEMM
    per signal straight into ``out`` (no buffer for the conv's output); False, nothing done, when
    not applicable (not a plain 1x1 conv, gradients or autocast on, other layouts or shapes)."""
    if not (isinstance(conv, StreamingConv1d) and conv.kernel_size == 1 and conv.stride == 1 and conv.groups == 1
            and not conv.is_streaming and plain_gemm_ok(x) and is_time_major(x) and _dense_time_major(out)
            and out.shape == (x.shape[0], conv.out_channels, x.shape[-1])):
        return False
    weight, bias = conv.weight[:, :, 0].t(), conv.conv.bias  # [C_in, C_out]
    for b in range(x.shape[0]):
        rows = out[b].t()  # [T, C_out], contiguous
        if accumulate:
            rows.addmm_(x[b].t(), weight)
        elif bias is None:
            torch.mm(x[b].t(), weight, out=rows)
        else:
            torch.addmm(bias, x[b].t(), weight, out=rows)
    if accumulate and bias is not None:
        out.add_(bias[:, None])
    return True
