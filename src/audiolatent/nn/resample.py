"""Learned frame-rate changes after a SEANet: strided conv down, transposed conv up.

As in Mimi (Défossez et al., 2024, "Moshi"), which takes a 25 Hz SEANet output to 12.5 Hz with
a stride-2 convolution before quantisation and back with a stride-2 transposed convolution
after: kernel ``2 * stride``, no bias. With these a codec reaches frame rates a pure SEANet
stack would need very large strides for (e.g. 24 kHz / 960 / 2 = 12.5 Hz).

Both stream exactly when causal (the default) and follow the framing rules of
:mod:`audiolatent.nn.conv`: ``T`` frames -> ``ceil(T / stride)`` down, ``T`` -> ``T * stride`` up.
"""

from __future__ import annotations

import torch

from audiolatent.core.streaming import StreamingModule
from audiolatent.nn.conv import StreamingConv1d, StreamingConvTranspose1d

__all__ = ["ConvDownsample1d", "ConvTrUpsample1d"]


class ConvDownsample1d(StreamingModule):
    """``[B, dim, T]`` -> ``[B, dim, ceil(T / stride)]`` by a learned strided convolution.

    Args:
        dim: channels (unchanged).
        stride: downsampling factor (>= 1).
        causal: causal padding (streams; lookahead 0) or "same" padding (offline only).
        channel_wise: one filter per channel (``groups=dim``) instead of a full channel mix.
        norm: ``"none"`` or ``"weight_norm"``.

    Attributes: ``stride``; ``lookahead`` in input frames.
    """

    def __init__(self, dim: int, stride: int, *, causal: bool = True, channel_wise: bool = False, norm: str = "none") -> None:
        super().__init__()
        self.conv = StreamingConv1d(
            dim, dim, 2 * stride, stride, groups=dim if channel_wise else 1, bias=False, causal=causal, norm=norm
        )
        self.stride, self.lookahead, self.causal = stride, self.conv.lookahead, causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ConvTrUpsample1d(StreamingModule):
    """``[B, dim, T]`` -> ``[B, dim, T * stride]`` by a learned transposed convolution.

    Args:
        dim: channels (unchanged).
        stride: upsampling factor (>= 1).
        causal: trim the overlap on the right (streams; lookahead 0) or symmetrically.
        channel_wise: one filter per channel (``groups=dim``, Mimi's choice) or a full mix.
        norm: ``"none"`` or ``"weight_norm"``.

    Attributes: ``stride``; ``lookahead`` in output frames.
    """

    def __init__(self, dim: int, stride: int, *, causal: bool = True, channel_wise: bool = True, norm: str = "none") -> None:
        super().__init__()
        self.convtr = StreamingConvTranspose1d(
            dim, dim, 2 * stride, stride, groups=dim if channel_wise else 1, bias=False, causal=causal, norm=norm
        )
        self.stride, self.lookahead, self.causal = stride, self.convtr.lookahead, causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convtr(x)
