"""Configuration of second-stage LM training (``audiolatent lm train``): dataclasses <-> YAML.

An LM training config (``configs/lm/*.yaml``) has these top-level keys; each is a field of
:class:`LMTrainConfig` or of one of its sections::

    model: {kind: token, pattern: delay, dim: 64, layers: 2, heads: 4}    # or kind: continuous, head: gaussian
    data: {window_frames: 128, batch_size: 8, train_split: train, eval_split: test, cache_dir: null}
    optim: {lr: 3.0e-3, betas: [0.9, 0.95], weight_decay: 0.01, grad_clip: 1.0}
    schedule: {kind: cosine, warmup_steps: 20}
    steps: 300
    log_every: 10
    eval_every: 100
    checkpoint_every: 100
    seed: 0

``optim`` and ``schedule`` are the codec trainer's sections
(:class:`~audiolatent.train.config.OptimConfig`, :class:`~audiolatent.train.config.ScheduleConfig`).
:func:`load_lm_config` reads a path or a packaged name (``token-small``, ``continuous-small``)
and applies ``key.sub=value`` overrides.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from audiolatent.core.config import apply_overrides, from_dict, load_yaml, resolve_config, to_dict
from audiolatent.core.errors import ConfigError
from audiolatent.lm.errors import LMError
from audiolatent.lm.heads import HEADS
from audiolatent.lm.patterns import PATTERNS
from audiolatent.train.config import PRECISIONS, SCHEDULES, OptimConfig, ScheduleConfig

__all__ = ["LMError", "LMModelConfig", "LMDataConfig", "LMTrainConfig", "load_lm_config", "MODEL_KINDS"]

MODEL_KINDS = ("token", "continuous")


@dataclass
class LMModelConfig:
    """The second-stage model.

    * ``kind: token``: a :class:`~audiolatent.lm.token_lm.TokenLM` over discrete codes ``[B, K, T]``
      laid out by ``pattern`` (``flat``, ``parallel``, ``delay``, ``valle``, ``depth``);
      ``depth_*`` size the depth transformer of the ``depth`` pattern.
    * ``kind: continuous``: a :class:`~audiolatent.lm.continuous.ContinuousLM` over ``[B, D, T]``
      frames with a distribution ``head`` (``gaussian``, ``gmm``, ``flow``); ``head_kwargs`` go
      to the head (e.g. ``{n_components: 8}``).

    ``dim``, ``layers``, ``heads``, ``dim_feedforward`` (None: 4 x dim) and ``context`` (frames of
    attention, None: unbounded) size the causal transformer of both.
    """

    kind: str = "token"
    dim: int = 128
    layers: int = 4
    heads: int = 4
    dim_feedforward: int | None = None
    context: int | None = None
    pattern: str = "delay"
    depth_dim: int = 64
    depth_layers: int = 1
    depth_heads: int = 4
    head: str = "gaussian"
    head_kwargs: dict = field(default_factory=dict)


@dataclass
class LMDataConfig:
    """Training windows.

    Every step draws ``batch_size`` random windows of ``window_frames`` frames per rank from the
    train split's latents joined end to end. ``cache_dir`` holds the encoded latents (None:
    ``$AUDIOLATENT_CACHE`` or ``~/.cache/audiolatent``, under ``latents/``). Held-out
    evaluation scores at most ``eval_max_items`` files of ``eval_split`` (None: all).
    """

    window_frames: int = 128
    batch_size: int = 8
    train_split: str | None = "train"
    eval_split: str | None = "test"
    eval_max_items: int | None = None
    cache_dir: str | None = None


@dataclass
class LMTrainConfig:
    """A second-stage training run (see the module docstring). Cadences are in optimiser steps;
    0 turns evaluation or periodic checkpoints off (the last step is always checkpointed)."""

    description: str = ""
    model: LMModelConfig = field(default_factory=LMModelConfig)
    data: LMDataConfig = field(default_factory=LMDataConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=3e-3, betas=(0.9, 0.95), weight_decay=0.01,
                                                                   grad_clip=1.0))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(kind="cosine", warmup_steps=20))
    steps: int = 300
    log_every: int = 10
    eval_every: int = 100
    checkpoint_every: int = 100
    keep_last: int = 2
    max_nonfinite: int = 20
    precision: str = "fp32"
    seed: int = 0

    def __post_init__(self) -> None:
        m = self.model
        if m.kind not in MODEL_KINDS:
            raise ConfigError(f"model.kind: {m.kind!r} is not one of {list(MODEL_KINDS)}")
        if m.kind == "token" and m.pattern not in PATTERNS:
            raise ConfigError(f"model.pattern: {m.pattern!r} is not one of {sorted(PATTERNS)}")
        if m.kind == "continuous" and m.head not in HEADS:
            raise ConfigError(f"model.head: {m.head!r} is not one of {sorted(HEADS)}")
        if self.schedule.kind not in SCHEDULES:
            raise ConfigError(f"schedule.kind: {self.schedule.kind!r} is not one of {list(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision: {self.precision!r} is not one of {list(PRECISIONS)}")
        for name in ("steps", "log_every", "keep_last", "max_nonfinite"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "checkpoint_every"):  # 0 disables; a negative value is a typo, not "off"
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0 (0 disables it), got {getattr(self, name)}")
        if self.data.window_frames < 2 or self.data.batch_size < 1:
            raise ConfigError("data.window_frames must be >= 2 and data.batch_size >= 1")


def load_lm_config(source: str | os.PathLike | dict, overrides: list[str] | None = None) -> LMTrainConfig:
    """An :class:`LMTrainConfig` from a YAML path, a packaged name or a dict, with overrides applied."""
    if isinstance(source, dict):
        data = source
    else:
        data = load_yaml(resolve_config(source, "lm"))
    data = apply_overrides(to_dict(from_dict(LMTrainConfig, data, where=str(source)[:80])), overrides or [])
    return from_dict(LMTrainConfig, data, where="lm config")
