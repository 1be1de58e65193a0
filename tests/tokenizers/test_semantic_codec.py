"""The shipped codec-16k-semantic: the default's footing (bitrate, frames, latency), self-contained,
streaming exactly, with the record of how it and its teachers were made."""

import pytest
import torch

from audiolatent import load_tokenizer
from audiolatent.core.audio import load_audio
from audiolatent.core.config import load_yaml
from audiolatent.core.registry import list_tokenizers
from audiolatent.data.corpus import builtin_corpus
from audiolatent.data.manifest import read_manifest
from audiolatent.tokenizers.pretrained import DEFAULT_CODEC, SEMANTIC_CODEC, pretrained_path
from audiolatent.testing import assert_codec_streams_like_offline


@pytest.fixture(scope="module")
def codec():
    return load_tokenizer(SEMANTIC_CODEC)


def test_it_stands_on_the_default_codecs_footing(codec):
    assert next(e for e in list_tokenizers() if e.name == SEMANTIC_CODEC).family == "neural"
    ours, default = codec.describe(), load_tokenizer(DEFAULT_CODEC).describe()
    for key in ("sample_rate", "causal", "lookahead_samples", "algorithmic_latency_ms", "nominal_bits_per_second"):
        assert ours[key] == default[key], key
    assert codec.frame_rate == 50.0 and ours["algorithmic_latency_ms"] == 20.0


def test_it_loads_without_any_teacher_folder_and_records_how_it_was_made():
    """The config names the causal teacher inside the encoder by its architecture (its weights are
    in the checkpoint), and the training record says how each teacher was made."""
    data = load_yaml(pretrained_path(SEMANTIC_CODEC) / "config.yaml")
    encoder = data["config"]["encoder"]
    assert encoder["kind"] == "dual" and encoder["teacher"]["weights"] == "checkpoint"
    assert encoder["teacher"]["causal"] is True and "path" not in encoder["teacher"]
    assert data["weights"] == "int8" and (pretrained_path(SEMANTIC_CODEC) / "model.safetensors").stat().st_size < 8e6
    training = data["training"]
    stage = training["stages"][0]
    assert stage["recipe"] == "configs/train/default-16k-aug.yaml" and stage["initialised_from"] is None
    assert "semantic.phone=" in stage["command"] and '"kind": "dual"' in stage["command"]
    assert training["total_wall_seconds"] <= 7200  # the 2-hour CPU budget
    teachers = {t["causal"]: t for t in training["teachers"]}
    assert set(teachers) == {True, False}  # the causal one inside the encoder, the centred one for the phone loss
    assert "--causal" in teachers[True]["command"] and "--causal" not in teachers[False]["command"]
    assert all("speech_aligned" in t["command"] and t["report"]["test_frame_accuracy"] > 0.5 for t in teachers.values())


def test_streaming_encode_and_decode_equal_offline_on_speech(codec, speech):
    assert_codec_streams_like_offline(codec, speech)


@torch.no_grad()
def test_its_first_codebook_says_more_about_phones_than_the_defaults(codec):
    """A cheap version of the bench's phone probe: how well the first codebook's code alone
    predicts the phone (majority phone per code, fitted on speech_aligned train, scored on
    test). The phone loss and the teacher branch act on that level first."""
    from audiolatent.data.manifest import frame_phone_labels

    entries = [e for e in read_manifest(builtin_corpus("speech_aligned")) if e.phones]

    def pairs(tok, split):
        out = []
        for entry in (e for e in entries if e.split == split):
            audio, _ = load_audio(entry.path, sample_rate=16000, mono=True)
            codes = tok.encode(audio.reshape(1, 1, -1)).streams[0].values[0, 0].tolist()
            labels = frame_phone_labels(entry.phones, len(codes), 50.0)  # the phone at each 20 ms frame's centre
            out += [(c, p) for c, p in zip(codes, labels) if p is not None]
        return out

    def accuracy(tok):
        table: dict = {}
        for c, p in pairs(tok, "train"):
            table.setdefault(c, {}).setdefault(p, 0)
            table[c][p] += 1
        best = {c: max(counts, key=counts.get) for c, counts in table.items()}
        test = pairs(tok, "test")
        return sum(best.get(c) == p for c, p in test) / len(test)

    ours, default = accuracy(codec), accuracy(load_tokenizer(DEFAULT_CODEC))
    assert ours > default + 0.05, (ours, default)
