"""Manifests of corpora on disk: ``audiolatent data prepare LAYOUT ROOT [--out MANIFEST]``.

:func:`prepare` walks a corpus folder in one of the :data:`LAYOUTS` and writes a JSONL manifest
(:mod:`audiolatent.data.manifest`) that ``audiolatent bench --data`` and ``audiolatent train
--data`` read. Only file headers are read (:func:`~audiolatent.core.audio.audio_info`), never
the audio. Every row has ``path`` (relative to the manifest's folder), ``id``, ``duration``
(seconds), ``sample_rate`` (Hz) and ``split``; ``text`` and ``voice`` (the speaker id) when the
layout knows them. Rows are in sorted path order.

Layouts (``ROOT`` is the folder given on the command line):

- ``librispeech``: ``ROOT/SUBSET/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac`` with the
  transcripts in ``SPEAKER-CHAPTER.trans.txt`` (lines ``UTT TEXT``). ``SUBSET`` is a folder
  named ``train-*``, ``dev-*`` or ``test-*`` (``train-clean-100``, ``dev-clean``, ...; ROOT may
  also be one subset folder). Split from the subset (see below); ``subset`` kept in each row.
- ``libritts``: ``ROOT/SUBSET/SPEAKER/CHAPTER/SPEAKER_CHAPTER_xxx_yyy.wav``, the text from the
  ``.normalized.txt`` beside each wav (else ``.original.txt``). Same subsets and splits.
- ``vctk``: VCTK-Corpus-0.92 ``ROOT/wav48_silence_trimmed/pXXX/pXXX_NNN_mic1.flac`` (``mic``
  chooses mic1 or mic2; ids drop the mic suffix) or the older
  ``ROOT/wav48/pXXX/pXXX_NNN.wav``; text from ``ROOT/txt/pXXX/pXXX_NNN.txt`` when present.
  VCTK has no official split: whole speakers are held out, ``split_of(speaker)`` (about 10 % of
  the speakers are ``test``), so no test voice is heard in training.
- ``musdb``: musdb18hq, ``ROOT/{train,test}/SONG/{mixture,vocals,drums,bass,other}.wav``.
  The mixtures only, unless ``stems=True`` (``--stems``) adds the four stems. Split from the
  folder; ids ``SONG/STEM``; rows carry ``"speech": false`` so the bench leaves speech-only
  metrics out.
- ``folder``: every audio file under ROOT (recursive; wav, flac, ogg, mp3), split by
  :func:`~audiolatent.data.manifest.split_of` of the file stem, text from a ``.txt`` of the
  same stem beside it; ids are the relative path without extension.

``split=NAME`` (``--split NAME``) gives every row that split instead of the layout's rule.

Decisions, so a manifest means the same thing everywhere:

- ``dev-*`` subsets get split ``"dev"`` (LibriSpeech's own name), not ``"test"``: the bench
  scores ``test`` (``test-*`` only, as papers report) and ``train`` trains on ``train``;
  evaluate on dev with ``--set data.eval_split=dev``.
- A transcript that names no audio file (a ``trans.txt`` line, a ``.normalized.txt`` with no
  wav) is a :class:`DataError`: the copy is incomplete. VCTK texts without audio are ignored
  (its ``txt/`` and wav folders are not one-to-one).
- An unreadable or empty audio file is skipped, not fatal (one bad file in 280 000 should not
  cost a rescan): :attr:`Prepared.skipped` lists them, one warning counts them, and the CLI
  summary repeats the count. Only when no file at all can be read is it an error.
- An existing manifest is replaced only with ``force=True`` (``--force``); it is written
  atomically, so a stopped run leaves the old one or none.

Example::

    manifest = prepare("librispeech", "/data/LibriSpeech")   # /data/LibriSpeech/manifest.jsonl
    ds = AudioDataset(manifest, split="train", sample_rate=16000, crop_seconds=1.0)
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from audiolatent.core.atomic import check_output_path
from audiolatent.core.errors import AudioError, OutputError
from audiolatent.data.manifest import DataError, ManifestEntry, split_of, write_manifest

__all__ = ["LAYOUTS", "MUSDB_STEMS", "Prepared", "manifest_target", "prepare", "scan_layout", "summary"]

LAYOUTS = ("librispeech", "libritts", "vctk", "musdb", "folder")
#: the files of a musdb18hq song folder; the first is the one prepared by default
MUSDB_STEMS = ("mixture", "vocals", "drums", "bass", "other")
#: subset folder prefix -> split (LibriSpeech and LibriTTS)
SUBSET_SPLITS = {"train-": "train", "dev-": "dev", "test-": "test"}
DEFAULT_MANIFEST = "manifest.jsonl"


@dataclass
class Prepared:
    """What :func:`scan_layout` found: the manifest rows and the files it had to leave out.

    Attributes:
        layout: one of :data:`LAYOUTS`.
        root: the corpus folder (absolute).
        entries: one per readable audio file, in sorted path order.
        skipped: ``"PATH: reason"`` for every audio file left out (unreadable, empty, missing).
    """

    layout: str
    root: Path
    entries: list[ManifestEntry]
    skipped: list[str] = field(default_factory=list)


class _File(NamedTuple):
    """An audio file a layout found, before its header is read."""

    path: Path
    id: str
    split: str
    text: str | None = None
    voice: str | None = None
    extra: dict[str, Any] = {}


def manifest_target(root: str | os.PathLike, out: str | os.PathLike | None = None, force: bool = False) -> Path:
    """The manifest path :func:`prepare` writes (``out``, default ``ROOT/manifest.jsonl``), checked first.

    Raises:
        OutputError: the path is a directory, or a file that exists while ``force`` is False.
    """
    target = Path(out) if out is not None else Path(root) / DEFAULT_MANIFEST
    check_output_path(target, what="manifest")
    if target.exists() and not force:
        raise OutputError(f"manifest {target} exists; pass --force (force=True) to replace it")
    return target


def prepare(
    layout: str,
    root: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    force: bool = False,
    split: str | None = None,
    stems: bool = False,
    mic: str = "mic1",
    progress: bool = False,
) -> Path:
    """Write the manifest of the corpus at ``root`` in ``layout``; return its path.

    Args:
        layout: one of :data:`LAYOUTS` (see the module docstring).
        root: the corpus folder.
        out: manifest to write (default ``ROOT/manifest.jsonl``); paths in it are relative to its folder.
        force: replace an existing manifest.
        split: give every row this split instead of the layout's rule.
        stems: ``musdb`` only: the four stems as well as the mixture.
        mic: ``vctk`` only (0.92 layout): ``"mic1"`` or ``"mic2"``.
        progress: a tqdm bar while headers are read.

    Raises:
        DataError: no such root, no audio in the layout's places (the message says what was
            expected), a transcript naming no audio file, or no readable audio file at all.
        OutputError: the manifest exists (without ``force``) or cannot be written.
    """
    target = manifest_target(root, out, force)  # before the walk: a refusal should not cost a scan
    prepared = scan_layout(layout, root, split=split, stems=stems, mic=mic, progress=progress)
    return write_manifest(prepared.entries, target)


def scan_layout(
    layout: str,
    root: str | os.PathLike,
    *,
    split: str | None = None,
    stems: bool = False,
    mic: str = "mic1",
    progress: bool = False,
) -> Prepared:
    """The rows :func:`prepare` would write (same arguments, nothing written)."""
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r} (choose from {', '.join(LAYOUTS)})")
    if split is not None and (not isinstance(split, str) or not split.strip()):
        raise DataError(f"split must be a non-empty name, got {split!r}")
    folder = Path(root)
    if not folder.exists():
        raise DataError(f"{root}: no such folder")
    if not folder.is_dir():
        raise DataError(f"{root}: not a folder")
    folder = folder.resolve()
    if layout == "librispeech":
        files, missing = _librispeech(folder), []
    elif layout == "libritts":
        files, missing = _libritts(folder), []
    elif layout == "vctk":
        files, missing = _vctk(folder, mic), []
    elif layout == "musdb":
        files, missing = _musdb(folder, stems)
    else:
        files, missing = _folder(folder), []
    if split is not None:
        files = [f._replace(split=split) for f in files]
    entries, unreadable = _read_headers(files, progress, desc=f"{layout} headers")
    skipped = missing + unreadable
    if not entries:
        raise DataError(f"{root}: none of the {len(files)} audio files can be read (first: {unreadable[0]})")
    if skipped:
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        warnings.warn(f"{layout} {root}: skipped {len(skipped)} file(s): {skipped[0]}{more}", stacklevel=2)
    return Prepared(layout, folder, entries, skipped)


def summary(prepared: Prepared, manifest: str | os.PathLike | None = None) -> str:
    """A table of files, hours and speakers per split (and in all), and the count of skipped files."""
    splits: dict[str, list[ManifestEntry]] = {}
    for e in prepared.entries:
        splits.setdefault(e.split, []).append(e)
    order = sorted(splits, key=lambda s: (["train", "dev", "test"].index(s) if s in ("train", "dev", "test") else 3, s))
    width = max(5, *(len(s) for s in order))
    where = f" -> {manifest}" if manifest is not None else ""
    lines = [f"{prepared.layout} {prepared.root}{where}", f"{'split':<{width}}{'files':>9}{'hours':>10}{'speakers':>10}"]
    for name, entries in [*((s, splits[s]) for s in order), ("all", prepared.entries)]:
        voices = {e.extra["voice"] for e in entries if e.extra.get("voice") is not None}
        hours = sum(e.duration for e in entries) / 3600
        lines.append(f"{name:<{width}}{len(entries):>9}{hours:>10.2f}{(len(voices) or '-'):>10}")
    if prepared.skipped:
        lines.append(f"skipped {len(prepared.skipped)} file(s) (unreadable, empty or missing); first: {prepared.skipped[0]}")
    return "\n".join(lines)


def _read_headers(files: list[_File], progress: bool, desc: str) -> tuple[list[ManifestEntry], list[str]]:
    from tqdm import tqdm

    from audiolatent.core.audio import audio_info

    entries, skipped = [], []
    for f in tqdm(files, desc=desc, unit="file", disable=not progress, leave=False):
        try:
            info = audio_info(f.path)
        except AudioError as exc:
            skipped.append(str(exc))
            continue
        if info.frames <= 0 or info.samplerate <= 0:
            skipped.append(f"{f.path}: empty audio (0 samples)")
            continue
        extra = {"voice": f.voice} if f.voice is not None else {}
        entries.append(ManifestEntry(path=f.path, duration=info.frames / info.samplerate, sample_rate=int(info.samplerate),
                                     split=f.split, id=f.id, text=f.text, extra={**extra, **f.extra}))
    return entries, skipped


def _read_text(path: Path) -> str | None:
    """The stripped content of a transcript file, None when there is none (or it is empty)."""
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: transcript is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return " ".join(text.split()) or None


def _subsets(root: Path) -> list[tuple[Path, str]]:
    """``[(subset folder, split)]``: ROOT's ``train-*``/``dev-*``/``test-*`` folders, or ROOT itself if it is one."""
    def split(name: str) -> str | None:
        return next((s for prefix, s in SUBSET_SPLITS.items() if name.startswith(prefix)), None)

    found = [(d, split(d.name)) for d in sorted(root.iterdir()) if d.is_dir() and split(d.name)]
    if not found and split(root.name):
        found = [(root, split(root.name))]
    return found


def _chapters(root: Path) -> list[tuple[Path, str, Path]]:
    """``[(subset, split, chapter folder)]`` of a LibriSpeech/LibriTTS tree (SUBSET/SPEAKER/CHAPTER)."""
    return [(subset, split, chapter) for subset, split in _subsets(root)
            for chapter in sorted(subset.glob("*/*")) if chapter.is_dir()]


_SUBSETS_EXPECTED = "SUBSET a folder named train-*, dev-* or test-*, e.g. train-clean-100"


def _librispeech(root: Path) -> list[_File]:
    files = []
    for subset, split, chapter in _chapters(root):
        speaker = chapter.parent.name
        audio = {p.stem: p for p in sorted(chapter.glob("*.flac")) if not p.name.startswith(".")}
        texts: dict[str, str | None] = {}
        for trans in sorted(chapter.glob("*.trans.txt")):
            with open(trans, encoding="utf-8") as f:
                for lineno, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    utt, _, text = line.strip().partition(" ")
                    if utt not in audio:
                        raise DataError(f"{trans}:{lineno}: transcript of {utt!r} but no {utt}.flac in {chapter}")
                    texts[utt] = " ".join(text.split()) or None
        files += [_File(path, utt, split, texts.get(utt), speaker, {"subset": subset.name}) for utt, path in audio.items()]
    if not files:
        raise DataError(f"{root}: no SUBSET/SPEAKER/CHAPTER/*.flac under this folder (librispeech layout; {_SUBSETS_EXPECTED})")
    return files


def _libritts(root: Path) -> list[_File]:
    files = []
    for subset, split, chapter in _chapters(root):
        speaker = chapter.parent.name
        audio = {p.stem: p for p in sorted(chapter.glob("*.wav")) if not p.name.startswith(".")}
        for kind in (".normalized.txt", ".original.txt"):
            for txt in sorted(chapter.glob(f"*{kind}")):
                utt = txt.name[: -len(kind)]
                if utt not in audio:
                    raise DataError(f"{txt}: transcript with no {utt}.wav beside it")
        for utt, path in audio.items():
            text = _read_text(chapter / f"{utt}.normalized.txt")
            if text is None:
                text = _read_text(chapter / f"{utt}.original.txt")
            files.append(_File(path, utt, split, text, speaker, {"subset": subset.name}))
    if not files:
        raise DataError(f"{root}: no SUBSET/SPEAKER/CHAPTER/*.wav under this folder (libritts layout; {_SUBSETS_EXPECTED})")
    return files


def _vctk(root: Path, mic: str) -> list[_File]:
    if mic not in ("mic1", "mic2"):
        raise DataError(f"vctk mic must be 'mic1' or 'mic2', got {mic!r}")
    if (root / "wav48_silence_trimmed").is_dir():
        wav_root, pattern, suffix = root / "wav48_silence_trimmed", f"*_{mic}.flac", f"_{mic}"
    elif (root / "wav48").is_dir():
        wav_root, pattern, suffix = root / "wav48", "*.wav", ""
    else:
        raise DataError(f"{root}: no wav48_silence_trimmed/ (VCTK 0.92) or wav48/ folder (vctk layout: "
                        "ROOT/wav48_silence_trimmed/pXXX/pXXX_NNN_mic1.flac, texts in ROOT/txt/pXXX/pXXX_NNN.txt)")
    files = []
    for speaker_dir in sorted(d for d in wav_root.iterdir() if d.is_dir()):
        speaker = speaker_dir.name
        for path in sorted(speaker_dir.glob(pattern)):
            if path.name.startswith("."):
                continue
            utt = path.stem[: -len(suffix)] if suffix else path.stem
            extra = {"mic": mic} if suffix else {}
            files.append(_File(path, utt, split_of(speaker), _read_text(root / "txt" / speaker / f"{utt}.txt"), speaker, extra))
    if not files:
        raise DataError(f"{root}: no {wav_root.name}/SPEAKER/{pattern} under this folder (vctk layout)")
    return files


def _musdb(root: Path, stems: bool) -> tuple[list[_File], list[str]]:
    names = MUSDB_STEMS if stems else MUSDB_STEMS[:1]
    files, missing = [], []
    for split in ("train", "test"):
        if not (root / split).is_dir():
            continue
        for song in sorted(d for d in (root / split).iterdir() if d.is_dir()):
            for name in names:
                path = song / f"{name}.wav"
                if path.is_file():
                    files.append(_File(path, f"{song.name}/{name}", split, None, None,
                                       {"song": song.name, "stem": name, "speech": False}))
                else:
                    missing.append(f"{path}: no such file")
    if not files:
        compressed = any(root.glob("*/*.stem.mp4"))
        hint = " (these are musdb18 .stem.mp4 files; decode them to musdb18hq wav folders)" if compressed else ""
        raise DataError(f"{root}: no {{train,test}}/SONG/mixture.wav under this folder (musdb18hq layout){hint}")
    return files, missing


def _folder(root: Path) -> list[_File]:
    from audiolatent.data.datasets import AUDIO_EXTENSIONS, audio_files

    paths = audio_files(root)
    if not paths:
        raise DataError(f"{root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder or below")
    ids = [p.relative_to(root).with_suffix("").as_posix() for p in paths]
    clashes = {i for i, n in Counter(ids).items() if n > 1}
    # a.wav beside a.flac: both keep their extension in the id, which must be unique
    return [_File(p, p.relative_to(root).as_posix() if i in clashes else i, split_of(p.stem), _read_text(p.with_suffix(".txt")))
            for p, i in zip(paths, ids)]
