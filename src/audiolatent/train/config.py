"""Training configuration: one dataclass per section, read from and written to YAML.

A training config (``configs/train/*.yaml``) has these top-level keys; every key is a field of
:class:`TrainConfig` or of one of its sections, with the units given there::

    model: {sample_rate: 16000, encoder: {...}, bottleneck: {kind: rvq, ...}}  # CodecConfig, or a YAML path
    data: {crop_seconds: 1.0, batch_size: 8, num_workers: 2, train_split: train, eval_split: test}
    optim: {lr: 3.0e-4, betas: [0.8, 0.99], weight_decay: 0.0, grad_clip: 1000.0}
    schedule: {kind: exponential, warmup_steps: 0, gamma: 0.999996}
    losses: {mel: 15.0, adversarial: 1.0, feature_matching: 2.0, commitment: 0.25, codebook: 1.0}
    discriminators: [{kind: mpd}, {kind: mbstft}]
    adversarial_start_step: 0
    steps: 400000
    ...

:func:`load_train_config` reads such a file, resolves ``model`` when it is a path (relative to
the training config's folder first, then the working directory) into the codec config dict,
and only then applies ``key.sub=value`` overrides, so ``--set model.bottleneck.n_codebooks=4``
works either way. The resolved config is what ``run.json`` and checkpoints record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from audiolatent.core.config import apply_overrides, from_dict, load_yaml, resolve_config
from audiolatent.core.errors import ConfigError
from audiolatent.data.augment import CropAugmentation, augmentation_range
from audiolatent.data.manifest import DataError

__all__ = [
    "DataConfig", "OptimConfig", "ScheduleConfig", "LossConfig", "SemanticConfig", "TrainConfig", "load_train_config",
    "SCHEDULES", "PRECISIONS", "SEMANTIC_LOSSES",
]

SCHEDULES = ("cosine", "exponential", "constant")
PRECISIONS = ("fp32", "bf16")
#: the semantic training losses (issue 16), each weighted by the field of the same name in SemanticConfig
SEMANTIC_LOSSES = ("distill", "phone", "ar", "repa")


@dataclass
class DataConfig:
    """What the model sees.

    Attributes:
        crop_seconds: length of every training crop (seconds; rounded to samples, then the codec
            pads to a whole hop). Files shorter than this are zero-padded.
        batch_size: crops per optimiser step *per process* (global batch = batch_size x world size).
        num_workers: DataLoader worker processes (0: load in the training process).
        train_split / eval_split: manifest split used for training / held-out evaluation
            (``null`` = every file). With no file in ``eval_split`` evaluation is skipped.
        eval_crop_seconds: length of each evaluation excerpt (the first seconds of the file;
            ``null`` = whole files, batch size 1).
        eval_max_files: evaluate on at most this many held-out files.
        cache: keep decoded files in memory (per worker).
        speed: ``[low, high]`` speed-perturbation range of the training crops (e.g. ``[0.9, 1.1]``:
            pitch, formants and tempo move together, Kaldi-style), or ``null`` for none.
        gain_db: ``[low, high]`` random gain of the training crops in dB, or ``null``.
        pitch_semitones: ``[low, high]`` pitch shift of the training crops in semitones, tempo
            kept (phase vocoder + resampling), or ``null``.
        eq_db: largest boost or cut (dB) of a random smooth equaliser (gains at octave-spaced
            control frequencies from 125 Hz), or ``null``.
        band_limit_hz: ``[low, high]`` cutoff of a random zero-phase low-pass (e.g. ``[3400, 7000]``), or ``null``.
        noise_snr_db: ``[low, high]`` SNR of added white or pink noise in dB, or ``null``.
        reverb_rt60: ``[low, high]`` RT60 (seconds) of a synthetic room impulse response, or ``null``;
            ``reverb_drr_db``: its direct-to-reverberant ratio range in dB.
        pitch_prob, eq_prob, band_limit_prob, noise_prob, reverb_prob: probability that a crop gets
            that augmentation when its range is set (default 1).
            Every augmentation applies to training crops only, never to the held-out evaluation
            (see :class:`~audiolatent.data.AudioDataset` and :mod:`audiolatent.data.augment`).
        respect_band_limit: the reconstruction losses ignore the frequencies above a file's
            ``band_limit_hz`` (a manifest field, e.g. 4000 for 8 kHz telephone sources) for that file's
            crops (see :mod:`audiolatent.train.losses`); ``false``: every loss sees the whole band.
    """

    crop_seconds: float = 1.0
    batch_size: int = 8
    num_workers: int = 0
    train_split: str | None = "train"
    eval_split: str | None = "test"
    eval_crop_seconds: float | None = 2.0
    eval_max_files: int = 16
    cache: bool = False
    speed: list[float] | None = None
    gain_db: list[float] | None = None
    pitch_semitones: list[float] | None = None
    pitch_prob: float = 1.0
    eq_db: float | None = None
    eq_prob: float = 1.0
    band_limit_hz: list[float] | None = None
    band_limit_prob: float = 1.0
    noise_snr_db: list[float] | None = None
    noise_prob: float = 1.0
    reverb_rt60: list[float] | None = None
    reverb_drr_db: list[float] = field(default_factory=lambda: [0.0, 10.0])
    reverb_prob: float = 1.0
    respect_band_limit: bool = True

    def augmentation(self) -> CropAugmentation | None:
        """The :class:`~audiolatent.data.augment.CropAugmentation` of these keys, or None when all are off.

        Raises:
            DataError: a bad range or probability.
        """
        names = [f.name for f in fields(CropAugmentation)]
        return CropAugmentation.from_options({name: getattr(self, name) for name in names})


@dataclass
class OptimConfig:
    """AdamW for the codec and (same settings, ``disc_lr`` aside) for the discriminators.

    ``grad_clip``: max global L2 norm of the codec's (and separately the discriminators')
    gradient; ``null`` or 0 = no clipping (the norm is still logged).
    """

    lr: float = 3e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.0
    eps: float = 1e-8
    grad_clip: float | None = 1000.0
    disc_lr: float | None = None


@dataclass
class ScheduleConfig:
    """Learning-rate multiplier per optimiser step ``s`` (``lr(s) = lr * f(s)``).

    Linear warm-up from ~0 to 1 over ``warmup_steps``, then

    * ``cosine``: from 1 down to ``min_lr_ratio`` at ``TrainConfig.steps`` (half a cosine);
    * ``exponential``: ``gamma ** (s - warmup_steps)`` (DAC: 0.999996 per step);
    * ``constant``: 1.
    """

    kind: str = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    gamma: float = 0.999996


@dataclass
class LossConfig:
    """Weights of every loss (0 disables a term; its module is then not even built).

    Reconstruction: ``mel`` (:class:`~audiolatent.train.losses.MultiResolutionMelLoss`,
    options in ``mel_options``), ``stft`` (:class:`~audiolatent.train.losses.MultiResolutionSTFTLoss`,
    ``stft_options``), ``time_l1``. GAN (only with discriminators and after
    ``adversarial_start_step``): ``adversarial`` (``adversarial_kind``: hinge | least_squares),
    ``feature_matching``. Bottleneck (unweighted in the codec's output): ``commitment``,
    ``codebook``, ``kl``, ``entropy``, ``rate`` (the boundary-rate loss of a ``segment``
    bottleneck, :func:`~audiolatent.quantize.segment.rate_loss`).

    ``balancer``: combine the losses that depend on the reconstruction (mel, stft, time_l1,
    adversarial, feature_matching) with EnCodec's gradient balancer
    (:class:`~audiolatent.train.balancer.LossCombiner`) instead of a weighted sum; the
    bottleneck losses are always added with their weights.
    """

    mel: float = 15.0
    stft: float = 0.0
    time_l1: float = 0.0
    adversarial: float = 1.0
    feature_matching: float = 2.0
    commitment: float = 0.25
    codebook: float = 1.0
    kl: float = 0.0
    entropy: float = 0.0
    rate: float = 0.0
    balancer: bool = False
    adversarial_kind: str = "hinge"
    mel_options: dict = field(default_factory=dict)
    stft_options: dict = field(default_factory=dict)


@dataclass
class SemanticConfig:
    """Semantic structure in the latent: losses against a frozen teacher, in training only
    (:mod:`audiolatent.train.semantic`). Every weight defaults to 0 (off); the codec itself, and
    so its streaming, never sees the teacher.

    Attributes:
        teacher: the teacher of ``distill`` and ``repa``, as ``audiolatent fit kmeans --teacher``
            takes it (``phone:DIR``, ``mel-16k``, ``hubert[:LAYER]``, ``wavlm[:LAYER]``) or a spec
            mapping (:func:`audiolatent.tokenizers.units.build_teacher`).
        phone_teacher: folder of a phone teacher (``audiolatent fit phone-teacher``) whose most likely
            phone per frame is the target of ``phone``; default: the teacher's folder when
            ``teacher`` is ``phone:DIR``.
        distill: weight of the distillation into the first quantiser level (SpeechTokenizer; the
            semantic quantiser of a ``split-rvq``): a 1x1 projection of that level's quantised
            output (straight-through) regresses the teacher's standardised features;
            ``distill_kind``: ``cosine`` (1 - cosine per frame) or ``l1``.
        phone: weight of the cross-entropy of a linear phone classifier on the first level
            (PAST / CosyVoice S3), against the phone teacher's argmax.
        ar: weight of the autoregressive prediction loss (ALMTokenizer): a small causal conv net
            predicts ``z_q`` at frame ``t + 1`` from frames ``<= t``; the loss is the fraction of
            the target's variance it leaves unexplained, back-propagated into the encoder.
            ``ar_options``: ``dim`` (hidden channels), ``layers``, ``kernel_size``.
        repa: weight of the alignment of the whole latent ``z_q`` to the teacher (REPA-style
            semantic anchoring, meant for ``gaussian`` / bounded continuous bottlenecks): a
            two-layer MLP of ``z_q`` against the standardised teacher features, 1 - cosine.
    """

    teacher: str | dict | None = None
    phone_teacher: str | None = None
    distill: float = 0.0
    distill_kind: str = "cosine"
    phone: float = 0.0
    ar: float = 0.0
    ar_options: dict = field(default_factory=dict)
    repa: float = 0.0

    @property
    def active(self) -> bool:
        """Whether any semantic loss has a positive weight."""
        return any(getattr(self, name) > 0 for name in SEMANTIC_LOSSES)

    def phone_folder(self) -> str | None:
        """The phone teacher of ``phone``: ``phone_teacher``, else the folder of a ``phone`` teacher, else None."""
        if self.phone_teacher:
            return self.phone_teacher
        if not self.teacher:
            return None
        from audiolatent.tokenizers.units import parse_teacher

        spec = parse_teacher(self.teacher) if isinstance(self.teacher, str) else self.teacher
        return spec.get("path") if isinstance(spec, dict) and spec.get("kind") == "phone" else None

    def validate(self) -> None:
        for name in SEMANTIC_LOSSES:
            if not isinstance(getattr(self, name), int | float) or getattr(self, name) < 0:
                raise ConfigError(f"semantic.{name}: a weight >= 0 (0 disables it), got {getattr(self, name)!r}")
        if self.distill_kind not in ("cosine", "l1"):
            raise ConfigError(f"semantic.distill_kind must be cosine or l1, got {self.distill_kind!r}")
        if (self.distill > 0 or self.repa > 0) and not self.teacher:
            raise ConfigError("semantic.distill and semantic.repa need semantic.teacher (e.g. phone:DIR, mel-16k, hubert:9)")
        if self.phone > 0 and not self.phone_folder():
            raise ConfigError("semantic.phone needs a phone teacher: semantic.phone_teacher DIR (from `audiolatent fit "
                              "phone-teacher`), or semantic.teacher phone:DIR")
        unknown = sorted(set(self.ar_options) - {"dim", "layers", "kernel_size"})
        if unknown:
            raise ConfigError(f"semantic.ar_options: unknown option(s) {unknown}; known: dim, layers, kernel_size")


@dataclass
class TrainConfig:
    """A whole training run (see the module docstring for the YAML layout).

    Attributes:
        model: the codec config (:class:`~audiolatent.tokenizers.codec.CodecConfig` as a dict).
        discriminators: :class:`~audiolatent.train.discriminators.Discriminators` configs;
            empty = no GAN (reconstruction losses only).
        adversarial_start_step: GAN losses and discriminator updates start at this step.
        steps: optimiser steps in total (``--steps`` overrides).
        log_every / eval_every / checkpoint_every: in steps; 0 disables eval / periodic
            checkpoints (a final checkpoint is always written).
        keep_last: checkpoints kept in ``OUT/checkpoints`` (older ones are deleted).
        n_samples: held-out reconstructions saved as audio at each evaluation.
        seed: seeds model init, data order and crops, and every RNG.
        precision: ``fp32``, or ``bf16`` autocast (CUDA only; on CPU it falls back to fp32).
        max_nonfinite: abort after this many consecutive steps with a non-finite loss or
            gradient (each one is skipped: no weight, optimiser or codebook update).
        semantic: the semantic training losses (:class:`SemanticConfig`; all off by default).
    """

    model: dict = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)
    discriminators: list[dict] = field(default_factory=list)
    adversarial_start_step: int = 0
    steps: int = 10000
    log_every: int = 50
    eval_every: int = 1000
    checkpoint_every: int = 1000
    keep_last: int = 3
    n_samples: int = 2
    seed: int = 0
    precision: str = "fp32"
    max_nonfinite: int = 10
    description: str = ""

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.schedule.kind not in SCHEDULES:
            raise ConfigError(f"schedule.kind must be one of {SCHEDULES}, got {self.schedule.kind!r}")
        for name in ("steps", "log_every", "keep_last", "max_nonfinite"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "checkpoint_every"):  # 0 disables; a negative value is a typo, not "off"
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0 disables it), got {getattr(self, name)}")
        if self.data.batch_size < 1 or self.data.crop_seconds <= 0:
            raise ConfigError("data.batch_size must be >= 1 and data.crop_seconds > 0")
        for name in ("speed", "gain_db"):
            try:
                augmentation_range(f"data.{name}", getattr(self.data, name), positive=name == "speed")
            except DataError as exc:
                raise ConfigError(str(exc)) from None
        try:
            self.data.augmentation()
        except DataError as exc:  # its messages start with the field's name
            raise ConfigError(f"data.{exc}") from None
        if not isinstance(self.model, dict) or not self.model:
            raise ConfigError("model: give the codec config (a mapping, or the path of a codec YAML file)")
        if not isinstance(self.discriminators, list) or not all(isinstance(d, dict) for d in self.discriminators):
            raise ConfigError("discriminators: expected a list of mappings such as {kind: mpd}")
        self.semantic.validate()


def _resolve_model(model: object, base: Path | None) -> dict:
    if isinstance(model, dict):
        return model
    if not isinstance(model, str | os.PathLike):
        raise ConfigError(f"model: expected a mapping or a YAML path, got {type(model).__name__}")
    candidates = ([base / model] if base is not None else []) + [Path(model)]
    for path in candidates:
        if path.is_file():
            data = load_yaml(path)
            data.pop("audiolatent_version", None)
            return data
    raise ConfigError(f"model: codec config {model!r} not found (looked in {[str(c) for c in candidates]})")


def _with_defaults(data: dict) -> dict:
    """``data`` with every missing key filled from the defaults, so any field can be overridden."""
    from audiolatent.core.config import to_dict
    from audiolatent.tokenizers.codec import CodecConfig

    merged = to_dict(TrainConfig(model={"placeholder": True}))
    for key, value in data.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict) and key != "model":
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    if isinstance(merged["model"], dict):
        merged["model"] = {**to_dict(CodecConfig()), **merged["model"]}
    return merged


def load_train_config(source: str | os.PathLike | dict, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a training config from YAML (or a dict), resolve ``model``, apply overrides, validate.

    ``source`` may also be the name of a packaged recipe (``"speech-rvq-16k"``: see
    ``packaged_configs("train")``).

    Raises:
        ConfigError: unknown keys, wrong types, a missing codec file or a bad override.
    """
    base = None
    if isinstance(source, dict):
        data = dict(source)
    else:
        source = resolve_config(source, "train")  # a path, or a packaged recipe name
        data = load_yaml(source)
        base = Path(source).resolve().parent
    data["model"] = _resolve_model(data.get("model", {}), base)
    data = _with_defaults(data)
    if overrides:
        data = apply_overrides(data, list(overrides))
    where = "train config" if isinstance(source, dict) else str(source)
    return from_dict(TrainConfig, data, where=where)
