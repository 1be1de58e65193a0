"""Fixtures shared by the tests of the shipped codecs (test_pretrained, test_semantic_codec).

A module that defines its own ``speech`` (test_export, test_classical) overrides this one.
"""

import pytest

from audiolatent.core.audio import load_audio
from audiolatent.data.corpus import builtin_corpus
from audiolatent.data.manifest import read_manifest


@pytest.fixture(scope="module")
def speech(codec):
    """The first 1.2 s of a built-in speech_real test file (real speech, not noise), at the module's ``codec``'s rate."""
    entry = next(e for e in read_manifest(builtin_corpus("speech_real")) if e.split == "test" and e.duration >= 1.2)
    audio, _ = load_audio(entry.path, sample_rate=codec.sample_rate, mono=True)
    return audio[..., : 60 * codec.hop_length]
