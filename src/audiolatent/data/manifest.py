"""Manifests: one JSON object per audio file, one file per line (JSON Lines, UTF-8).

The format is the one of the built-in corpus (see ``audiolatent/corpus/README.md``)::

    {"path": "audio/added.flac", "id": "added", "text": "Added.", "duration": 0.723125,
     "sample_rate": 16000, "split": "test"}
    {"path": "audio/kal16/digits__4.flac", "id": "digits__4", "text": "four", "voice": "kal16",
     "duration": 0.677, "sample_rate": 16000, "split": "train",
     "phones": [["pau", 0.0, 0.22], ["f", 0.22, 0.329], ["ao", 0.329, 0.513], ...]}

Only ``path`` is required; it is relative to the folder holding the manifest (or absolute).
``duration`` (seconds) and ``sample_rate`` (Hz) are read from the file header when missing, so
reading a manifest never decodes audio. A row without ``split`` gets :func:`split_of` of the
file stem; a row without ``id`` gets its manifest-relative path without the extension. Keys
other than the named fields (``voice``, ``author``, ``licence``, ...) are kept in ``extra``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiolatent.core.atomic import atomic_path
from audiolatent.core.audio import audio_info
from audiolatent.core.errors import AudioError, AudioLatentError

__all__ = ["DataError", "ManifestEntry", "read_manifest", "write_manifest", "split_of", "frame_phone_labels"]

_NAMED_KEYS = ("path", "id", "text", "duration", "sample_rate", "split", "phones")


class DataError(AudioLatentError, ValueError):
    """A manifest, folder or dataset request that cannot be honoured (bad row, missing file, empty split)."""


def split_of(name: str) -> str:
    """``"test"`` for about 10% of names, ``"train"`` for the rest, decided by sha1 of ``name``.

    ``name`` is a file stem or speech id (``"digits__4"``, ``"bd_boom"``). The rule is the one the
    corpus was built with: test iff the first 8 hex digits of sha1(name, UTF-8), read as an
    integer, are divisible by 10. It depends on the name only, so a line keeps its split in every
    folder and every subset.
    """
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()
    return "test" if int(digest[:8], 16) % 10 == 0 else "train"


@dataclass
class ManifestEntry:
    """One audio file of a manifest or folder.

    Attributes:
        path: absolute path of the audio file.
        duration: length in seconds (exact sample count / ``sample_rate`` in the corpus).
        sample_rate: the file's rate in Hz (before any resampling a dataset does).
        split: ``"train"`` or ``"test"`` (any string a manifest gives is kept).
        id: a name unique within its manifest; joins rows of the two speech corpora.
        text: transcript, or None.
        phones: ``[(phone, start_s, end_s), ...]`` covering the file, or None.
        extra: every other key of the row (``voice``, ``author``, ``licence``, ``url``, ...).
    """

    path: Path
    duration: float
    sample_rate: int
    split: str
    id: str
    text: str | None = None
    phones: list[tuple[str, float, float]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        """Length in samples at ``sample_rate`` (rounded)."""
        return int(math.floor(self.duration * self.sample_rate + 0.5))

    def to_dict(self, relative_to: str | os.PathLike | None = None) -> dict[str, Any]:
        """The manifest row: ``path`` relative to ``relative_to`` when given (POSIX separators)."""
        path = Path(self.path)
        if relative_to is not None:
            try:
                path_str = Path(os.path.relpath(path, Path(relative_to).resolve())).as_posix()
            except ValueError:  # another drive on Windows: no relative path exists
                path_str = str(path)
        else:
            path_str = str(path)
        row: dict[str, Any] = {"path": path_str, "id": self.id}
        if self.text is not None:
            row["text"] = self.text
        row["duration"] = self.duration
        row["sample_rate"] = self.sample_rate
        row["split"] = self.split
        if self.phones is not None:
            row["phones"] = [[p, s, e] for p, s, e in self.phones]
        row.update(self.extra)
        return row


def read_manifest(path: str | os.PathLike, check_files: bool = True) -> list[ManifestEntry]:
    """Read a JSONL manifest into entries, in file order.

    Blank lines are skipped. With ``check_files`` (the default) every referenced audio file must
    exist; its header is read only where the row lacks ``duration`` or ``sample_rate``.

    Raises:
        DataError: ``<manifest>:<line>: <problem>`` for invalid JSON, a row that is not an
            object, a missing or non-string ``path``, a missing audio file, a malformed
            ``duration``/``sample_rate``/``phones``, or a duplicate ``id``; also a missing
            or empty manifest.
    """
    manifest = Path(path)
    if not manifest.is_file():
        raise DataError(f"{manifest}: no such manifest file")
    root = manifest.resolve().parent
    entries: list[ManifestEntry] = []
    seen_ids: dict[str, int] = {}
    with open(manifest, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{manifest}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            entry = _entry_from_row(row, root, where, check_files)
            if entry.id in seen_ids:
                raise DataError(f"{where}: duplicate id {entry.id!r} (first on line {seen_ids[entry.id]})")
            seen_ids[entry.id] = lineno
            entries.append(entry)
    if not entries:
        raise DataError(f"{manifest}: manifest has no entries")
    return entries


def write_manifest(entries: list[ManifestEntry], path: str | os.PathLike) -> Path:
    """Write ``entries`` as JSONL at ``path``, atomically; paths are stored relative to its folder.

    ``read_manifest(write_manifest(entries, p))`` gives back equal entries.
    """
    target = Path(path)
    root = target.resolve().parent
    with atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for entry in entries:
                f.write(json.dumps(entry.to_dict(relative_to=root), ensure_ascii=False) + "\n")
    return target


def _entry_from_row(row: Any, root: Path, where: str, check_files: bool) -> ManifestEntry:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    rel = row.get("path")
    if rel is None:
        raise DataError(f"{where}: missing 'path'")
    if not isinstance(rel, str) or not rel:
        raise DataError(f"{where}: 'path' must be a non-empty string, got {rel!r}")
    audio_path = (root / rel).resolve()
    if check_files and not audio_path.is_file():
        raise DataError(f"{where}: audio file not found: {audio_path}")

    duration, sample_rate = row.get("duration"), row.get("sample_rate")
    if duration is None or sample_rate is None:
        try:
            info = audio_info(audio_path)
        except AudioError as exc:
            raise DataError(f"{where}: {exc}") from None
        sample_rate = info.samplerate if sample_rate is None else sample_rate
        duration = info.frames / info.samplerate if duration is None else duration
    if isinstance(duration, bool) or not isinstance(duration, int | float) or not math.isfinite(duration) or duration < 0:
        raise DataError(f"{where}: 'duration' must be a number of seconds >= 0, got {duration!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise DataError(f"{where}: 'sample_rate' must be a positive integer, got {sample_rate!r}")

    entry_id = row.get("id")
    if entry_id is None:
        entry_id = Path(rel).with_suffix("").as_posix()
    elif not isinstance(entry_id, str) or not entry_id:
        raise DataError(f"{where}: 'id' must be a non-empty string, got {entry_id!r}")
    split = row.get("split")
    if split is None:
        split = split_of(Path(rel).stem)
    elif not isinstance(split, str) or not split:
        raise DataError(f"{where}: 'split' must be a non-empty string, got {split!r}")
    text = row.get("text")
    if text is not None and not isinstance(text, str):
        raise DataError(f"{where}: 'text' must be a string, got {type(text).__name__}")

    return ManifestEntry(
        path=audio_path,
        duration=float(duration),
        sample_rate=int(sample_rate),
        split=split,
        id=entry_id,
        text=text,
        phones=_parse_phones(row.get("phones"), where),
        extra={k: v for k, v in row.items() if k not in _NAMED_KEYS},
    )


def _parse_phones(phones: Any, where: str) -> list[tuple[str, float, float]] | None:
    if phones is None:
        return None
    if not isinstance(phones, list):
        raise DataError(f"{where}: 'phones' must be a list of [phone, start_s, end_s], got {type(phones).__name__}")
    out = []
    for k, item in enumerate(phones):
        ok = (
            isinstance(item, list | tuple)
            and len(item) == 3
            and isinstance(item[0], str)
            and all(isinstance(t, int | float) and not isinstance(t, bool) for t in item[1:])
        )
        if not ok or item[2] < item[1]:
            raise DataError(f"{where}: phones[{k}] must be [phone, start_s, end_s] with start <= end, got {item!r}")
        out.append((item[0], float(item[1]), float(item[2])))
    return out


def frame_phone_labels(phones: list[tuple[str, float, float]], n_frames: int, frame_rate: float) -> list[str | None]:
    """The phone covering the centre ``(t + 0.5) / frame_rate`` of each frame (None past the end)."""
    labels: list[str | None] = []
    j = 0
    for t in range(n_frames):
        centre = (t + 0.5) / frame_rate
        while j < len(phones) and phones[j][2] <= centre:
            j += 1
        labels.append(phones[j][0] if j < len(phones) and phones[j][1] <= centre else None)
    return labels
