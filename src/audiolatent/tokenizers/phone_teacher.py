"""A phone-posterior teacher trained here, on phone alignments, with no pretrained weights.

HuBERT and WavLM need their hub weights. This teacher can be made on any machine from a manifest
whose rows carry ``phones`` (``speech_aligned`` does): ``audiolatent fit phone-teacher --data
MANIFEST --out DIR``, or :func:`fit_phone_teacher`.

* **Input**: the mel-16k analysis (80 log-mels, 100 frames/s, frame ``t`` centred at ``t / 100`` s),
  standardised per bin with the mean and std of the training frames.
* **Network**: a non-causal dilated convolution stack. ``Conv1d(80 -> width, 5)``, then residual
  blocks ``x + Conv1d(GELU(x), 3, dilation d)`` for ``d`` in ``dilations``, then
  ``Conv1d(width -> n_phones, 1)``. With the defaults (width 192, dilations 1, 2, 4, 8) it sees
  +-17 frames, 170 ms either side. A teacher used in training only need not be causal.
* **Causal** (``causal=True``, ``fit phone-teacher --causal``): for a teacher that runs *inside* a
  streaming codec (the ``dual`` encoder, X-Codec style). Frame ``t``'s analysis window ends at the
  end of its hop, sample ``(t + 1) * 160`` (:class:`CausalLogMel`: the same 1024-sample Hann
  window and mel filters, left-padded instead of centred), and every convolution is left-padded
  (:class:`~audiolatent.nn.conv.StreamingConv1d`), so frame ``t`` reads no sample after its hop and
  the teacher streams exactly. It sees 34 frames (340 ms) of the past and none of the future.
* **Target**: the phone whose interval covers the frame centre (labels past the alignment are
  ignored); for a causal teacher, the centre of the frame's own hop, ``(t + 0.5) / 100`` s.
  Cross-entropy, AdamW, random 2 s windows of the training files.
* **Features** (:meth:`PhoneTeacher.features`): phone posteriors ``[B, n_phones, T]`` (softmax,
  default), ``logits``, or the ``hidden`` width-d activations before the output layer.

:func:`fit_phone_teacher` reports frame accuracy on the manifest's test split, beside the
majority-class baseline. The folder written by :meth:`PhoneTeacher.save` holds
``model.safetensors`` and ``teacher.json``: phone inventory, architecture, standardisation,
report and data.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from torch import nn

from audiolatent.core.atomic import atomic_dir
from audiolatent.core.errors import CheckpointError, ConfigError, StreamingError
from audiolatent.core.streaming import StreamingModule
from audiolatent.data.manifest import ManifestEntry, frame_phone_labels
from audiolatent.nn.conv import StreamingConv1d
from audiolatent.tokenizers.mel import mel_16k_config
from audiolatent.tokenizers.teachers import Teacher
from audiolatent.tokenizers.vocoder import StreamingLogMel, analysis_of

__all__ = ["PhoneTeacher", "CausalLogMel", "fit_phone_teacher", "load_phone_teacher", "centred_phone_labels",
           "TEACHER_FILE"]

TEACHER_FILE = "teacher.json"
OUTPUTS = ("posteriors", "logits", "hidden")


def centred_phone_labels(phones: list[tuple[str, float, float]], n_frames: int, frame_rate: float) -> list[str | None]:
    """The phone covering ``t / frame_rate`` (a centred frame) for each of ``n_frames`` frames."""
    half = 0.5 / frame_rate  # frame_phone_labels reads (t + 0.5) / rate: shift the alignment by half a frame
    return frame_phone_labels([(p, s + half, e + half) for p, s, e in phones], n_frames, frame_rate)


class CausalLogMel(StreamingModule):
    """The mel-16k log-mel with causal framing: ``[B, 1, N]`` (N a multiple of 160) -> ``[B, 80, N / 160]``.

    Frame ``t`` is the analysis of samples ``[(t + 1) * hop - n_fft, (t + 1) * hop)``, zeros before
    the signal: the centred analysis of :class:`StreamingLogMel` moved to end at its hop. Streams
    exactly (the state is the last ``n_fft - hop`` samples)."""

    causal = True
    lookahead = 0

    def __init__(self) -> None:
        super().__init__()
        self.analysis = StreamingLogMel(**analysis_of(mel_16k_config()))
        self.hop_length, self.dimension = self.analysis.hop_length, self.analysis.dimension
        self.context = self.analysis.mel_config.n_fft - self.hop_length

    def _init_streaming_state(self, batch_size: int) -> list[torch.Tensor]:
        return [torch.zeros(batch_size, self.context, device=self.analysis.window.device)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"causal log-mel: expected mono audio [B, 1, N], got shape {tuple(x.shape)}")
        if x.shape[-1] % self.hop_length:
            raise StreamingError(f"causal log-mel: input must be a multiple of {self.hop_length} samples, got {x.shape[-1]}")
        if self.is_streaming:
            state = self._streaming_state
            buffer = torch.cat([state[0].to(x.dtype), x[:, 0]], dim=-1)
            state[0] = buffer[:, buffer.shape[-1] - self.context :]
        else:
            buffer = torch.nn.functional.pad(x[:, 0], (self.context, 0))
        return self.analysis._frames(buffer, x.shape[-1] // self.hop_length)


class PhoneTeacher(Teacher):
    """Phone posteriors from the mel-16k analysis (see the module docstring).

    Args:
        phones: the phone inventory (output classes, in order).
        width: channels of the convolution stack.
        dilations: one residual block per dilation.
        mean, std: per-mel-bin standardisation ``[80]`` (defaults 0 and 1).
        output: ``posteriors``, ``logits`` or ``hidden``.
        causal: causal framing and convolutions (module docstring); the teacher then streams
            (inside a streaming parent: chunks of whole hops, frames out as they complete).
    """

    def __init__(self, phones: list[str], width: int = 192, dilations: tuple[int, ...] = (1, 2, 4, 8),
                 mean: torch.Tensor | None = None, std: torch.Tensor | None = None, output: str = "posteriors",
                 causal: bool = False) -> None:
        super().__init__()
        if len(phones) < 2 or len(set(phones)) != len(phones):
            raise ConfigError(f"phone teacher: need at least 2 distinct phones, got {phones}")
        if output not in OUTPUTS:
            raise ConfigError(f"phone teacher: output must be one of {OUTPUTS}, got {output!r}")
        self.phones, self.width, self.dilations, self.output = list(phones), width, tuple(dilations), output
        self.causal = bool(causal)
        self.frontend = CausalLogMel() if self.causal else StreamingLogMel(**analysis_of(mel_16k_config()))
        n_mels = self.frontend.dimension
        self.register_buffer("mean", torch.zeros(n_mels) if mean is None else mean.float().clone())
        self.register_buffer("std", torch.ones(n_mels) if std is None else std.float().clamp_min(1e-3).clone())
        if self.causal:
            self.input = StreamingConv1d(n_mels, width, 5)
            self.blocks = nn.ModuleList(StreamingConv1d(width, width, 3, dilation=d) for d in self.dilations)
        else:
            self.input = nn.Conv1d(n_mels, width, 5, padding=2)
            self.blocks = nn.ModuleList(nn.Conv1d(width, width, 3, padding=d, dilation=d) for d in self.dilations)
        self.head = nn.Conv1d(width, len(phones), 1)
        self.sample_rate, self.frame_rate = 16000, 100.0
        self.dim = width if output == "hidden" else len(phones)
        self.name = "phone-teacher"

    def frame_centres(self, n_frames: int) -> torch.Tensor:
        offset = 0.5 if self.causal else 0.0  # a causal frame describes its own hop; mel-16k frames are centred
        return (torch.arange(n_frames, dtype=torch.float64) + offset) / self.frame_rate

    def frame_labels(self, phones: list[tuple[str, float, float]], n_frames: int) -> list[str | None]:
        """The training target of each frame: the phone at its centre time (:meth:`frame_centres`)."""
        if self.causal:
            return frame_phone_labels(phones, n_frames, self.frame_rate)  # reads (t + 0.5) / rate
        return centred_phone_labels(phones, n_frames, self.frame_rate)

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, 1, N]`` at 16 kHz -> standardised log-mel ``[B, 80, ceil(N / 160)]``."""
        pad = -audio.shape[-1] % self.frontend.hop_length
        x = torch.nn.functional.pad(audio, (0, pad)) if pad else audio
        return self.standardise(self.frontend(x))

    def standardise(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Raw log-mel ``[..., 80, T]`` -> per-bin zero mean, unit std (the training frames' statistics)."""
        return (log_mel - self.mean[:, None]) / self.std[:, None]

    def hidden(self, log_mel: torch.Tensor) -> torch.Tensor:
        h = self.input(log_mel)
        for block in self.blocks:
            h = h + block(nn.functional.gelu(h))
        return nn.functional.gelu(h)

    def logits(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Standardised log-mel ``[B, 80, T]`` -> phone logits ``[B, n_phones, T]``."""
        return self.head(self.hidden(log_mel))

    def _features(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.log_mel(audio)
        if self.output == "hidden":
            return self.hidden(x)
        logits = self.logits(x)
        return logits if self.output == "logits" else logits.softmax(dim=1)

    def spec(self) -> dict:
        """The :func:`~audiolatent.tokenizers.units.build_teacher` spec of this architecture with its
        weights held by the enclosing checkpoint (``weights: checkpoint``): what a codec that carries
        this teacher writes in its config, so the checkpoint loads without the teacher's folder."""
        return {"kind": "phone", "weights": "checkpoint", "phones": list(self.phones), "width": self.width,
                "dilations": list(self.dilations), "causal": self.causal, "output": self.output}

    def save(self, directory: str | os.PathLike, report: dict | None = None) -> Path:
        """Write ``model.safetensors`` + ``teacher.json`` atomically (an existing folder is not replaced)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        if directory.exists():
            raise CheckpointError(f"{directory}: already exists; choose a new folder (a teacher is never overwritten)")
        meta = {"kind": "phone-teacher", "phones": self.phones, "width": self.width, "dilations": list(self.dilations),
                "analysis": "mel-16k", "causal": self.causal, "frame_rate": self.frame_rate, "report": report or {}}
        with atomic_dir(directory) as tmp:
            state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
            save_file(state, str(Path(tmp) / "model.safetensors"))
            (Path(tmp) / TEACHER_FILE).write_text(json.dumps(meta, indent=2))
        return directory


def load_phone_teacher(directory: str | os.PathLike, output: str = "posteriors") -> PhoneTeacher:
    """A :class:`PhoneTeacher` from a folder written by :meth:`PhoneTeacher.save`."""
    from safetensors.torch import load_file

    directory = Path(directory)
    meta_path = directory / TEACHER_FILE
    if not meta_path.is_file():
        raise CheckpointError(f"{directory}: not a phone teacher (no {TEACHER_FILE}); make one with "
                              "`audiolatent fit phone-teacher`")
    try:
        meta = json.loads(meta_path.read_text())
        state = load_file(str(directory / "model.safetensors"))
        teacher = PhoneTeacher(meta["phones"], meta["width"], tuple(meta["dilations"]), output=output,
                               causal=bool(meta.get("causal", False)))
        teacher.load_state_dict(state)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{directory}: corrupt phone teacher ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    teacher.report = meta.get("report", {})
    return teacher.eval()


def _labelled(entries: list[ManifestEntry], teacher: PhoneTeacher, index: dict[str, int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(raw log-mel ``[80, T]``, label ids ``[T]``) per file: -100 where no phone covers the frame,
    ``len(index)`` for a phone outside the inventory (a class no teacher predicts: an error)."""
    from audiolatent.core.audio import load_audio

    out = []
    frontend = teacher.frontend
    for entry in entries:
        audio, _ = load_audio(entry.path, sample_rate=16000, mono=True)
        pad = -audio.shape[-1] % frontend.hop_length
        with torch.no_grad():
            mel = frontend(torch.nn.functional.pad(audio.reshape(1, 1, -1), (0, pad)))[0]
        labels = teacher.frame_labels(entry.phones, mel.shape[-1])
        ids = torch.tensor([-100 if p is None else index.get(p, len(index)) for p in labels], dtype=torch.long)
        out.append((mel, ids))
    return out


@torch.no_grad()
def _accuracy(teacher: PhoneTeacher, items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, int]:
    correct = total = 0
    for mel, ids in items:
        predicted = teacher.logits(teacher.standardise(mel)[None])[0].argmax(0)
        keep = ids >= 0
        correct += int((predicted[keep] == ids[keep]).sum())
        total += int(keep.sum())
    return (correct / total if total else math.nan), total


def fit_phone_teacher(train: list[ManifestEntry], test: list[ManifestEntry], steps: int = 2000, width: int = 192,
                      dilations: tuple[int, ...] = (1, 2, 4, 8), batch: int = 16, window_frames: int = 200,
                      lr: float = 2e-3, seed: int = 0, progress: bool = False,
                      causal: bool = False) -> tuple[PhoneTeacher, dict]:
    """Train a :class:`PhoneTeacher` on the rows of ``train`` with phones; report on ``test``.

    Returns the teacher (eval mode) and ``{"test_frame_accuracy", "majority_baseline",
    "train_frame_accuracy", "n_phones", "train_frames", "test_frames", "steps", ...}``.
    """
    train = [e for e in train if e.phones]
    test = [e for e in test if e.phones]
    if not train:
        raise ConfigError("phone teacher: no training row carries phone alignments (`phones` in the manifest)")
    torch.manual_seed(seed)
    phones = sorted({p for e in train for p, _, _ in e.phones})
    index = {p: i for i, p in enumerate(phones)}
    teacher = PhoneTeacher(phones, width, dilations, causal=causal)
    train_items = _labelled(train, teacher, index)
    test_items = _labelled(test, teacher, index)
    frames = torch.cat([mel for mel, _ in train_items], dim=-1)
    teacher.mean.copy_(frames.mean(-1))
    teacher.std.copy_(frames.std(-1).clamp_min(1e-3))
    optimizer = torch.optim.AdamW(teacher.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.05)
    lengths = torch.tensor([mel.shape[-1] for mel, _ in train_items], dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="phone teacher", unit="step")
    teacher.train()
    for _ in range(steps):
        picks = torch.multinomial(lengths, batch, replacement=True, generator=generator)
        xs, ys = [], []
        for i in picks.tolist():
            mel, ids = train_items[i]
            start = int(torch.randint(0, max(1, mel.shape[-1] - window_frames + 1), (1,), generator=generator))
            x, y = mel[:, start : start + window_frames], ids[start : start + window_frames]
            short = window_frames - x.shape[-1]
            xs.append(torch.nn.functional.pad(x, (0, short), value=math.log(1e-5)))
            ys.append(torch.nn.functional.pad(y, (0, short), value=-100))
        loss = torch.nn.functional.cross_entropy(teacher.logits(teacher.standardise(torch.stack(xs))), torch.stack(ys),
                                                 ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss):.3f}")
    if bar is not None:
        bar.close()
    teacher.eval()
    test_accuracy, test_frames = _accuracy(teacher, test_items)
    train_accuracy, train_frames = _accuracy(teacher, train_items)
    counts = torch.bincount(torch.cat([ids[ids >= 0] for _, ids in train_items]), minlength=len(phones))
    majority = int(counts.argmax())
    test_ids = torch.cat([ids[ids >= 0] for _, ids in test_items]) if test_items else torch.zeros(0, dtype=torch.long)
    report = {
        "test_frame_accuracy": test_accuracy,
        "majority_baseline": float((test_ids == majority).float().mean()) if test_ids.numel() else math.nan,
        "train_frame_accuracy": train_accuracy,
        "n_phones": len(phones), "train_files": len(train), "test_files": len(test),
        "train_frames": train_frames, "test_frames": test_frames, "steps": steps, "width": width,
        "dilations": list(dilations), "seed": seed, "causal": causal,
    }
    return teacher, report
