"""pocketsphinx forced alignment, checked against the exact alignments of the synthetic voices."""

from __future__ import annotations

import pytest

from audiolatent.core.audio import load_audio
from audiolatent.data.corpus import builtin_corpus
from audiolatent.data.manifest import DataError, read_manifest, write_manifest
from audiolatent.data.phone_alignment import alignment_agreement, force_align, normalise_transcript

pytest.importorskip("pocketsphinx")


@pytest.fixture(scope="module")
def synthetic():
    """Three speech_aligned test files (three voices) whose true phones are known."""
    entries = [e for e in read_manifest(builtin_corpus("speech_aligned")) if e.split == "test" and e.duration > 1.5]
    by_voice = {}
    for e in entries:
        by_voice.setdefault(e.path.parent.name, e)
    return list(by_voice.values())[:3]


def test_normalise_transcript():
    assert normalise_transcript("Press 1, or the pound-key. Don't!") == "press or the pound key don't"


def test_alignment_agrees_with_the_known_one(synthetic):
    for entry in synthetic:
        audio, _ = load_audio(entry.path, sample_rate=16000, mono=True)
        phones = force_align(audio, entry.text)
        assert phones[0][1] == 0.0 and phones[-1][2] == pytest.approx(entry.duration, abs=0.011)
        assert all(p == p.lower() and s < e for p, s, e in phones)
        assert all(a[2] == pytest.approx(b[1]) for a, b in zip(phones, phones[1:]))  # contiguous
        agreement = alignment_agreement(entry.phones, phones)
        assert agreement["frame_agreement"] > 0.6, (entry.id, agreement)
        assert agreement["boundary_error_ms"] < 40, (entry.id, agreement)


def test_agreement_knows_the_answer():
    truth = [("pau", 0.0, 0.1), ("ax", 0.1, 0.3), ("t", 0.3, 0.4)]
    same = [("sil", 0.0, 0.1), ("ah", 0.1, 0.3), ("t", 0.3, 0.4)]
    assert alignment_agreement(truth, same) == {"frame_agreement": 1.0, "boundary_error_ms": 0.0, "frames": 40,
                                                "boundaries": 2}
    late = [("pau", 0.0, 0.12), ("ah", 0.12, 0.3), ("t", 0.3, 0.4)]
    result = alignment_agreement(truth, late)
    assert result["frame_agreement"] == pytest.approx(38 / 40) and result["boundary_error_ms"] == pytest.approx(10.0)


def test_words_outside_the_dictionary_are_named(synthetic):
    audio, _ = load_audio(synthetic[0].path, sample_rate=16000, mono=True)
    with pytest.raises(DataError, match="qzxv"):
        force_align(audio, "hello qzxv")
    with pytest.raises(DataError, match="empty"):
        force_align(audio, " ,. ")


def test_cli_writes_an_aligned_manifest(synthetic, tmp_path, capsys):
    from audiolatent.cli.main import main

    source = tmp_path / "in.jsonl"
    bare = [e.__class__(**{**e.__dict__, "phones": None}) for e in synthetic[:2]]
    write_manifest(bare, source)
    out = tmp_path / "aligned.jsonl"
    assert main(["data", "align", str(source), "--out", str(out), "--no-progress"]) == 0
    assert "aligned 2 of 2" in capsys.readouterr().out
    rows = read_manifest(out)
    assert all(r.phones for r in rows) and [r.id for r in rows] == [e.id for e in bare]
    assert main(["data", "align", str(source), "--out", str(out), "--no-progress"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["data", "align", str(source), "--out", str(source), "--force", "--no-progress"]) == 1
