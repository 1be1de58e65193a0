"""Causal ConvNeXt blocks at frame rate, and the codec encoder/decoder built from them.

ConvNeXt (Liu et al. 2022, "A ConvNet for the 2020s") in its 1-D form used by Vocos (Siuzdak
2023): a depthwise conv, a channel LayerNorm, a pointwise MLP (x4, GELU), a learned per-channel
layer scale and a residual. Here the depthwise conv is a :class:`StreamingConv1d`, causal by
default, so the blocks stream exactly and have lookahead 0.

Working at the frame rate (e.g. 50 Hz) instead of the sample rate is what makes these models
cheap on a CPU: a 256-channel block costs ``~8 * 256^2`` MACs per *frame*, while a SEANet spends
most of its compute in its first layers at 16 000 samples/s.

* :class:`ConvNeXtBlock`, :class:`ConvNeXtBackbone` — ``[B, dim, T] -> [B, dim, T]``.
* :class:`STFTConvNeXtEncoder` (codec encoder kind ``stft-convnext``) — waveform
  ``[B, C, N]`` -> causal :class:`~audiolatent.nn.spectral.StreamingSTFT` log-(mel) features at
  ``hop_length / downsample`` -> strided causal conv to the frame rate -> backbone -> pointwise
  projection -> ``[B, dimension, ceil(N / hop_length)]``.
* :class:`VocosDecoder` (codec decoder kind ``vocos``) — latent ``[B, dimension, T]`` -> causal
  conv embedding -> backbone -> :class:`~audiolatent.nn.spectral.StreamingISTFTHead` ->
  ``[B, C, T * hop_length]`` (Vocos, with causal framing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.core.cache import TableCache
from audiolatent.core.errors import StreamingError
from audiolatent.core.streaming import StreamingModule
from audiolatent.nn.conv import StreamingConv1d
from audiolatent.nn.matvec import linear_rows
from audiolatent.nn.latency import downsampling_lookahead, upsampling_lookahead
from audiolatent.nn.spectral import MelMagnitudePrior, StreamingISTFTHead, StreamingSTFT

__all__ = ["ChannelLayerNorm", "ConvNeXtBlock", "ConvNeXtBackbone", "STFTConvNeXtEncoder", "VocosDecoder"]


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of ``[B, C, T]`` (per frame, so it streams with no state)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ConvNeXtBlock(StreamingModule):
    """``x + gamma * MLP(LN(dwconv(x)))`` on ``[B, dim, T]``, same length.

    Args:
        dim: channels.
        intermediate_dim: MLP hidden width (ConvNeXt/Vocos: ``4 * dim``).
        kernel_size, dilation: of the depthwise conv (7, 1 in ConvNeXt).
        layer_scale_init: initial ``gamma`` (Vocos: ``1 / n_layers``); None = no layer scale.
        causal: causal depthwise conv (streams, lookahead 0) or centred (offline only).

    Attributes: ``stride`` (1), ``lookahead`` (frames; 0 when causal).
    """

    stride = 1

    def __init__(
        self,
        dim: int,
        intermediate_dim: int | None = None,
        kernel_size: int = 7,
        dilation: int = 1,
        layer_scale_init: float | None = 1e-6,
        causal: bool = True,
    ) -> None:
        super().__init__()
        hidden = intermediate_dim or 4 * dim
        self.dwconv = StreamingConv1d(dim, dim, kernel_size, dilation=dilation, groups=dim, causal=causal)
        self.norm = nn.LayerNorm(dim)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init))) if layer_scale_init else None
        self.lookahead = self.dwconv.lookahead
        self._rows = TableCache()  # one-frame forms of the pointwise layers (nn.matvec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_streaming and x.shape[-1] == 1:
            return self._forward_one_frame(x)
        y = self.dwconv(x).transpose(1, 2)  # [B, T, dim]: LayerNorm and Linear act on the last axis
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        if self.gamma is not None:
            y = y * self.gamma
        return x + y.transpose(1, 2)

    def _forward_one_frame(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` on one streamed frame ``[B, dim, 1]`` with the fewest kernel calls (at this
        size each call's fixed cost, not arithmetic, is the price); equal to float rounding.
        The pointwise layers run through :func:`~audiolatent.nn.matvec.linear_rows`."""
        b, dim, _ = x.shape
        norm, gelu = self.norm, self.act.approximate
        shape = (dim,) if b == 1 else (b, dim)
        y = F.layer_norm(self.dwconv(x).view(shape), norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        first, second = self.pwconv1, self.pwconv2
        y = linear_rows(y.view(b, dim), first.weight, first.bias, self._rows, self, "pwconv1")
        y = linear_rows(F.gelu(y, approximate=gelu), second.weight, second.bias, self._rows, self, "pwconv2").view(shape)
        residual = x.view(shape)
        y = residual + y if self.gamma is None else torch.addcmul(residual, y, self.gamma)
        return y.view(b, dim, 1)


class ConvNeXtBackbone(StreamingModule):
    """Optional causal conv embedding, ``n_layers`` ConvNeXt blocks, final channel LayerNorm.

    ``[B, in_channels, T]`` -> ``[B, dim, T]`` (``in_channels=None``: input already has ``dim``
    channels, no embedding). As the Vocos backbone: embedding conv (kernel ``embed_kernel_size``)
    -> LayerNorm -> blocks -> LayerNorm.

    Args:
        dim, n_layers: width and depth.
        in_channels: channels of the input, or None.
        intermediate_dim, kernel_size, causal: per block (see :class:`ConvNeXtBlock`).
        layer_scale_init: initial layer scale; None = ``1 / n_layers`` (Vocos).
        dilations: per-block dilations of the depthwise conv, cycled (default all 1).
        embed_kernel_size: kernel of the embedding conv.

    Attributes: ``stride`` (1), ``lookahead`` (frames; 0 when causal), ``causal``.
    """

    stride = 1

    def __init__(
        self,
        dim: int,
        n_layers: int,
        in_channels: int | None = None,
        intermediate_dim: int | None = None,
        kernel_size: int = 7,
        layer_scale_init: float | None = None,
        dilations: tuple[int, ...] | list[int] = (1,),
        embed_kernel_size: int = 7,
        causal: bool = True,
    ) -> None:
        super().__init__()
        scale = layer_scale_init if layer_scale_init is not None else 1.0 / max(1, n_layers)
        layers: list[nn.Module] = []
        if in_channels is not None:
            layers += [StreamingConv1d(in_channels, dim, embed_kernel_size, causal=causal), ChannelLayerNorm(dim)]
        layers += [
            ConvNeXtBlock(dim, intermediate_dim, kernel_size, dilations[i % len(dilations)], scale, causal)
            for i in range(n_layers)
        ]
        layers.append(ChannelLayerNorm(dim))
        self.layers = nn.Sequential(*layers)
        self.dim, self.causal = dim, causal
        self.lookahead = downsampling_lookahead(self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels or dim, T]`` -> ``[B, dim, T]``."""
        return self.layers(x)


class STFTConvNeXtEncoder(StreamingModule):
    """Waveform ``[B, channels, N]`` -> latent ``[B, dimension, ceil(N / hop_length)]`` (kind ``stft-convnext``).

    Args:
        channels: audio channels.
        dimension: latent channels D.
        hop_length: samples per latent frame.
        sample_rate: Hz (for the mel filterbank).
        dim, n_layers, intermediate_dim, kernel_size, dilations: the ConvNeXt backbone.
        n_fft: STFT frame length (samples; default ``2 * hop_length / downsample``, at least
            ``hop_length / downsample``).
        features: ``"log-mel"`` or ``"log-magnitude"``; ``n_mels`` for the former.
        window: STFT analysis window (``hann`` or ``asymmetric``).
        downsample: STFT hop = ``hop_length / downsample``; a causal conv with kernel
            ``2 * downsample`` and stride ``downsample`` brings the frames to the latent rate.
        causal: must be True for streaming (the STFT is always causal).

    Attributes: ``hop_length`` (= ``stride``), ``lookahead`` (input samples, 0), ``causal``,
    ``dimension``.
    """

    def __init__(
        self,
        channels: int = 1,
        dimension: int = 64,
        hop_length: int = 320,
        sample_rate: int = 16000,
        dim: int = 256,
        n_layers: int = 6,
        intermediate_dim: int | None = None,
        kernel_size: int = 7,
        dilations: tuple[int, ...] | list[int] = (1,),
        n_fft: int | None = None,
        features: str = "log-mel",
        n_mels: int = 80,
        window: str = "hann",
        downsample: int = 1,
        causal: bool = True,
    ) -> None:
        super().__init__()
        if downsample < 1 or hop_length % downsample:
            raise ValueError(f"downsample {downsample} must divide hop_length {hop_length}")
        stft_hop = hop_length // downsample
        self.stft = StreamingSTFT(
            n_fft or 2 * stft_hop, stft_hop, channels=channels, features=features,
            sample_rate=sample_rate, n_mels=n_mels, window=window,
        )
        embed_kernel = 2 * downsample if downsample > 1 else 7
        self.embed = StreamingConv1d(self.stft.n_features, dim, embed_kernel, stride=downsample, causal=causal)
        self.backbone = ConvNeXtBackbone(dim, n_layers, None, intermediate_dim, kernel_size, None, dilations, causal=causal)
        self.proj = StreamingConv1d(dim, dimension, 1, causal=causal)
        self.embed_norm = ChannelLayerNorm(dim)
        self.channels, self.dimension, self.causal = channels, dimension, causal
        self.hop_length = self.stride = hop_length
        self.lookahead = downsampling_lookahead([self.stft, self.embed, self.backbone, self.proj])

    def n_frames(self, n_samples: int) -> int:
        """Frames for ``n_samples`` samples offline: ``ceil(n_samples / hop_length)``."""
        return -(-n_samples // self.hop_length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, channels, N]`` -> ``[B, dimension, ceil(N / hop_length)]``."""
        if self.is_streaming and x.shape[-1] % self.hop_length:
            raise StreamingError(f"STFTConvNeXtEncoder: streaming chunks must be a multiple of hop_length {self.hop_length} samples, got {x.shape[-1]}")
        if not self.is_streaming and x.shape[-1] % self.hop_length:
            x = nn.functional.pad(x, (0, -x.shape[-1] % self.hop_length))
        return self.proj(self.backbone(self.embed_norm(self.embed(self.stft(x)))))


class VocosDecoder(StreamingModule):
    """Latent ``[B, dimension, T]`` -> waveform ``[B, channels, T * hop_length]`` (kind ``vocos``).

    Args:
        channels: audio channels.
        dimension: latent channels D.
        hop_length: samples per frame (the ISTFT hop).
        dim, n_layers, intermediate_dim, kernel_size, dilations: the ConvNeXt backbone.
        n_fft: ISTFT frame length (default ``4 * hop_length / subframes``, as Vocos).
        window, normalize: of the :class:`~audiolatent.nn.spectral.StreamingISTFTHead`.
        subframes: synthesis frames per latent frame (ISTFT hop ``hop_length / subframes``): finer
            time resolution and a shorter window for the same backbone.
        causal: causal backbone (streams, lookahead 0).
        magnitude_prior: ``"mel"``: the latent is a log-mel spectrogram (``mel_analysis`` says
            which) and the head adds its :class:`~audiolatent.nn.spectral.MelMagnitudePrior` to
            the predicted log magnitude, so the network learns a correction and the phase (a
            mel vocoder); None: no prior.
        delay_frames: the output lags the latent by this many frames (``delay`` samples): frame
            ``t`` renders the audio centred near its own analysis window instead of extrapolating
            past it (a causal head places frame ``t``'s synthesis window *after* the frame). The
            codec declares the delay; training compares the output with the delayed input.
        phase: ``absolute``, ``accumulated`` or ``pghi`` phase in the head (see
            :class:`~audiolatent.nn.spectral.StreamingISTFTHead`). With ``pghi`` the network
            predicts magnitudes only and :meth:`forward` takes the training reference's phase.
        mel_analysis: the mel analysis (:class:`~audiolatent.tokenizers.mel.MelConfig` fields
            ``sample_rate n_fft win_length n_mels f_min f_max mel_scale norm power log_floor``);
            a codec fills it from a ``log-mel`` encoder.

    Attributes: ``hop_length`` (= ``stride``), ``lookahead`` (output samples, 0), ``causal``,
    ``dimension``, ``prior`` (the prior module or None), ``delay`` (samples).
    """

    def __init__(
        self,
        channels: int = 1,
        dimension: int = 64,
        hop_length: int = 320,
        dim: int = 256,
        n_layers: int = 8,
        intermediate_dim: int | None = None,
        kernel_size: int = 7,
        dilations: tuple[int, ...] | list[int] = (1,),
        n_fft: int | None = None,
        window: str = "hann",
        normalize: bool = True,
        causal: bool = True,
        subframes: int = 1,
        magnitude_prior: str | None = None,
        mel_analysis: dict | None = None,
        phase: str = "absolute",
        delay_frames: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(delay_frames, int) or delay_frames < 0:
            raise ValueError(f"vocos decoder: delay_frames must be an int >= 0, got {delay_frames!r}")
        if subframes < 1 or hop_length % subframes:
            raise ValueError(f"vocos decoder: subframes ({subframes}) must be >= 1 and divide hop_length ({hop_length})")
        synthesis_hop = hop_length // subframes
        self.backbone = ConvNeXtBackbone(dim, n_layers, dimension, intermediate_dim, kernel_size, None, dilations, causal=causal)
        self.head = StreamingISTFTHead(dim, n_fft or 4 * synthesis_hop, synthesis_hop, channels=channels, window=window,
                                       normalize=normalize, subframes=subframes, phase=phase)
        self.prior = None
        if magnitude_prior == "mel":
            if not mel_analysis:
                raise ValueError("vocos decoder: magnitude_prior 'mel' needs a log-mel latent (encoder kind log-mel) "
                                 "or an explicit mel_analysis")
            analysis = {k: v for k, v in mel_analysis.items() if k != "hop_length"}
            analysis["analysis_n_fft"] = analysis.pop("n_fft")
            if analysis.get("n_mels") != dimension:
                raise ValueError(f"vocos decoder: the mel prior reads {analysis.get('n_mels')} mels but the latent has {dimension} channels")
            self.prior = MelMagnitudePrior(self.head.n_fft, self.head.window, **analysis)
        elif magnitude_prior is not None:
            raise ValueError(f"vocos decoder: magnitude_prior must be 'mel' or None, got {magnitude_prior!r}")
        self.channels, self.dimension, self.causal = channels, dimension, causal
        self.hop_length = self.stride = hop_length
        self.lookahead = upsampling_lookahead([self.backbone, self.head])
        self.delay = delay_frames * hop_length

    def n_samples(self, n_frames: int) -> int:
        """Samples for ``n_frames`` frames: ``n_frames * hop_length``."""
        return n_frames * self.hop_length

    @property
    def trains_on_reference_phase(self) -> bool:
        """Whether training should pass the input audio as ``phase_reference`` (a ``pghi`` head)."""
        return self.head.phase == "pghi"

    def forward(self, z: torch.Tensor, phase_reference: torch.Tensor | None = None) -> torch.Tensor:
        """``z [B, dimension, T]`` -> ``[B, channels, T * hop_length]``.

        ``phase_reference`` (``pghi`` head only): audio ``[B, channels, >= T * hop_length]`` aligned
        with the output whose phase replaces the integrated one, so that a training loss on the
        output depends on the predicted magnitudes alone.

        A ``pghi`` head without a reference runs one frame per call, offline as in streaming:
        the heap integration orders bins by magnitude, so float noise between a batched and a
        chunked pass could flip a near-tie and change a phase; frame by frame, every chunking
        computes the same magnitudes bit for bit and streams exactly like the offline decode."""
        if self.head.phase == "pghi" and phase_reference is None:
            return self._frame_by_frame(z)
        return self.head(self.backbone(z), None if self.prior is None else self.prior(z), phase_reference)

    def _frame_by_frame(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1] == 0:
            return z.new_zeros(z.shape[0], self.channels, 0)

        def run() -> torch.Tensor:
            frames = [z[..., t : t + 1] for t in range(z.shape[-1])]
            prior = (lambda f: None) if self.prior is None else self.prior
            return torch.cat([self.head(self.backbone(f), prior(f)) for f in frames], dim=-1)

        if self.is_streaming:
            return run()
        with self.streaming(z.shape[0]):
            return run()
