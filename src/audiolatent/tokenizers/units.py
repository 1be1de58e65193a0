"""k-means units over a teacher's features, as a codec kind whose decoder is trained here.

A unit tokenizer is a :class:`~audiolatent.tokenizers.codec.NeuralCodec` with three parts:

* encoder kind ``teacher`` (:class:`TeacherEncoder`): a frozen teacher's features, resampled in
  time to the codec's frames (:mod:`audiolatent.tokenizers.teachers`);
* bottleneck kind ``kmeans`` (:class:`~audiolatent.quantize.kmeans.KMeansUnits`): the nearest of
  k fixed centroids;
* any trained decoder (``vocos``), through the project's trainer.

The centroids come first, from :func:`fit_kmeans` or ``audiolatent fit kmeans --teacher SPEC --k
500 --data MANIFEST --out units.safetensors``. They are fitted on the train split's frames (at
most ``max_frames`` of them, drawn at random), by Lloyd's algorithm from k-means++ seeds.

Teacher specs (:func:`build_teacher`, and the ``--teacher`` strings of the CLI):

* ``{"kind": "tokenizer", "name": "mel-16k", "stream": "mel", "centred": true}``: any continuous
  tokenizer's latent (string ``mel-16k``, or ``tokenizer:NAME``);
* ``{"kind": "phone", "path": DIR, "output": "hidden"}``: a teacher from ``audiolatent fit
  phone-teacher`` (string ``phone:DIR``); ``{"kind": "phone", "weights": "checkpoint", "phones":
  [...], "width": 192, "dilations": [1, 2, 4, 8], "causal": true, "output": "hidden"}`` (what
  :meth:`~audiolatent.tokenizers.phone_teacher.PhoneTeacher.spec` writes) is its architecture alone,
  for a checkpoint that holds its weights;
* ``{"kind": "hubert" | "wavlm", "weights": ID, "layer": 9}``: a ``transformers`` model (string
  ``hubert``, ``hubert:6`` or ``wavlm:6``).

The teacher's weights are copied into the codec's checkpoint. A phone teacher's ``path`` is
replaced there by its architecture (``weights: checkpoint``, above), so the checkpoint loads
without the teacher's folder; a hub teacher is rebuilt from its id. These teachers see the whole
signal (attention, or centred windows resampled in time), so unit tokenizers do not stream:
``lookahead`` is None and ``streaming()`` says so.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.core.streaming import StreamingModule
from audiolatent.data.manifest import ManifestEntry
from audiolatent.quantize.functional import kmeans
from audiolatent.quantize.kmeans import CENTROIDS_KEY
from audiolatent.tokenizers.teachers import Teacher

__all__ = ["TeacherEncoder", "build_teacher", "parse_teacher", "fit_kmeans", "save_centroids"]


def parse_teacher(text: str) -> dict:
    """A ``--teacher`` string -> a teacher spec (module docstring)."""
    head, _, rest = text.partition(":")
    if head in ("hubert", "wavlm"):
        spec: dict = {"kind": head}
        if rest:
            if not rest.isdigit():
                raise ConfigError(f"--teacher {text}: expected {head}:LAYER with an integer layer")
            spec["layer"] = int(rest)
        return spec
    if head == "phone":
        if not rest:
            raise ConfigError("--teacher phone:DIR needs the folder written by `audiolatent fit phone-teacher`")
        return {"kind": "phone", "path": rest, "output": "hidden"}
    if head == "tokenizer":
        return {"kind": "tokenizer", "name": rest}
    return {"kind": "tokenizer", "name": text}


def build_teacher(spec: dict) -> Teacher:
    """A :class:`~audiolatent.tokenizers.teachers.Teacher` from a spec (module docstring)."""
    if not isinstance(spec, dict) or "kind" not in spec:
        raise ConfigError(f"teacher: expected a mapping with a 'kind', got {spec!r}")
    kind, args = spec["kind"], {k: v for k, v in spec.items() if k != "kind"}
    try:
        if kind == "tokenizer":
            from audiolatent.core.registry import load_tokenizer
            from audiolatent.tokenizers.teachers import TokenizerTeacher

            name = args.pop("name")
            centred = args.pop("centred", name in ("mel-16k", "mel-24k"))  # the centred analyses
            return TokenizerTeacher(load_tokenizer(name), args.pop("stream", 0), centred=centred, **args)
        if kind == "phone":
            from audiolatent.tokenizers.phone_teacher import PhoneTeacher, load_phone_teacher

            if "path" in args:
                return load_phone_teacher(args.pop("path"), **args)
            if args.pop("weights", None) != "checkpoint":
                raise ConfigError(f"teacher {spec!r}: a phone teacher needs `path` (the folder written by "
                                  "`audiolatent fit phone-teacher`)")
            return PhoneTeacher(args.pop("phones"), args.pop("width"), tuple(args.pop("dilations")), **args)
        if kind in ("hubert", "wavlm"):
            from audiolatent.tokenizers.teachers import hubert_teacher, wavlm_teacher

            return (hubert_teacher if kind == "hubert" else wavlm_teacher)(**args)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"teacher {spec!r}: {exc}") from None
    raise ConfigError(f"teacher: unknown kind {kind!r}; known: tokenizer, phone, hubert, wavlm")


class TeacherEncoder(StreamingModule):
    """Codec encoder kind ``teacher``: ``[B, 1, N]`` -> teacher features ``[B, D, N / hop_length]``.

    Args:
        channels: must be 1.
        sample_rate: of the codec's audio (the teacher resamples to its own).
        hop_length: samples per codec frame.
        teacher: a teacher spec (:func:`build_teacher`).

    Attributes: ``dimension`` (the teacher's feature size), ``hop_length``, ``causal`` (False),
    ``lookahead`` (None: whole signal).
    """

    causal = False
    lookahead = None

    def __init__(self, channels: int = 1, sample_rate: int = 16000, hop_length: int = 320, teacher: dict | None = None) -> None:
        super().__init__()
        if channels != 1:
            raise ConfigError(f"teacher encoder: mono only, got channels={channels}")
        if teacher is None:
            raise ConfigError("teacher encoder: give a `teacher` spec, e.g. {kind: tokenizer, name: mel-16k}")
        self.teacher = build_teacher(dict(teacher)).requires_grad_(False)
        self.channels, self.sample_rate = channels, sample_rate
        self.hop_length = self.stride = hop_length
        self.dimension = self.teacher.dim

    def _init_streaming_state(self, batch_size: int):
        raise StreamingError(f"k-means units of {self.teacher.name} do not stream: the teacher sees the whole signal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_frames = math.ceil(x.shape[-1] / self.hop_length)
        return self.teacher.features_at(x, self.sample_rate, self.sample_rate / self.hop_length, n_frames)


def fit_kmeans(teacher: Teacher, entries: list[ManifestEntry], k: int, frame_rate: float, iters: int = 30,
               max_frames: int = 200_000, seed: int = 0, progress: bool = False) -> tuple[torch.Tensor, dict]:
    """Centroids ``[k, D]`` of ``teacher``'s features at ``frame_rate`` over ``entries``, and a report.

    Report: ``frames`` (pooled), ``used_frames`` (after subsampling), ``inertia`` (mean squared
    distance of a frame to its centroid), ``usage`` (share of units given a frame) and ``k``.
    """
    from audiolatent.core.audio import load_audio

    if not entries:
        raise ConfigError("fit kmeans: no audio to fit on (the train split is empty?)")
    rows = entries
    if progress:
        from tqdm import tqdm

        rows = tqdm(entries, desc=f"{teacher.name} features", unit="file")
    parts = []
    for entry in rows:
        audio, rate = load_audio(entry.path, mono=True)
        n = math.ceil(audio.shape[-1] / rate * frame_rate)
        parts.append(teacher.features_at(audio.reshape(1, 1, -1), rate, frame_rate, max(n, 1))[0].t())
    frames = torch.cat(parts)
    if frames.shape[0] < k:
        raise ConfigError(f"fit kmeans: {frames.shape[0]} frames for k={k} units; give more audio or a smaller --k")
    generator = torch.Generator().manual_seed(seed)
    used = frames if frames.shape[0] <= max_frames else frames[torch.randperm(frames.shape[0], generator=generator)[:max_frames]]
    torch.manual_seed(seed)
    centroids, counts = kmeans(used.double(), k, iters)
    distance = torch.cdist(used.double(), centroids).min(1).values.pow(2)
    report = {"k": k, "frames": int(frames.shape[0]), "used_frames": int(used.shape[0]), "inertia": float(distance.mean()),
              "usage": float((counts > 0).double().mean()), "frame_rate": frame_rate, "teacher": teacher.name,
              "iters": iters, "seed": seed}
    return centroids.float(), report


def save_centroids(centroids: torch.Tensor, path: str | os.PathLike, report: dict) -> Path:
    """Write ``centroids`` (and the report as metadata) to a new safetensors file."""
    from safetensors.torch import save_file

    from audiolatent.core.atomic import atomic_path
    from audiolatent.core.errors import OutputError

    target = Path(path)
    if target.exists():
        raise OutputError(f"{target} exists; choose a new file (centroids are never overwritten)")
    with atomic_path(target) as tmp:
        save_file({CENTROIDS_KEY: centroids.contiguous()}, str(tmp), metadata={"report": json.dumps(report)})
    return target
