"""1-D convolutions that stream: causal ones exactly (with state), non-causal ones offline only.

The padding scheme is the one of EnCodec (Défossez et al., 2022, "High Fidelity Neural Audio
Compression") and Mimi (Défossez et al., 2024, "Moshi"), re-implemented here.

Framing rule (:class:`StreamingConv1d`)
---------------------------------------
Let ``k_eff = (kernel_size - 1) * dilation + 1`` and ``padding_total = k_eff - stride`` (we
require ``k_eff >= stride``). On ``N`` input samples the convolution returns

    ``n_frames(N) = ceil(N / stride)`` frames,

and output frame ``j`` covers the input "hop window" ``[j * stride, (j + 1) * stride)``:

* **causal**: the input is left-padded with ``padding_total`` zeros, so frame ``j`` reads samples
  ``[(j + 1) * stride - k_eff, (j + 1) * stride)`` — nothing after the end of its hop window.
  Lookahead 0.
* **non-causal** ("same" padding): ``padding_right = padding_total // 2`` and
  ``padding_left = padding_total - padding_right``; frame ``j`` reads up to sample
  ``(j + 1) * stride - 1 + padding_right``. Lookahead ``padding_right`` input samples.

In both cases the input is also right-padded with ``(-N) % stride`` zeros, so a final partial hop
window still gives a frame (offline only: streaming chunks must be whole hop windows).

In streaming mode (causal only) the state is the last ``padding_total`` input samples; a chunk
of ``n`` samples (``n`` a multiple of ``stride``) returns exactly ``n / stride`` frames, and the
concatenated outputs equal the offline output.

Transposed convolution (:class:`StreamingConvTranspose1d`)
----------------------------------------------------------
``T`` input frames give ``T * stride`` output samples: the full transposed convolution has
``(T - 1) * stride + k_eff`` samples, and ``padding_total = k_eff - stride`` of them are trimmed —
all on the right when causal (output sample ``n`` depends only on frames ``<= n // stride``),
``padding_total // 2`` on the right and the rest on the left otherwise. Streaming (causal only)
carries the overlap-add tail of ``padding_total`` samples (without bias) to the next call.

Inference
---------
A weight-normed convolution recomputes ``g * v / ||v||`` on every call. At inference (eval mode,
gradients disabled) both classes fold it once and reuse the folded weight while ``g`` and ``v``
are unchanged (:class:`~audiolatent.core.cache.TableCache`: an optimiser step, ``load_state_dict``
or ``train()`` makes the next call recompute), so outputs are those of the parametrised module and
training still sees the parametrisation. A streaming call of a few frames (a 20 ms chunk is one
frame of most codecs) skips the generic convolution kernel, whose fixed cost dominates at that
size: one output frame of a dense convolution is a matrix-vector product on its receptive field
(:func:`~audiolatent.nn.matvec.linear_rows`, which runs int8-exported weights as shipped), a
depthwise convolution a multiply-and-sum over its taps (equal to the kernel to float rounding).

Lookahead units: :attr:`StreamingConv1d.lookahead` counts *input* samples (the module
downsamples or keeps the rate); :attr:`StreamingConvTranspose1d.lookahead` counts *output*
samples (it upsamples). See :mod:`audiolatent.nn.latency` for the precise definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from audiolatent.core.cache import TableCache
from audiolatent.core.errors import StreamingError
from audiolatent.core.streaming import StreamingModule
from audiolatent.nn import winograd
from audiolatent.nn.matvec import linear_rows

__all__ = ["NORMS", "StreamingConv1d", "StreamingConvTranspose1d", "is_time_major", "pad1d", "plain_gemm_ok", "remove_weight_norm", "to_time_major"]

#: weight normalisations by name: ``weight_norm`` is Salimans & Kingma (2016), as in EnCodec/DAC
NORMS: dict[str, Callable[[nn.Module], nn.Module]] = {
    "none": lambda module: module,
    "weight_norm": weight_norm,
}

PAD_MODES = ("constant", "reflect", "replicate")
#: streaming calls of at most this many output frames use the small-chunk paths (module docstring)
SMALL_CHUNK_FRAMES = 8


def _apply_norm(module: nn.Module, norm: str) -> nn.Module:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; known: {sorted(NORMS)}")
    return NORMS[norm](module)


def pad1d(x: torch.Tensor, left: int, right: int, mode: str = "constant") -> torch.Tensor:
    """Pad the last axis of ``x [B, C, T]``; ``reflect`` also works when ``T <= max(left, right)``.

    Reflection needs more samples than the padding, so short inputs are first zero-extended on
    the right (and that extension is removed again), as EnCodec does.
    """
    if mode != "reflect":
        return F.pad(x, (left, right), mode=mode) if mode != "constant" else F.pad(x, (left, right))
    length = x.shape[-1]
    extension = max(0, max(left, right) - length + 1)
    if extension:
        x = F.pad(x, (0, extension))
    padded = F.pad(x, (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - extension]


def is_time_major(x: torch.Tensor) -> bool:
    """Whether ``x [B, C, T]`` is stored time-major (``[B, T, C]`` in memory, stride 1 along C)."""
    return x.dim() == 3 and x.shape[-1] > 1 and x.stride(1) == 1 and x.stride(2) == x.shape[1]


def plain_gemm_ok(x: torch.Tensor) -> bool:
    """Whether hand-written GEMMs (``out=``, in place) may replace a layer on ``x``: gradients off
    and no autocast (whose casts those calls would bypass)."""
    return not torch.is_grad_enabled() and not torch.is_autocast_enabled(x.device.type)


def to_time_major(x: torch.Tensor) -> torch.Tensor:
    """``x [B, C, T]`` stored time-major (a copy unless it already is): same values, same shape."""
    if is_time_major(x) or x.shape[-1] <= 1:
        return x
    out = x.new_empty(x.shape[0], x.shape[2], x.shape[1]).transpose(1, 2)
    return out.copy_(x)


def remove_weight_norm(module: nn.Module) -> nn.Module:
    """Fold every weight parametrisation (weight norm) below ``module`` into a plain weight, in place.

    For inference: a weight-normed conv recomputes its weight on every call, which dominates the
    cost of small streaming chunks. The outputs do not change; training afterwards would train
    the plain weights. Returns ``module``.
    """
    for m in list(module.modules()):
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return module


def relayout_for_time_major(module: nn.Module, min_bytes: int | None = None) -> nn.Module:
    """Store every large plain conv weight below ``module`` the way offline time-major inference reads it.

    For inference, after weight norm is folded (:func:`remove_weight_norm`). A weight of more than
    ``min_bytes`` (default :data:`MEMO_MAX_BYTES`) is too large to keep a second, reordered copy of, so
    the time-major paths used to reorder it on every call: the channels-last copy of a
    :class:`StreamingConv1d` weight, the phase matrices of a :class:`StreamingConvTranspose1d`
    (DAC-16k decode: 0.2 GB of fresh pages per call, about a tenth of its time). Here such a weight
    ``[A, B, K]`` is re-stored, in place and with the same values, with ``B`` innermost (``[A, K, B]``
    in memory): then both are views of it. The one-frame streaming step reads it in that order
    too; other paths copy it as they need. Returns ``module``.
    """
    limit = MEMO_MAX_BYTES if min_bytes is None else min_bytes
    for m in module.modules():
        if isinstance(m, (StreamingConv1d, StreamingConvTranspose1d)) and m.groups == 1:
            conv = m.conv if isinstance(m, StreamingConv1d) else m.convtr
            if parametrize.is_parametrized(conv, "weight"):
                continue
            weight = conv.weight
            if weight.numel() * weight.element_size() > limit and weight.stride(1) != 1:
                with torch.no_grad():
                    weight.data = weight.detach().transpose(1, 2).contiguous().transpose(1, 2)
                m._weights.clear()
    return module


def use_winograd(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Let every stride-1 :class:`StreamingConv1d` below ``module`` whose kernel has a Winograd tiling
    (:mod:`audiolatent.nn.winograd`) run it in offline time-major inference, or stop them.

    For inference: where :func:`~audiolatent.nn.winograd.worthwhile` holds, F(6, 7) / F(6, 3) replace
    oneDNN's direct convolution (1.4-3x faster on DAC-shaped layers), at float32 errors of about
    3e-5 of a layer's largest output instead of 1e-6; the transformed weights (``n / r`` times each
    weight that runs it) are memoised for short signals only (:meth:`StreamingConv1d._winograd_weight`). Training, streaming, autocast and short signals
    through wide layers keep the direct convolution. Returns ``module``.
    """
    for m in module.modules():
        if isinstance(m, StreamingConv1d):
            m.winograd = bool(enabled) and m.stride == 1 and m.groups == 1 and m.kernel_size in winograd.TILE
            if not m.winograd:
                m._weights.pop("winograd")
    return module


def _param_like(module: nn.Module) -> torch.Tensor:
    return next(module.parameters())


def _inference_weight(owner: nn.Module, conv: nn.Module, cache: TableCache) -> torch.Tensor:
    """``conv.weight``; a weight-norm parametrisation is folded once and cached at inference."""
    if "parametrizations" not in conv._modules or not parametrize.is_parametrized(conv, "weight"):
        return conv.weight
    return cache.get(owner, "weight", list(conv.parametrizations.weight.parameters()), lambda: conv.weight)


#: a strided convolution runs as block GEMMs (``StreamingConv1d._block_gemm``) from this row depth
#: (``stride * C_in``) on: measured against oneDNN here, 512 x 8 = 4096: 4.5x faster, 256 x 8: 1.2x,
#: 256 x 5: 1.1x, 128 x 4: 0.6x
BLOCK_GEMM_MIN_DEPTH = 1024

#: a Winograd weight is transformed per call, not memoised, from this many frames per kernel tap
#: on (the transform then costs at most 6 / 300 = 2 % of the convolution)
WINOGRAD_MEMO_MAX_FRAMES = 300

#: derived weights of at most this many bytes are memoised at inference; larger ones are rebuilt
#: per call, so that a model's resident memory is not doubled (their copy costs a few percent of
#: the convolution they feed)
MEMO_MAX_BYTES = 8 << 20


def _memo_if_small(owner: nn.Module, name: str, conv: nn.Module, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    weight = _inference_weight(owner, conv, owner._weights)
    if weight.numel() * weight.element_size() > MEMO_MAX_BYTES:
        return compute()
    return owner._weights.get(owner, name, list(conv.parameters()), compute)


@dataclass
class _ConvState:
    previous: torch.Tensor  # [B, C_in, padding_total]: the last input samples seen


class StreamingConv1d(StreamingModule):
    """Conv1d on ``[B, C_in, N]`` -> ``[B, C_out, ceil(N / stride)]`` with the padding rule above.

    Args:
        in_channels, out_channels, kernel_size, stride, dilation, groups, bias: as ``nn.Conv1d``.
        causal: left padding only (streams exactly) or symmetric "same" padding (offline only;
            ``streaming()`` raises :class:`StreamingError`).
        norm: ``"none"`` or ``"weight_norm"`` (see :data:`NORMS`).
        pad_mode: padding of non-causal convolutions (``constant`` = zeros, ``reflect``,
            ``replicate``). Causal convolutions always pad with zeros, because the streaming state
            starts at zero.

    Attributes:
        stride: input samples per output frame.
        lookahead: input samples after the end of a frame's hop window that the frame reads
            (0 when causal).
        padding_total, padding_left, padding_right: in input samples.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        causal: bool = True,
        norm: str = "none",
        pad_mode: str = "constant",
    ) -> None:
        super().__init__()
        effective = (kernel_size - 1) * dilation + 1
        if stride < 1 or effective < stride:
            raise ValueError(
                f"effective kernel size {effective} (kernel {kernel_size}, dilation {dilation}) must be >= stride {stride} >= 1"
            )
        if pad_mode not in PAD_MODES:
            raise ValueError(f"unknown pad_mode {pad_mode!r}; known: {PAD_MODES}")
        if causal and pad_mode != "constant":
            raise ValueError("causal convolutions pad with zeros (pad_mode='constant'): the streaming state starts at zero")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.causal, self.pad_mode = causal, pad_mode
        self.effective_kernel_size = effective
        self.padding_total = effective - stride
        self.padding_right = 0 if causal else self.padding_total // 2
        self.padding_left = self.padding_total - self.padding_right
        self.lookahead = self.padding_right
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation, groups=groups, bias=bias)
        self.conv = _apply_norm(conv, norm)
        self.groups = groups
        self.depthwise = groups == in_channels == out_channels
        self._weights = TableCache()
        #: offline time-major inference may run Winograd's algorithm (see :func:`use_winograd`)
        self.winograd = False

    def n_frames(self, n_samples: int) -> int:
        """Output frames for ``n_samples`` input samples offline: ``ceil(n_samples / stride)``."""
        return -(-n_samples // self.stride)

    def _init_streaming_state(self, batch_size: int) -> _ConvState:
        if not self.causal:
            raise StreamingError(
                f"{type(self).__name__} is non-causal (lookahead {self.lookahead} samples) and cannot stream exactly; "
                "build it with causal=True to stream"
            )
        p = _param_like(self)
        return _ConvState(torch.zeros(batch_size, self.in_channels, self.padding_total, device=p.device, dtype=p.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, C_in, N]`` -> ``[B, C_out, ceil(N / stride)]`` (streaming: ``N / stride``)."""
        if self.is_streaming:
            return self._forward_streaming(x)
        n_samples = x.shape[-1]
        extra = (-n_samples) % self.stride
        if self._block_gemm_applies(x):
            return self._block_gemm(x)
        if self.pad_mode != "constant" or self.padding_left < self.padding_right + extra:
            padded = pad1d(x, self.padding_left, self.padding_right + extra, self.pad_mode)
            y = F.conv1d(padded, self.weight, self.conv.bias, self.stride, 0, self.dilation, self.groups)
        else:
            # Zero padding inside the kernel instead of a padded copy of the input: the kernel pads
            # padding_left on both sides, and the frames its surplus right padding adds are cut.
            # A time-major input (see is_time_major) stays time-major, which oneDNN runs without
            # reordering activations between layers.
            if self.winograd and self._winograd_applies(x):
                return winograd.conv1d_time_major(x, self._winograd_weight(x.shape[-1]), self.conv.bias, self.kernel_size,
                                                  self.padding_left, self.dilation)
            weight = self._weight_2d_time_major() if is_time_major(x) else self.weight.unsqueeze(2)
            y = F.conv2d(x.unsqueeze(2), weight, self.conv.bias, (1, self.stride), (0, self.padding_left),
                         (1, self.dilation), self.groups).squeeze(2)
            y = y[..., : self.n_frames(n_samples)]
        if is_time_major(x) and not is_time_major(y):  # one input channel leaves the layout ambiguous
            y = to_time_major(y)
        return y

    @property
    def weight(self) -> torch.Tensor:
        """``[C_out, C_in / groups, kernel_size]``: the effective weight (weight norm applied)."""
        return _inference_weight(self, self.conv, self._weights)

    def _block_gemm_applies(self, x: torch.Tensor) -> bool:
        return (self.stride > 1 and self.kernel_size % self.stride == 0 and self.dilation == 1 and self.groups == 1
                and self.pad_mode == "constant" and self.stride * self.in_channels >= BLOCK_GEMM_MIN_DEPTH
                and is_time_major(x) and plain_gemm_ok(x) and x.shape[-1] > 0)

    def _block_gemm(self, x: torch.Tensor) -> torch.Tensor:
        """A strided convolution whose kernel is ``q`` whole strides, time-major, as ``q`` GEMMs.

        Time-major, ``stride`` consecutive input frames are one row of ``stride * C_in`` values, so
        tap block ``j`` of every output frame is a plain matrix of rows (shifted by ``j`` rows): the
        convolution is ``sum_j X_j W_j^T`` with ``W_j`` a view of the weight stored ``[C_out, K, C_in]``
        (:func:`relayout_for_time_major`). oneDNN's direct kernel is slow on the deep, short
        layers where this applies (DAC-16k's last downsampling, 4096-deep rows: 23 ms against 5).
        Zeros outside the signal, as the other paths.
        """
        batch, c_in, length = x.shape
        s, q = self.stride, self.kernel_size // self.stride
        frames = self.n_frames(length)
        weight = self.weight
        if weight.stride(1) != 1:  # [C_out, C_in, K] as built: the [C_out, K, C_in] copy
            weight = _memo_if_small(self, "taps_last", self.conv, lambda: self.weight.transpose(1, 2).contiguous().transpose(1, 2))
        rows = weight.transpose(1, 2).reshape(self.out_channels, -1)  # [C_out, K * C_in], a view
        padded = x.new_zeros(batch, (frames + q - 1) * s * c_in)
        padded.view(batch, -1, c_in)[:, self.padding_left : self.padding_left + length] = x.transpose(1, 2)
        out = x.new_empty(batch, frames, self.out_channels)
        depth = s * c_in
        for b in range(batch):
            for j in range(q):
                block = padded[b, j * depth : (j + frames) * depth].view(frames, depth)
                taps = rows[:, j * depth : (j + 1) * depth].t()
                if j == 0:
                    torch.mm(block, taps, out=out[b])
                else:
                    out[b].addmm_(block, taps)
        if self.conv.bias is not None:
            out += self.conv.bias
        return out.transpose(1, 2)

    def _winograd_applies(self, x: torch.Tensor) -> bool:
        return (self.stride == 1 and self.groups == 1 and x.dtype == torch.float32 and is_time_major(x)
                and plain_gemm_ok(x) and winograd.worthwhile(self.kernel_size, self.in_channels, self.out_channels, x.shape[-1]))

    def _winograd_weight(self, length: int) -> torch.Tensor:
        """The weight transformed for F(m, kernel_size), ``[n, C_in, C_out]``, for a signal of
        ``length`` frames: memoised (computed in float64) up to twice :data:`MEMO_MAX_BYTES` and
        only for short signals. Transforming costs ``kernel_size * m / length`` of the convolution
        it feeds (one GEMM), so from :data:`WINOGRAD_MEMO_MAX_FRAMES` frames on it is transformed
        per call rather than kept (DAC-16k decode kept 20 MiB of them; per call they cost at most
        ``kernel_size * m / length`` = 2 % of the convolution)."""
        weight = self.weight
        n = winograd.TILE[self.kernel_size] + self.kernel_size - 1
        if (weight.numel() * weight.element_size() * n // self.kernel_size > 2 * MEMO_MAX_BYTES
                or length >= WINOGRAD_MEMO_MAX_FRAMES * self.kernel_size):
            return winograd.transform_weight(weight, exact=False)
        return self._weights.get(self, "winograd", list(self.conv.parameters()), lambda: winograd.transform_weight(weight))

    def _weight_2d_time_major(self) -> torch.Tensor:
        """The weight as ``[C_out, C_in / groups, 1, K]`` channels-last, memoised at inference.

        oneDNN convolves a channels-last input with a channels-last weight; converting a small
        weight on every call would cost more than the convolution it feeds (see
        :func:`_memo_if_small` for large ones).
        """
        compute = lambda: self.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # noqa: E731
        return _memo_if_small(self, "weight_2d", self.conv, compute)

    def _forward_streaming(self, x: torch.Tensor) -> torch.Tensor:
        self._check_streaming_batch(x)
        length = x.shape[-1]
        if length % self.stride:
            raise StreamingError(f"{type(self).__name__}: streaming chunks must be a multiple of the stride {self.stride}, got {length}")
        if length == 0:
            return x.new_zeros(x.shape[0], self.out_channels, 0)
        state: _ConvState = self._streaming_state
        if self.padding_total:
            x = torch.cat([state.previous, x], dim=-1)
            state.previous = x[..., x.shape[-1] - self.padding_total :]
        frames = length // self.stride
        if frames == 1 and self.groups == 1:
            return self._one_frame(x)
        if frames == 1 and self.depthwise and self.dilation == 1:  # x is exactly one receptive field
            y = (x * self.weight[:, 0]).sum(-1)  # [B, C, K] * [C, K] summed over the taps: [B, C]
            return (y if self.conv.bias is None else y + self.conv.bias).unsqueeze(-1)
        if frames <= SMALL_CHUNK_FRAMES and self.depthwise:
            return self._depthwise_taps(x)
        return F.conv1d(x, self.weight, self.conv.bias, self.stride, 0, self.dilation, self.groups)

    def _one_frame(self, x: torch.Tensor) -> torch.Tensor:
        """The single output frame of ``x [B, C_in, k_eff]`` as a matrix-vector product."""
        taps = x[..., :: self.dilation] if self.dilation > 1 else x  # [B, C_in, kernel_size]
        weight = self.weight
        if weight.stride(1) == 1 and weight.shape[1] > 1:  # stored [C_out, K, C_in] (relayout_for_time_major)
            taps, weight = taps.transpose(1, 2), weight.transpose(1, 2)
        flat_weight = weight.reshape(self.out_channels, -1)
        y = linear_rows(taps.reshape(x.shape[0], -1), flat_weight, self.conv.bias, self._weights, self, "rows",
                        tuple(self.conv.parameters()))
        return y.unsqueeze(-1)

    def _depthwise_taps(self, x: torch.Tensor) -> torch.Tensor:
        """Depthwise convolution of ``x [B, C, (T - 1) * stride + k_eff]`` as a sum over its taps."""
        windows = x.unfold(-1, self.effective_kernel_size, self.stride)  # [B, C, T, k_eff]
        if self.dilation > 1:
            windows = windows[..., :: self.dilation]
        y = (windows * self.weight).sum(-1)  # weight [C, 1, K] broadcasts over the frames
        bias = self.conv.bias
        return y if bias is None else y + bias[:, None]


@dataclass
class _ConvTransposeState:
    tail: torch.Tensor  # [B, C_out, padding_total]: overlap-add contributions to the next samples, no bias


class StreamingConvTranspose1d(StreamingModule):
    """ConvTranspose1d on ``[B, C_in, T]`` frames -> ``[B, C_out, T * stride]`` samples.

    Args:
        in_channels, out_channels, kernel_size, stride, dilation, groups, bias: as
            ``nn.ConvTranspose1d`` (``(kernel_size - 1) * dilation + 1 >= stride``).
        causal: trim the overlap on the right (streams exactly: output sample ``n`` depends on
            frames ``<= n // stride`` only) or symmetrically (offline only).
        norm: ``"none"`` or ``"weight_norm"``.

    Attributes:
        stride: output samples per input frame.
        lookahead: output samples *before* the start of a frame's window ``[j * stride,
            (j + 1) * stride)`` that depend on frame ``j`` (= ``trim_left``; 0 when causal).
        padding_total, trim_left, trim_right: in output samples.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        causal: bool = True,
        norm: str = "none",
    ) -> None:
        super().__init__()
        effective = (kernel_size - 1) * dilation + 1
        if stride < 1 or effective < stride:
            raise ValueError(
                f"effective kernel size {effective} (kernel {kernel_size}, dilation {dilation}) must be >= stride {stride} >= 1"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.causal = causal
        self.effective_kernel_size = effective
        self.padding_total = effective - stride
        self.trim_right = self.padding_total if causal else self.padding_total // 2
        self.trim_left = self.padding_total - self.trim_right
        self.lookahead = self.trim_left
        convtr = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride, dilation=dilation, groups=groups, bias=bias)
        self.convtr = _apply_norm(convtr, norm)
        self.groups = groups
        self._weights = TableCache()
        # taps per stride when the kernel is a whole number of strides: the time-major GEMM path
        self._phases = effective // stride if dilation == 1 and groups == 1 and effective % stride == 0 else None

    @property
    def weight(self) -> torch.Tensor:
        """``[C_in, C_out / groups, kernel_size]``: the effective weight (weight norm applied)."""
        return _inference_weight(self, self.convtr, self._weights)

    def _full(self, x: torch.Tensor) -> torch.Tensor:
        """The untrimmed transposed convolution ``[B, C_out, (T - 1) * stride + k_eff]``."""
        if self._phases is not None and plain_gemm_ok(x) and self.weight.stride(1) == 1 and self.out_channels > 1:
            # stored for the phase GEMMs (relayout_for_time_major): conv_transpose1d would copy it
            return self._full_time_major(x).contiguous()
        return F.conv_transpose1d(x, self.weight, self.convtr.bias, self.stride, 0, 0, self.groups, self.dilation)

    def n_samples(self, n_frames: int) -> int:
        """Output samples for ``n_frames`` input frames: ``n_frames * stride``."""
        return n_frames * self.stride

    def _init_streaming_state(self, batch_size: int) -> _ConvTransposeState:
        if not self.causal:
            raise StreamingError(
                f"{type(self).__name__} is non-causal (lookahead {self.lookahead} output samples) and cannot stream "
                "exactly; build it with causal=True to stream"
            )
        p = _param_like(self)
        tail = torch.zeros(batch_size, self.out_channels, self.padding_total, device=p.device, dtype=p.dtype)
        return _ConvTransposeState(tail)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, C_in, T]`` -> ``[B, C_out, T * stride]``."""
        if x.shape[-1] == 0:
            self._check_streaming_batch(x)
            return x.new_zeros(x.shape[0], self.out_channels, 0)
        if self.is_streaming:
            return self._forward_streaming(x)
        gemm = self._phases is not None and is_time_major(x) and plain_gemm_ok(x)
        y = self._full_time_major(x) if gemm else self._full(x)
        return y[..., self.trim_left : y.shape[-1] - self.trim_right]

    def _phase_weights(self) -> torch.Tensor:
        """``[m, C_in, stride * C_out]``: tap ``p * stride + r`` of output channel ``o`` at column ``r * C_out + o``."""
        weight = self.weight  # [C_in, C_out, m * stride]
        c_in, c_out = weight.shape[:2]
        return weight.view(c_in, c_out, self._phases, self.stride).permute(2, 0, 3, 1).reshape(self._phases, c_in, -1)

    def _full_time_major(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`_full` of a time-major ``x``, time-major, as ``m = k_eff / stride`` matrix products.

        Input frame ``t`` adds ``x[t] @ W_p`` to the ``stride`` output samples of block ``t + p``
        (``W_p``: taps ``[p * stride, (p + 1) * stride)``), so the output, stored ``[blocks,
        stride * C_out]``, is ``m`` shifted GEMMs with no im2col/col2im buffer.
        """
        phases = _memo_if_small(self, "phases", self.convtr, self._phase_weights)
        batch, _, frames = x.shape
        bias = self.convtr.bias
        row_bias = bias.repeat(self.stride) if bias is not None else x.new_zeros(phases.shape[-1])
        out = x.new_empty(batch, frames + self._phases - 1, phases.shape[-1])
        for b in range(batch):
            rows, block = x[b].t(), out[b]  # [T, C_in] and [T + m - 1, stride * C_out]
            torch.addmm(row_bias, rows, phases[0], out=block[:frames])
            block[frames:] = row_bias
            for p in range(1, self._phases):
                block[p : p + frames].addmm_(rows, phases[p])
        return out.view(batch, -1, self.out_channels).transpose(1, 2)

    def _forward_streaming(self, x: torch.Tensor) -> torch.Tensor:
        self._check_streaming_batch(x)
        state: _ConvTransposeState = self._streaming_state
        y = self._full(x)  # [B, C_out, T * stride + padding_total]
        n_out = x.shape[-1] * self.stride
        if not self.padding_total:
            return y
        y[..., : self.padding_total] += state.tail
        tail = y[..., n_out:]
        bias = self.convtr.bias
        # the bias was added to every sample of the full output; the tail gets it again next call
        state.tail = tail - bias[:, None] if bias is not None else tail.clone()
        return y[..., :n_out]
