"""Semantic training losses: structure put into a codec's latent from a frozen teacher (issue 16).

The options the field credits with better downstream modelability, each a weight in the
``semantic`` section of a training config (:class:`~audiolatent.train.config.SemanticConfig`),
on one footing so that the bench can compare them. The teacher runs in training only, on the
training crop ``x``; the codec never sees it, so a causal codec stays causal and streams exactly.

With ``first`` the first quantiser level's output ``[B, D, T]`` (``out["first_level"]`` of
:meth:`~audiolatent.tokenizers.codec.NeuralCodec.forward`: RVQ level 1, or a ``split-rvq``'s
semantic quantiser, straight-through, so gradients reach the encoder), ``z_q`` the whole latent
and ``f [B, E, T]`` the teacher's features resampled to the codec's frames
(:meth:`~audiolatent.tokenizers.teachers.Teacher.features_at`) and standardised per channel over
the batch (``(f - mean) / std`` over ``B`` and ``T``: raw log-mels or SSL activations carry large
offsets that a cosine would otherwise spend itself on):

* ``distill`` (SpeechTokenizer, Zhang et al. 2023; Mimi): ``P`` a 1x1 convolution ``D -> E``;
  ``cosine``: ``1 - mean_{b,t} cos(P first[b, :, t], f[b, :, t])``; ``l1``: ``mean |P first - f|``.
* ``phone`` (PAST, Har-Tuv et al. 2025; CosyVoice's S3): a 1x1 classifier ``D -> n_phones`` on
  ``first``, cross-entropy (nats per frame) against the phone teacher's most likely phone at
  each frame (its logits resampled to the codec's frames first). When that phone teacher is also
  the ``teacher`` (``teacher: phone:DIR``), one pass gives both its hidden features and, through
  its head, its logits.
* ``ar`` (ALMTokenizer, Yang et al. 2025): a causal conv net ``g`` (``layers`` convolutions of
  ``kernel_size`` taps, GELU, ``dim`` channels, left padding only) predicts ``z_q[:, :, t + 1]``
  from ``z_q[:, :, :t + 1]``. Loss: the fraction of variance unexplained,
  ``mean_d ( mean_{b,t} (g(z_q)[d] - z_q[d, t+1])^2 / var_{b,t}(z_q[d, t+1]) )`` over the
  channels that vary, which is scale free (shrinking the latent does not lower it), 0 for a
  perfect prediction and 1 for predicting each channel's mean.
* ``repa`` (REPA-style anchoring, Yu et al. 2024, for continuous latents): a two-layer MLP
  ``M`` (1x1 convolutions, GELU, hidden width ``max(D, E)``) of ``z_q``; ``1 - mean cos(M z_q, f)``.

The heads (``P``, the classifier, ``g``, ``M``) are trained with the codec (a second parameter
group of its optimiser, clipped separately) and saved in the trainer state for ``--resume``,
never in the codec checkpoint. Teachers are frozen and not saved.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.core.errors import ConfigError
from audiolatent.train.config import SEMANTIC_LOSSES, SemanticConfig

__all__ = ["SemanticObjective", "CausalPredictor", "fraction_of_variance_unexplained", "cosine_distance",
           "standardise_features"]


def standardise_features(features: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``[B, E, T]`` -> zero mean, unit variance per channel over batch and time."""
    mean = features.mean(dim=(0, 2), keepdim=True)
    std = features.std(dim=(0, 2), keepdim=True, unbiased=False)
    return (features - mean) / (std + eps)


def cosine_distance(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - cos`` between ``[B, E, T]`` tensors along ``E``, averaged over frames: 0 when aligned, 2 when opposite."""
    return 1.0 - F.cosine_similarity(estimate, target, dim=1, eps=1e-6).mean()


def fraction_of_variance_unexplained(prediction: torch.Tensor, target: torch.Tensor, floor: float = 1e-4) -> torch.Tensor:
    """``mean_d  mean_{b,t}(p - y)^2 / var_{b,t}(y)`` for ``[B, D, T]`` tensors (see the module docstring).

    A channel's variance is floored at ``floor`` x the mean variance of all channels (a relative
    floor, so that the loss stays scale free while a nearly dead channel does not divide by almost
    zero). Constant channels (variance 0: nothing to predict, e.g. an RVQ whose codebooks are not
    yet initialised) are left out; with none left the loss is 0."""
    error = (prediction - target).pow(2).mean(dim=(0, 2))
    variance = target.var(dim=(0, 2), unbiased=False)
    varying = variance > 0
    if not bool(varying.any()):
        return (prediction * 0).sum()  # a zero that keeps the graph (one backward pass for every rank)
    variance = torch.maximum(variance, floor * variance[varying].mean())
    return (error[varying] / variance[varying]).mean()


class CausalPredictor(nn.Module):
    """``[B, D, T] -> [B, D, T]``: output ``t`` sees input frames ``<= t`` only (left-padded convolutions)."""

    def __init__(self, dim: int, hidden: int = 256, layers: int = 2, kernel_size: int = 3) -> None:
        super().__init__()
        if layers < 1 or kernel_size < 1 or hidden < 1:
            raise ConfigError(f"semantic.ar_options: dim, layers and kernel_size must be >= 1, got "
                              f"dim={hidden}, layers={layers}, kernel_size={kernel_size}")
        widths = [dim] + [hidden] * layers
        self.kernel_size = kernel_size
        self.convs = nn.ModuleList(nn.Conv1d(a, b, kernel_size) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Conv1d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.gelu(conv(F.pad(x, (self.kernel_size - 1, 0))))
        return self.out(x)


class SemanticObjective:
    """The semantic losses of one run: frozen teachers plus the trainable ``heads``.

    Args:
        config: the ``semantic`` section (at least one positive weight).
        dim: channels of the codec's latent ``z_q`` (the bottleneck's ``dim``).
        frame_rate: the codec's encoder frames per second (the grid the teacher is resampled to).
        sample_rate: of the training audio.
    """

    def __init__(self, config: SemanticConfig, dim: int, frame_rate: float, sample_rate: int) -> None:
        from audiolatent.tokenizers.units import build_teacher, parse_teacher

        config.validate()
        if not config.active:
            raise ConfigError("semantic: every weight is 0; nothing to train")
        self.config, self.frame_rate, self.sample_rate = config, float(frame_rate), int(sample_rate)
        self.weights = {name: float(getattr(config, name)) for name in SEMANTIC_LOSSES if getattr(config, name) > 0}
        self.teacher = self.phone_teacher = None
        teacher_folder = None  # of a phone teacher used as `teacher`
        heads: dict[str, nn.Module] = {}
        if config.distill > 0 or config.repa > 0:
            spec = parse_teacher(config.teacher) if isinstance(config.teacher, str) else dict(config.teacher)
            self.teacher = build_teacher(spec).requires_grad_(False)
            if spec.get("kind") == "phone" and spec.get("output", "posteriors") == "hidden":  # parse_teacher sets hidden
                teacher_folder = spec.get("path")
            width = self.teacher.dim
            if config.distill > 0:
                heads["distill"] = nn.Conv1d(dim, width, 1)
            if config.repa > 0:
                hidden = max(dim, width)
                heads["repa"] = nn.Sequential(nn.Conv1d(dim, hidden, 1), nn.GELU(), nn.Conv1d(hidden, width, 1))
        if config.phone > 0:
            from audiolatent.tokenizers.phone_teacher import load_phone_teacher

            folder = config.phone_folder()
            if folder is not None and folder == teacher_folder:  # the same network: one pass gives both
                self.phone_teacher = self.teacher
            else:
                self.phone_teacher = load_phone_teacher(folder, output="logits").requires_grad_(False)
            heads["phone"] = nn.Conv1d(dim, len(self.phone_teacher.phones), 1)
        if config.ar > 0:
            options = dict(config.ar_options)
            heads["ar"] = CausalPredictor(dim, options.pop("dim", 256), **options)
        self.heads = nn.ModuleDict(heads)

    def to(self, device: torch.device | str) -> "SemanticObjective":
        self.heads.to(device)
        for teacher in (self.teacher, self.phone_teacher):
            if teacher is not None:
                teacher.to(device)
        return self

    def losses(self, x: torch.Tensor, out: dict) -> dict[str, torch.Tensor]:
        """Unweighted semantic losses of a codec forward ``out`` on audio ``x [B, C, N]``."""
        first, z_q = out["first_level"], out["z_q"]
        frames = z_q.shape[-1]
        mono = x.mean(dim=1, keepdim=True) if x.shape[1] > 1 else x
        result: dict[str, torch.Tensor] = {}
        native = None  # the teacher's features at its own frame rate
        if self.teacher is not None:
            native = self.teacher.features(mono.float(), self.sample_rate)
            target = standardise_features(self.teacher.on_grid(native, self.frame_rate, frames).to(z_q.device))
            if "distill" in self.heads:
                estimate = self.heads["distill"](first.float())
                result["distill"] = (cosine_distance(estimate, target) if self.config.distill_kind == "cosine"
                                     else (estimate - target).abs().mean())
            if "repa" in self.heads:
                result["repa"] = cosine_distance(self.heads["repa"](z_q.float()), target)
        if self.phone_teacher is not None:
            if self.phone_teacher is self.teacher:  # its hidden features are computed already: only the head is left
                with torch.no_grad():
                    logits = self.teacher.on_grid(self.teacher.head(native), self.frame_rate, frames)
            else:
                logits = self.phone_teacher.features_at(mono.float(), self.sample_rate, self.frame_rate, frames)
            labels = logits.argmax(dim=1).to(z_q.device)
            result["phone"] = F.cross_entropy(self.heads["phone"](first.float()), labels)
        if "ar" in self.heads:
            if frames < 2:
                raise ConfigError("semantic.ar: training crops must span at least 2 codec frames")
            latent = z_q.float()
            result["ar"] = fraction_of_variance_unexplained(self.heads["ar"](latent[..., :-1]), latent[..., 1:])
        return result

    def weighted(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """``sum_i w_i l_i`` over ``losses``."""
        return torch.stack([self.weights[name] * value for name, value in losses.items()]).sum()
