"""A dual semantic + acoustic encoder (X-Codec, Ye et al. 2024), causal when its teacher is.

X-Codec feeds a frozen self-supervised model's features through a small semantic encoder, sets
them beside the acoustic encoder's output, and quantises the concatenation with one RVQ, so the
codes carry what the teacher knows from the first level on. Here, codec encoder kind ``dual``
(:class:`DualEncoder`):

* **acoustic**: any codec encoder (``acoustic: {kind: stft-convnext, ...}``, the usual
  arguments), ``[B, C, N] -> a [B, D, T]``;
* **semantic**: a frozen teacher (``teacher``: a spec of :func:`~audiolatent.tokenizers.units.build_teacher`,
  e.g. ``phone:DIR``, whose hidden activations are used). A *causal* teacher
  (``fit phone-teacher --causal``) at a hop ``h`` dividing the codec's hop ``H`` gives ``H / h``
  native frames per codec frame; frame ``u`` stacks frames ``u H / h ... (u + 1) H / h - 1`` into
  one vector of ``E H / h`` channels, all of which end by sample ``(u + 1) H``: no lookahead.
  Any other teacher (HuBERT, WavLM: whole-signal attention) is resampled to the codec's frames
  (:meth:`~audiolatent.tokenizers.teachers.Teacher.features_at`) and makes the encoder non-causal,
  offline only, as X-Codec is;
* the stacked teacher frames go through a trainable causal convolution (``semantic_kernel``
  taps, ``semantic_dim`` channels) and a GELU, ``s [B, S, T]``;
* **fusion**: a 1x1 convolution of ``[a; s]`` (``D + S`` channels) back to ``dimension`` ``D``,
  the latent the bottleneck quantises. Its weights on ``a`` start as the identity and on ``s`` at
  zero, so training starts from the acoustic codec and learns how much of the teacher to admit.

The teacher's weights are frozen (no gradient, eval mode) but saved in the codec checkpoint: the
encoder needs them at inference. Streaming: every part is a causal streaming module (the teacher's
causal log-mel and convolutions included), so chunked output equals offline output; a chunk must
be a whole number of codec hops. X-Codec's second half, reconstructing the teacher's features
from the quantised latent, is the trainer's ``semantic.repa`` loss with the same teacher.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.core.streaming import StreamingModule
from audiolatent.nn.conv import StreamingConv1d
from audiolatent.tokenizers.units import build_teacher, parse_teacher

__all__ = ["DualEncoder"]


class DualEncoder(StreamingModule):
    """Codec encoder kind ``dual``: acoustic encoder + frozen teacher, fused (module docstring).

    Args:
        channels: audio channels (the teacher hears their mean).
        sample_rate: of the codec (a causal teacher must run at it).
        acoustic: the acoustic encoder's config: ``kind`` (default ``seanet``) and its arguments.
        teacher: teacher spec string (``phone:DIR``, ``hubert:9``) or mapping; a phone teacher's
            hidden activations are used.
        semantic_dim: channels of the semantic branch.
        semantic_kernel: taps of its causal convolution.

    Attributes: ``dimension``, ``hop_length`` (= ``stride``) of the acoustic encoder; ``causal``
    and ``lookahead`` (samples; None for a whole-signal teacher).
    """

    def __init__(self, channels: int = 1, sample_rate: int = 16000, acoustic: dict | None = None,
                 teacher: str | dict | None = None, semantic_dim: int = 64, semantic_kernel: int = 3) -> None:
        super().__init__()
        from audiolatent.tokenizers.codec import build_encoder

        if not acoustic:
            raise ConfigError("dual encoder: give the acoustic encoder's config, e.g. acoustic: {kind: stft-convnext, ...}")
        if not isinstance(acoustic, dict):
            raise ConfigError(f"dual encoder: acoustic must be a mapping, got {type(acoustic).__name__}")
        if acoustic.get("kind") == "dual":
            raise ConfigError("dual encoder: the acoustic encoder cannot itself be dual")
        if teacher is None:
            raise ConfigError("dual encoder: give a teacher (e.g. teacher: phone:DIR from `fit phone-teacher --causal`)")
        if semantic_dim < 1 or semantic_kernel < 1:
            raise ConfigError(f"dual encoder: semantic_dim and semantic_kernel must be >= 1, got {semantic_dim}, {semantic_kernel}")
        spec = parse_teacher(teacher) if isinstance(teacher, str) else dict(teacher)
        if spec.get("kind") == "phone":
            spec.setdefault("output", "hidden")
        self.acoustic = build_encoder(acoustic, channels=channels, sample_rate=sample_rate, name="encoder.acoustic")
        self.teacher = build_teacher(spec).requires_grad_(False).eval()
        self.channels, self.sample_rate = channels, sample_rate
        self.dimension, self.hop_length = self.acoustic.dimension, self.acoustic.hop_length
        self.stride = self.hop_length
        self.teacher_causal = bool(getattr(self.teacher, "causal", False))
        if self.teacher_causal:
            teacher_hop = sample_rate / self.teacher.frame_rate
            if self.teacher.sample_rate != sample_rate or teacher_hop != int(teacher_hop) or self.hop_length % int(teacher_hop):
                raise ConfigError(
                    f"dual encoder: a causal teacher must run at the codec's {sample_rate} Hz with a hop dividing the codec's "
                    f"{self.hop_length} samples; {self.teacher.name} runs at {self.teacher.sample_rate} Hz, "
                    f"{self.teacher.frame_rate:g} frames/s")
            self.stack = self.hop_length // int(teacher_hop)
        else:
            self.stack = 1
        self.semantic = StreamingConv1d(self.teacher.dim * self.stack, semantic_dim, semantic_kernel)
        self.fuse = torch.nn.Conv1d(self.dimension + semantic_dim, self.dimension, 1)
        with torch.no_grad():  # start as the acoustic encoder alone
            self.fuse.weight.zero_()
            self.fuse.weight[:, : self.dimension, 0] = torch.eye(self.dimension)
            self.fuse.bias.zero_()
        self.causal = bool(self.acoustic.causal and self.teacher_causal)
        acoustic_lookahead = self.acoustic.lookahead
        self.lookahead = (None if acoustic_lookahead is None or not self.teacher_causal else int(acoustic_lookahead))

    def train(self, mode: bool = True) -> "DualEncoder":
        super().train(mode)
        self.teacher.eval()  # frozen: always in eval mode
        return self

    def _init_streaming_state(self, batch_size: int):
        if not self.teacher_causal:
            raise StreamingError(f"dual encoder: its teacher {self.teacher.name} sees the whole signal and does not stream; "
                                 "use a causal teacher (`fit phone-teacher --causal`) for a streaming codec")
        return None

    @torch.no_grad()
    def teacher_frames(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's features on the codec's frames: ``[B, E * stack, N / hop_length]``."""
        mono = x.mean(dim=1, keepdim=True) if x.shape[1] > 1 else x
        n_frames = x.shape[-1] // self.hop_length
        if not self.teacher_causal:
            return self.teacher.features_at(mono.float(), self.sample_rate, self.sample_rate / self.hop_length, n_frames)
        native = self.teacher.features(mono.float(), self.sample_rate)  # [B, E, n_frames * stack]
        b, e, _ = native.shape
        return native.reshape(b, e, n_frames, self.stack).transpose(2, 3).reshape(b, e * self.stack, n_frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, C, N]`` (N a multiple of ``hop_length``) -> ``[B, dimension, N / hop_length]``."""
        if x.shape[-1] % self.hop_length:
            raise StreamingError(f"dual encoder: input must be a multiple of hop_length {self.hop_length} samples, "
                                 f"got {x.shape[-1]}")
        acoustic = self.acoustic(x)
        semantic = F.gelu(self.semantic(self.teacher_frames(x).to(acoustic.dtype)))
        return self.fuse(torch.cat([acoustic, semantic], dim=1))
