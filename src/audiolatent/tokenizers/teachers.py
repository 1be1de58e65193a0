"""Teachers: frozen feature extractors that semantic tokenizers and codec losses learn from.

A teacher maps audio to features ``[B, D, T]`` at its own frame rate. Semantic tokenizers fit
k-means units on them, and codec training options distil them into a codebook or align a latent
to them. Both need the features on the codec's frame grid, so every teacher also gives them
resampled in time to any frame rate (:meth:`Teacher.features_at`).

* :class:`HFTeacher`: one hidden layer, or the mean of all, of a self-supervised speech model
  from ``transformers`` (HuBERT, WavLM, wav2vec 2.0). :func:`hubert_teacher` and
  :func:`wavlm_teacher` load the usual checkpoints from the local cache, or the hub where there
  is network. Tests build them from a small config with random weights.
* :class:`TokenizerTeacher`: the continuous latent of any tokenizer (``mel-16k``'s log-mel, a
  VAE's means).

Timing. Teacher frame ``t`` has a centre time ``c(t)`` in seconds:
- for an ``HFTeacher``, the centre of its convolutional receptive field,
  ``(t * stride + (rf - 1) / 2) / sample_rate``; HuBERT's is ``(320 t + 199.5) / 16000``;
- for a ``TokenizerTeacher``, the centre of frame ``t``'s hop window, ``(t + 0.5) / frame_rate``
  (a ``centred`` tokenizer such as mel-16k instead has ``t / frame_rate``).

Target frame ``u`` at rate ``r`` has centre ``(u + 0.5) / r``. :func:`resample_frames` linearly
interpolates the teacher's sequence at those times, holding the first and last frames past the
ends. This is exact for features that are linear in time.

Audio at another sample rate is resampled (soxr) to the teacher's before analysis. Teachers are
frozen: ``features`` runs without gradients in eval mode.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from audiolatent.core.audio import resample
from audiolatent.core.errors import ConfigError

__all__ = ["Teacher", "HFTeacher", "TokenizerTeacher", "resample_frames", "hubert_teacher", "wavlm_teacher",
           "HUBERT_WEIGHTS", "WAVLM_WEIGHTS"]

HUBERT_WEIGHTS = "facebook/hubert-base-ls960"
WAVLM_WEIGHTS = "microsoft/wavlm-base-plus"


def resample_frames(features: torch.Tensor, source_centres: torch.Tensor, target_centres: torch.Tensor) -> torch.Tensor:
    """Linear interpolation in time: ``features [B, D, T]`` at ``source_centres [T]`` (increasing,
    seconds) -> ``[B, D, U]`` at ``target_centres [U]``, holding the end frames beyond the range."""
    if features.shape[-1] != source_centres.shape[0]:
        raise ValueError(f"{features.shape[-1]} frames but {source_centres.shape[0]} centre times")
    if features.shape[-1] == 0:
        raise ValueError("a teacher gave no frame (audio shorter than its receptive field?)")
    src = source_centres.to(torch.float64)
    dst = target_centres.to(torch.float64).clamp(float(src[0]), float(src[-1]))
    right = torch.searchsorted(src, dst, right=False).clamp(1, max(1, src.shape[0] - 1))
    left = right - 1
    if src.shape[0] == 1:
        return features[..., :1].expand(*features.shape[:-1], dst.shape[0]).clone()
    span = (src[right] - src[left]).clamp_min(1e-12)
    weight = ((dst - src[left]) / span).clamp(0, 1).to(features.dtype)
    return features[..., left] * (1 - weight) + features[..., right] * weight


class Teacher(nn.Module):
    """A frozen feature extractor (see the module docstring). Subclasses set ``sample_rate``,
    ``frame_rate``, ``dim`` and ``name``, and implement ``_features`` and ``frame_centres``."""

    sample_rate: int
    frame_rate: float
    dim: int
    name: str = "teacher"

    def _features(self, audio: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """``[B, 1, N]`` mono audio at ``sample_rate`` -> ``[B, D, T]``."""
        raise NotImplementedError

    def frame_centres(self, n_frames: int) -> torch.Tensor:  # pragma: no cover - abstract
        """Centre times in seconds of the first ``n_frames`` frames ``[T]``."""
        raise NotImplementedError

    def _prepare(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        if audio.dim() != 3 or audio.shape[1] != 1:
            raise ValueError(f"{self.name}: expected mono audio [B, 1, N], got shape {tuple(audio.shape)}")
        if sample_rate != self.sample_rate:
            audio = resample(audio, sample_rate, self.sample_rate)
        return audio

    @torch.no_grad()
    def features(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """``audio [B, 1, N]`` at ``sample_rate`` -> features ``[B, D, T]`` at ``self.frame_rate``."""
        self.eval()
        return self._features(self._prepare(audio, sample_rate)).float()

    @torch.no_grad()
    def features_at(self, audio: torch.Tensor, sample_rate: int, frame_rate: float, n_frames: int) -> torch.Tensor:
        """The features resampled in time to ``n_frames`` frames at ``frame_rate`` (frame ``u``
        centred at ``(u + 0.5) / frame_rate``): ``[B, D, n_frames]``."""
        return self.on_grid(self.features(audio, sample_rate), frame_rate, n_frames)

    def on_grid(self, features: torch.Tensor, frame_rate: float, n_frames: int) -> torch.Tensor:
        """Anything ``[B, D', T]`` on this teacher's frames (its features, or a function of them
        frame by frame) resampled as :meth:`features_at` does."""
        target = (torch.arange(n_frames, dtype=torch.float64) + 0.5) / frame_rate
        return resample_frames(features, self.frame_centres(features.shape[-1]), target)


def _conv_geometry(kernels: list[int], strides: list[int]) -> tuple[int, int]:
    """Receptive field and total stride (samples) of a stack of unpadded strided convolutions."""
    field, jump = 1, 1
    for k, s in zip(kernels, strides):
        field += (k - 1) * jump
        jump *= s
    return field, jump


class HFTeacher(Teacher):
    """A hidden layer of a ``transformers`` speech model (HuBERT, WavLM, wav2vec 2.0).

    Args:
        model: the model (``HubertModel``, ``WavLMModel``, ``Wav2Vec2Model``...): it must take
            ``input_values [B, N]`` and return ``hidden_states`` with ``output_hidden_states=True``.
        layer: index into ``hidden_states`` (0 = the projected CNN features, ``i`` = transformer
            layer ``i``), or ``"mean"`` for the mean of every transformer layer (X-Codec's choice).
        normalize: zero-mean, unit-variance each input signal first (what the model's feature
            extractor does when ``do_normalize`` is set: WavLM yes, HuBERT base no).
        sample_rate: the model's input rate (16 kHz for all of these).
        name: for messages and provenance.
    """

    def __init__(self, model: nn.Module, layer: int | str = 9, normalize: bool = False, sample_rate: int = 16000,
                 name: str = "hf-teacher") -> None:
        super().__init__()
        config = model.config
        n_layers = int(config.num_hidden_layers)
        if layer != "mean" and not (isinstance(layer, int) and 0 <= layer <= n_layers):
            raise ConfigError(f"{name}: layer must be 0..{n_layers} or 'mean', got {layer!r}")
        self.model = model.eval().requires_grad_(False)
        self.layer, self.normalize, self.name = layer, normalize, name
        self.sample_rate = sample_rate
        self.receptive_field, self.stride = _conv_geometry(list(config.conv_kernel), list(config.conv_stride))
        self.frame_rate = sample_rate / self.stride
        self.dim = int(config.hidden_size)

    def frame_centres(self, n_frames: int) -> torch.Tensor:
        t = torch.arange(n_frames, dtype=torch.float64)
        return (t * self.stride + (self.receptive_field - 1) / 2) / self.sample_rate

    def _features(self, audio: torch.Tensor) -> torch.Tensor:
        x = audio[:, 0]
        if x.shape[-1] < self.receptive_field:  # one frame at least
            x = torch.nn.functional.pad(x, (0, self.receptive_field - x.shape[-1]))
        if self.normalize:
            x = (x - x.mean(-1, keepdim=True)) / (x.var(-1, keepdim=True, unbiased=False) + 1e-7).sqrt()
        hidden = self.model(input_values=x, output_hidden_states=True).hidden_states
        out = torch.stack(hidden[1:]).mean(0) if self.layer == "mean" else hidden[self.layer]
        return out.transpose(1, 2)  # [B, T, D] -> [B, D, T]

    def describe(self) -> dict:
        return {"teacher": self.name, "layer": self.layer, "dim": self.dim, "frame_rate": self.frame_rate,
                "sample_rate": self.sample_rate}


class TokenizerTeacher(Teacher):
    """A continuous stream of a tokenizer's latent as teacher features.

    Args:
        tokenizer: any :class:`~audiolatent.core.tokenizer.Tokenizer` with a continuous stream.
        stream: the stream's name or index (default: the first).
        centred: frame ``t`` is centred at ``t / frame_rate`` (a centred analysis like mel-16k's)
            instead of the middle of its hop window ``(t + 0.5) / frame_rate``.
    """

    def __init__(self, tokenizer: Any, stream: int | str = 0, centred: bool = False) -> None:
        super().__init__()
        self.tokenizer = tokenizer.eval()
        streams = tokenizer.silence_probe().streams
        index = stream if isinstance(stream, int) else next((i for i, s in enumerate(streams) if s.name == stream), None)
        if index is None or not 0 <= index < len(streams):
            raise ConfigError(f"{tokenizer.name}: no stream {stream!r}; streams: {[s.name for s in streams]}")
        chosen = streams[index]
        if chosen.is_discrete:
            raise ConfigError(f"{tokenizer.name}: stream {chosen.name!r} is discrete; a teacher needs continuous features")
        self.index, self.centred = index, centred
        self.sample_rate, self.frame_rate = tokenizer.sample_rate, float(chosen.frame_rate)
        self.dim, self.name = int(chosen.values.shape[1]), f"{tokenizer.name}:{chosen.name}"

    def frame_centres(self, n_frames: int) -> torch.Tensor:
        t = torch.arange(n_frames, dtype=torch.float64)
        return (t if self.centred else t + 0.5) / self.frame_rate

    def _features(self, audio: torch.Tensor) -> torch.Tensor:
        return self.tokenizer.encode(audio).streams[self.index].values


def _hf_teacher(model_class: str, weights: str, layer: int | str, normalize: bool, name: str) -> HFTeacher:
    from audiolatent.tokenizers.adapters.base import from_pretrained, require

    require("transformers", name)
    import transformers

    model = from_pretrained(getattr(transformers, model_class), weights, "main", name)
    return HFTeacher(model, layer=layer, normalize=normalize, name=f"{name}:{weights}")


def hubert_teacher(weights: str = HUBERT_WEIGHTS, layer: int | str = 9) -> HFTeacher:
    """HuBERT Base (Hsu et al. 2021) layer ``layer`` (9: the layer HuBERT's own second-iteration
    k-means units use), 768-d at 50 Hz; ``weights``: a hub id or a local directory."""
    return _hf_teacher("HubertModel", weights, layer, False, "hubert")


def wavlm_teacher(weights: str = WAVLM_WEIGHTS, layer: int | str = 6) -> HFTeacher:
    """WavLM Base+ (Chen et al. 2022) layer ``layer``, 768-d at 50 Hz (inputs normalised, as its
    feature extractor does)."""
    return _hf_teacher("WavLMModel", weights, layer, True, "wavlm")

