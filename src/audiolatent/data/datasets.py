"""Audio datasets from a manifest, a folder or a list of entries, with seeded random crops.

An :class:`AudioDataset` item is a dict::

    {"audio": [C, N] float32, "length": valid samples (int), "offset": crop start (samples),
     "sample_rate": Hz, "band_limit_hz": float, "entry": ManifestEntry}

With ``crop_seconds=None`` an item is the whole file (``N == length``). With a crop, every
item has exactly ``N = round(crop_seconds * sample_rate)`` samples: a random window of the file,
or the whole file followed by zeros when it is shorter (``length < N`` then). The window is a
function of ``(seed, epoch, index)`` only, so it does not depend on DataLoader workers or on
the order items are asked for; :meth:`AudioDataset.set_epoch` draws new windows. ``offset``
says where the window starts in the (resampled) file, so time-aligned labels such as
``entry.phones`` can be cropped the same way.

Augmentation (training crops only, all off by default): ``speed=(lo, hi)`` plays each crop
at a speed factor ``f`` drawn uniformly from ``[lo, hi]`` (Kaldi-style speed perturbation: a
window of ``round(N * f)`` samples is resampled with soxr to ``N``, which shifts pitch and
formants by ``f`` and shortens or stretches time by ``1 / f``); ``gain_db=(lo, hi)`` scales it
by ``10 ** (g / 20)`` with ``g`` drawn uniformly. The factors are functions of
``(seed, epoch, index)`` as the window is, so a resumed run sees the same crops. ``offset``
stays in file samples; a sped-up item covers ``round(N * f)`` of them, so time-aligned labels
map to item time by dividing by ``f``. ``augment=CropAugmentation(...)`` adds pitch shift,
reverberation, noise, equalisation and band limiting (:mod:`audiolatent.data.augment`), drawn
from the same ``(seed, epoch, index)``; the order is speed, those five, gain.

Band limit. ``band_limit_hz`` is the highest frequency the item can hold: the manifest row's
``band_limit_hz`` (e.g. 4000 for a telephone recording upsampled to 16 kHz), times the speed
factor and the pitch-shift ratio, which move it; ``inf`` when the row has none. A band limit
drawn by ``augment`` does not lower it: that is a property of the input the codec must
reproduce, while the row's limit says what the recording lost (training losses ignore the
frequencies above it, see :mod:`audiolatent.train.losses`).

Constructing a dataset reads the manifest (or the soundfile headers of a folder) and never
decodes audio. Example::

    ds = AudioDataset(builtin_corpus("speech_real"), split="train", sample_rate=24000,
                      crop_seconds=1.0, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, collate_fn=collate_audio)
    for epoch in range(n_epochs):
        ds.set_epoch(epoch)
        for batch in loader:  # batch["audio"]: [8, 1, 24000], batch["lengths"]: [8]
            ...
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
import torch
from torch.utils.data import Dataset

from audiolatent.core.audio import audio_info, load_audio
from audiolatent.core.errors import AudioError
from audiolatent.data.augment import CropAugmentation, augmentation_range
from audiolatent.data.manifest import DataError, ManifestEntry, read_manifest, split_of

__all__ = ["AUDIO_EXTENSIONS", "AudioDataset", "audio_files", "augmentation_range", "collate_audio", "from_path",
           "scan_folder", "entries_from_path"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
"""File extensions (case-insensitive) a folder dataset picks up."""

Source = str | os.PathLike | Sequence[ManifestEntry]


def scan_folder(folder: str | os.PathLike) -> list[ManifestEntry]:
    """Entries for every audio file under ``folder`` (recursive), sorted by relative path.

    Files whose name starts with ``.`` are skipped (temporary files of atomic writers). Only
    headers are read. ``id`` is the relative path without extension, ``split`` is
    :func:`split_of` of the file stem.
    """
    root = Path(folder).resolve()
    if not root.is_dir():
        raise DataError(f"{folder}: not a folder")
    files = audio_files(root)
    if not files:
        raise DataError(f"{folder}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder or below")
    return [_entry_of_file(p, p.relative_to(root).with_suffix("").as_posix()) for p in files]


def audio_files(root: Path) -> list[Path]:
    """Audio files (:data:`AUDIO_EXTENSIONS`) under the folder ``root``, recursively, sorted by
    relative path; names starting with ``.`` (temporary files of atomic writers) are left out."""
    files = sorted(
        (p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    return [p for p in files if p.is_file()]


def entries_from_path(path: str | os.PathLike) -> list[ManifestEntry]:
    """Entries of a manifest (``.jsonl``), a folder (see :func:`scan_folder`) or one audio file."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{path}: no such manifest, folder or audio file")
    if p.is_dir():
        return scan_folder(p)
    if p.suffix.lower() == ".jsonl":
        return read_manifest(p)
    try:
        return [_entry_of_file(p.resolve(), p.stem)]
    except AudioError:
        raise DataError(f"{path}: not a manifest (.jsonl), a folder or a readable audio file") from None


class AudioDataset(Dataset):
    """Audio files as ``[C, N]`` tensors, optionally resampled and randomly cropped.

    Args:
        source: a manifest path (``.jsonl``), a folder (searched recursively for
            wav/flac/ogg/mp3), a single audio file, or a list of :class:`ManifestEntry`.
        split: keep only entries of this split (``"train"``, ``"test"``); None keeps all.
        sample_rate: resample every file to this rate (Hz); None keeps each file's rate.
        mono: average channels to one (output ``C == 1``).
        crop_seconds: None for whole files; otherwise every item is a random window of this
            length, zero-padded when the file is shorter (see the module docstring).
        min_seconds: drop entries shorter than this (by the manifest/header duration).
        seed: non-negative int; with the epoch and the index it fixes every crop.
        max_files: keep only the first ``max_files`` entries left after the filters above.
        cache: keep decoded (and resampled) files in memory after their first use. Each
            DataLoader worker holds its own cache. Crops are identical with and without it.
        speed: ``(lo, hi)`` range of the speed factor of each crop (``0 < lo <= hi``), or None
            for no speed perturbation (see the module docstring). Needs ``crop_seconds``.
        gain_db: ``(lo, hi)`` range of the gain applied to each crop in dB, or None.
        augment: the other crop augmentations (:class:`~audiolatent.data.augment.CropAugmentation`),
            or None. Needs ``crop_seconds``.

    Raises:
        DataError: an unreadable source, bad arguments, or no entry left after filtering.
    """

    def __init__(
        self,
        source: Source,
        *,
        split: str | None = None,
        sample_rate: int | None = None,
        mono: bool = True,
        crop_seconds: float | None = None,
        min_seconds: float | None = None,
        seed: int = 0,
        max_files: int | None = None,
        cache: bool = False,
        speed: tuple[float, float] | None = None,
        gain_db: tuple[float, float] | None = None,
        augment: CropAugmentation | None = None,
    ) -> None:
        if sample_rate is not None and (not isinstance(sample_rate, int) or sample_rate <= 0):
            raise DataError(f"sample_rate must be a positive integer or None, got {sample_rate!r}")
        if crop_seconds is not None and not (crop_seconds > 0 and math.isfinite(crop_seconds)):
            raise DataError(f"crop_seconds must be > 0 or None, got {crop_seconds!r}")
        if not isinstance(seed, int) or seed < 0:
            raise DataError(f"seed must be a non-negative integer, got {seed!r}")
        if max_files is not None and (not isinstance(max_files, int) or max_files <= 0):
            raise DataError(f"max_files must be a positive integer or None, got {max_files!r}")
        speed = augmentation_range("speed", speed, positive=True)
        gain_db = augmentation_range("gain_db", gain_db, positive=False)
        if augment is not None and not isinstance(augment, CropAugmentation):
            raise DataError(f"augment must be a CropAugmentation or None, got {type(augment).__name__}")
        if (speed or gain_db or augment is not None) and crop_seconds is None:
            raise DataError("speed, gain_db and augment augment training crops: they need crop_seconds")

        if isinstance(source, str | os.PathLike):
            entries, name = entries_from_path(source), str(source)
        else:
            entries, name = list(source), "entries"
            bad = next((e for e in entries if not isinstance(e, ManifestEntry)), None)
            if bad is not None:
                raise DataError(f"source list must hold ManifestEntry objects, got {type(bad).__name__}")
            if not entries:
                raise DataError("source list of entries is empty")

        if split is not None:
            available = sorted({e.split for e in entries})
            entries = [e for e in entries if e.split == split]
            if not entries:
                raise DataError(f"{name}: no entries in split {split!r} (splits present: {', '.join(available)})")
        if min_seconds is not None:
            entries = [e for e in entries if e.duration >= min_seconds]
            if not entries:
                in_split = f" in split {split!r}" if split else ""
                raise DataError(f"{name}: no entries of {min_seconds} s or longer{in_split}")
        if max_files is not None:
            entries = entries[:max_files]
        for entry in entries:
            _band_limit(entry)  # a bad value fails here, not in the middle of training

        self.entries: list[ManifestEntry] = entries
        self.split = split
        self.sample_rate = sample_rate
        self.mono = mono
        self.crop_seconds = crop_seconds
        self.seed = seed
        self.epoch = 0
        self.cache = cache
        self.speed = speed
        self.gain_db = gain_db
        self.augment = augment
        self._cache: dict[int, tuple[torch.Tensor, int]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def total_seconds(self) -> float:
        """Summed duration of the entries, in seconds (from the manifest/headers)."""
        return float(sum(e.duration for e in self.entries))

    def set_epoch(self, epoch: int) -> None:
        """Select the crops of ``epoch`` (call before each epoch, as with DistributedSampler)."""
        if not isinstance(epoch, int) or epoch < 0:
            raise DataError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.entries):
            raise IndexError(f"index {index} out of range for a dataset of {len(self.entries)} files")
        entry = self.entries[index]
        if self.crop_seconds is None:
            audio, rate = self._whole(index)
            return _item(audio, audio.shape[-1], 0, rate, entry, _band_limit(entry))

        factor, gain = self._augmentation(index)
        if not self.cache:
            info = audio_info(entry.path)
            if self.sample_rate is None or info.samplerate == self.sample_rate:
                # No resampling needed: read only the window instead of the whole file.
                crop = _seconds_to_samples(self.crop_seconds, info.samplerate)
                span = _span(crop, factor)
                offset = self._crop_offset(index, info.frames, span)
                window = self._read_window(entry.path, offset, min(span, info.frames - offset))
                return self._finish(index, window, crop, factor, gain, offset, info.samplerate)

        audio, rate = self._whole(index)
        crop = _seconds_to_samples(self.crop_seconds, rate)
        span = _span(crop, factor)
        offset = self._crop_offset(index, audio.shape[-1], span)
        return self._finish(index, audio[:, offset : offset + span], crop, factor, gain, offset, rate)

    def _augmentation(self, index: int) -> tuple[float, float]:
        """``(speed factor, linear gain)`` of item ``index`` this epoch (``(1, 1)`` when off)."""
        if self.speed is None and self.gain_db is None:
            return 1.0, 1.0
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        factor = float(rng.uniform(*self.speed)) if self.speed else 1.0
        gain = 10 ** (float(rng.uniform(*self.gain_db)) / 20) if self.gain_db else 1.0
        return factor, gain

    def _finish(self, index: int, window: torch.Tensor, crop: int, factor: float, gain: float, offset: int,
                rate: int) -> dict[str, Any]:
        """The item of ``window`` (file samples from ``offset``): sped up, augmented, scaled, padded."""
        entry = self.entries[index]
        band_limit = _band_limit(entry) * factor
        if factor != 1.0:
            # The window holds round(crop * factor) samples; read at rate * factor it lasts crop samples.
            out = soxr.resample(window.T.numpy(), rate * factor, rate)
            window = torch.from_numpy(np.ascontiguousarray(out.T, dtype=np.float32))[:, :crop]
        if self.augment is not None:
            params = self.augment.draw([self.seed, self.epoch, index])
            window = self.augment.apply(window, rate, params)
            band_limit *= params.pitch_ratio
        if gain != 1.0:
            window = window * gain
        return _item(_pad(window, crop), window.shape[-1], offset, rate, entry, band_limit)

    def _whole(self, index: int) -> tuple[torch.Tensor, int]:
        """The whole decoded, resampled file as ``([C, N], rate)``, from the cache if enabled."""
        if index in self._cache:
            return self._cache[index]
        audio, rate = load_audio(self.entries[index].path, sample_rate=self.sample_rate, mono=self.mono)
        result = (audio[0], rate)
        if self.cache:
            self._cache[index] = result
        return result

    def _crop_offset(self, index: int, total: int, crop: int) -> int:
        if total <= crop:
            return 0
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return int(rng.integers(0, total - crop + 1))

    def _read_window(self, path: Path, offset: int, frames: int) -> torch.Tensor:
        try:
            data, _ = sf.read(str(path), start=offset, frames=frames, dtype="float32", always_2d=True)
        except Exception as exc:
            raise AudioError(f"{path}: cannot decode audio ({' '.join(str(exc).split())})") from None
        if data.shape[0] == 0:
            raise AudioError(f"{path}: empty audio (0 samples)")
        if not np.isfinite(data).all():
            raise AudioError(f"{path}: contains NaN or infinite samples")
        if self.mono and data.shape[1] > 1:
            data = data.mean(axis=1, keepdims=True)
        return torch.from_numpy(np.ascontiguousarray(data.T))

    def __repr__(self) -> str:
        return (
            f"AudioDataset({len(self)} files, {self.total_seconds / 60:.2f} min, split={self.split!r}, "
            f"sample_rate={self.sample_rate}, crop_seconds={self.crop_seconds}, seed={self.seed})"
        )


def from_path(path: str | os.PathLike, **kwargs: Any) -> AudioDataset:
    """An :class:`AudioDataset` of a manifest (``.jsonl``), a folder or a single audio file.

    ``kwargs`` are those of :class:`AudioDataset`. Raises DataError when ``path`` is none of these.
    """
    return AudioDataset(entries_from_path(path), **kwargs)


def collate_audio(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch dataset items: zero-pad to the longest and stack.

    Returns ``{"audio": [B, C, N_max], "lengths": LongTensor [B] (valid samples),
    "offsets": LongTensor [B], "band_limit_hz": FloatTensor [B] (``inf``: none), "sample_rate": int,
    "entries": [ManifestEntry] * B}``.

    Raises:
        DataError: an empty batch, or items with different sample rates or channel counts.
    """
    if not items:
        raise DataError("collate_audio: empty batch")
    rates = {item["sample_rate"] for item in items}
    if len(rates) > 1:
        raise DataError(
            f"collate_audio: items have different sample rates {sorted(rates)}; pass sample_rate= to the dataset"
        )
    channels = {item["audio"].shape[0] for item in items}
    if len(channels) > 1:
        raise DataError(f"collate_audio: items have different channel counts {sorted(channels)}; use mono=True")
    n_max = max(item["audio"].shape[-1] for item in items)
    audio = torch.zeros(len(items), channels.pop(), n_max, dtype=torch.float32)
    for b, item in enumerate(items):
        audio[b, :, : item["audio"].shape[-1]] = item["audio"]
    return {
        "audio": audio,
        "lengths": torch.tensor([item["length"] for item in items], dtype=torch.long),
        "offsets": torch.tensor([item["offset"] for item in items], dtype=torch.long),
        "band_limit_hz": torch.tensor([item.get("band_limit_hz", math.inf) for item in items], dtype=torch.float32),
        "sample_rate": rates.pop(),
        "entries": [item["entry"] for item in items],
    }


def _entry_of_file(path: Path, entry_id: str) -> ManifestEntry:
    info = audio_info(path)
    return ManifestEntry(
        path=path,
        duration=info.frames / info.samplerate,
        sample_rate=int(info.samplerate),
        split=split_of(path.stem),
        id=entry_id,
    )


def _item(audio: torch.Tensor, length: int, offset: int, rate: int, entry: ManifestEntry,
          band_limit_hz: float) -> dict[str, Any]:
    return {"audio": audio, "length": int(length), "offset": int(offset), "sample_rate": int(rate),
            "band_limit_hz": float(band_limit_hz), "entry": entry}


def _band_limit(entry: ManifestEntry) -> float:
    """The manifest row's ``band_limit_hz`` (Hz, > 0), or ``inf`` when it has none."""
    value = entry.extra.get("band_limit_hz")
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise DataError(f"{entry.id}: band_limit_hz must be a positive number of Hz or null, got {value!r}")
    return float(value)


def _pad(window: torch.Tensor, n: int) -> torch.Tensor:
    if window.shape[-1] >= n:
        return window
    return torch.nn.functional.pad(window, (0, n - window.shape[-1]))


def _span(crop: int, factor: float) -> int:
    """Samples of the file that a crop of ``crop`` samples at speed ``factor`` consumes."""
    return max(1, int(math.floor(crop * factor + 0.5)))


def _seconds_to_samples(seconds: float, rate: int) -> int:
    return max(1, int(math.floor(seconds * rate + 0.5)))
