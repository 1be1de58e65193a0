"""Stage 0 of the bench pipeline: what is measured, on which files.

:data:`PRESETS` (how much a run measures), :func:`load_bench_data` (the corpora, their splits and
the *scored* files: those distortion and rate are measured on) and :func:`first_seconds` (a
preset's cap on the scored files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from audiolatent.bench.modelability import DEFAULT_BUDGET, QUICK_BUDGET, STANDARD_BUDGET, ProbeBudget
from audiolatent.core.errors import ConfigError
from audiolatent.data import DataError, builtin_corpus, entries_from_path

__all__ = ["BUILTIN_CORPORA", "BenchPreset", "PRESETS", "SCORED_SPLITS", "KINDS", "load_bench_data", "by_split",
           "first_seconds"]

#: built-in corpora and whether they are speech
BUILTIN_CORPORA = {"speech_real": True, "speech_aligned": True, "music": False}
#: what ``kind=`` (``bench --kind``) may say of user data: speech-only metrics (PESQ, STOI, F0, WER) run on speech
KINDS = ("speech", "music", "audio")


@dataclass(frozen=True)
class BenchPreset:
    """How much a bench run measures (the same for every tokenizer of the run).

    Attributes:
        name: ``quick``, ``standard`` or ``full``.
        test_seconds: scored (test) files per corpus are taken in manifest order until this many
            seconds (None: every file).
        budget: the modelability probes' budget.
        streaming: keyword arguments of :func:`audiolatent.bench.streaming.measure_streaming`.
        excluded: distortion metrics left out, with the reason.
    """

    name: str
    test_seconds: float | None
    budget: ProbeBudget
    streaming: dict = field(default_factory=dict)
    excluded: dict = field(default_factory=dict)


_NO_ASR = "offline ASR takes minutes of CPU per tokenizer; run with --full"
PRESETS = {
    "quick": BenchPreset("quick", 12.0, QUICK_BUDGET, dict(seconds=1.0, probe_seconds=0.5, repeats=1, max_chunks=40),
                         {"asr_wer": _NO_ASR}),
    "standard": BenchPreset("standard", 60.0, STANDARD_BUDGET, dict(seconds=2.0, probe_seconds=1.0, repeats=2, max_chunks=100),
                            {"asr_wer": _NO_ASR}),
    "full": BenchPreset("full", None, DEFAULT_BUDGET),
}


#: what ``split=`` of :func:`run_bench` (``bench --split``) may score
SCORED_SPLITS = ("test", "train", "all")


def load_bench_data(data=None, split: str = "test", kind: str | None = None) -> dict[str, dict]:
    """``{corpus: {"speech": bool, "splits": {split: [ManifestEntry]}, "scored": [ManifestEntry]}}``.

    ``data`` None: the built-in corpus. Otherwise a manifest, folder or file; its entries are
    split by their ``split`` field (folders: :func:`audiolatent.data.split_of` of the stem). It
    is treated as speech (speech-only metrics apply; pass ``metrics`` to restrict) unless every
    row says ``"speech": false`` (as ``audiolatent data prepare musdb`` writes) or ``kind`` says
    otherwise: ``"speech"``, ``"music"`` or ``"audio"`` (the last two skip speech-only metrics).
    The built-in corpus keeps its own kinds.

    ``split`` chooses the ``scored`` files, those distortion and rate are measured on: ``"test"``
    the test split (when no file is ``test``, every file is, and there is no train split, so no
    probes); ``"train"`` the train split (a DataError when there is none); ``"all"`` every file.
    """
    if split not in SCORED_SPLITS:
        raise ConfigError(f"unknown bench split {split!r}: choose one of {', '.join(SCORED_SPLITS)}")
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"unknown data kind {kind!r}: choose one of {', '.join(KINDS)}")
    if data is None:
        sources = {name: (entries_from_path(builtin_corpus(name)), speech) for name, speech in BUILTIN_CORPORA.items()}
    else:
        entries = entries_from_path(data)
        speech = kind == "speech" if kind is not None else not all(e.extra.get("speech") is False for e in entries)
        sources = {Path(data).stem or "data": (entries, speech)}
    out = {}
    for name, (entries, speech) in sources.items():
        splits = by_split(entries)
        if split == "test" and "test" not in splits:  # e.g. one file: measure every file, but train no probe on them too
            splits = {"test": list(entries)}
        if split == "all":
            scored = list(entries)
        elif split in splits:
            scored = splits[split]
        else:
            raise DataError(f"{data if data is not None else name}: no entries in split {split!r} "
                            f"(splits present: {', '.join(sorted(splits))}); try --split all")
        out[name] = {"speech": speech, "splits": splits, "scored": scored}
    return out


def by_split(entries: list) -> dict[str, list]:
    """``{split: entries}`` in manifest order."""
    splits: dict[str, list] = {}
    for e in entries:
        splits.setdefault(e.split, []).append(e)
    return splits


def first_seconds(entries: list, seconds: float) -> list:
    """The first entries (manifest order) until ``seconds`` of audio are reached."""
    out, total = [], 0.0
    for e in entries:
        if total >= seconds:
            break
        out.append(e)
        total += e.duration
    return out
