"""Data: manifests, audio datasets with seeded crops, and the built-in corpus.

See :mod:`audiolatent.data.manifest` for the manifest format, :mod:`audiolatent.data.datasets`
for :class:`AudioDataset` and :func:`collate_audio`, :mod:`audiolatent.data.augment` for the crop
augmentations, :mod:`audiolatent.data.corpus` for
:func:`builtin_corpus`, :mod:`audiolatent.data.prepare` for manifests of corpora on disk
(LibriSpeech, LibriTTS, VCTK, musdb18hq, any folder).
"""

from audiolatent.data.augment import CropAugmentation
from audiolatent.data.corpus import CORPUS_NAMES, builtin_corpus, corpus_root
from audiolatent.data.datasets import (
    AUDIO_EXTENSIONS,
    AudioDataset,
    collate_audio,
    entries_from_path,
    from_path,
    scan_folder,
)
from audiolatent.data.manifest import DataError, ManifestEntry, read_manifest, split_of, write_manifest

__all__ = [
    "AUDIO_EXTENSIONS",
    "CORPUS_NAMES",
    "AudioDataset",
    "CropAugmentation",
    "DataError",
    "ManifestEntry",
    "builtin_corpus",
    "collate_audio",
    "corpus_root",
    "entries_from_path",
    "from_path",
    "read_manifest",
    "scan_folder",
    "split_of",
    "write_manifest",
]
