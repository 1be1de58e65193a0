"""The built-in corpus shipped inside the package (``audiolatent/corpus/``).

Three small manifests, each with a ``train`` and a ``test`` split, FLAC 16-bit mono:

- ``speech_real``: one real voice (Allison Smith's Asterisk prompts) with transcripts, 16 kHz;
- ``speech_aligned``: flite speech of the same prompt lines in 4 voices, with phone times, 16 kHz;
- ``music``: Sonic Pi samples (44.1 kHz) and music-on-hold clips (16 kHz).

``audiolatent/corpus/README.md`` lists what is there, the licences, and the command that
rebuilds it (``python scripts/make_builtin_corpus.py``). Example::

    ds = AudioDataset(builtin_corpus("speech_aligned"), split="test", sample_rate=16000)
"""

from __future__ import annotations

from pathlib import Path

from audiolatent.data.manifest import DataError

__all__ = ["CORPUS_NAMES", "builtin_corpus", "corpus_root"]

CORPUS_NAMES = ("speech_real", "speech_aligned", "music")


def corpus_root() -> Path:
    """The folder of the built-in corpus inside the installed package."""
    return Path(__file__).resolve().parent.parent / "corpus"


def builtin_corpus(name: str | None = None) -> Path | dict[str, Path]:
    """Path of the manifest of the built-in corpus ``name``; with no name, ``{name: path}`` of all.

    Raises:
        DataError: an unknown name, or a corpus whose manifest is missing from the package.
    """
    if name is None:
        return {n: builtin_corpus(n) for n in CORPUS_NAMES}
    if name not in CORPUS_NAMES:
        raise DataError(f"unknown built-in corpus {name!r} (known: {', '.join(CORPUS_NAMES)})")
    manifest = corpus_root() / name / "manifest.jsonl"
    if not manifest.is_file():
        raise DataError(
            f"built-in corpus {name!r} is missing ({manifest} not found); "
            "rebuild it with: python scripts/make_builtin_corpus.py"
        )
    return manifest
