"""Opt-in learned metrics (Whisper WER, speaker similarity) on small random-weight models.

No download is attempted: the models are built from tiny configs and injected (``asr=``,
``encoder=`` or a monkeypatched loader); the missing-weights case runs with the hub offline
and an empty cache.
"""

from __future__ import annotations

import copy
import math
import sys

import pytest
import torch

transformers = pytest.importorskip("transformers")

from audiolatent.bench import learned_metrics as lm  # noqa: E402
from audiolatent.bench.metrics import MetricUnavailable, available_metrics, get_metric  # noqa: E402
from audiolatent.core.audio import resample  # noqa: E402

WORDS = ("the", "cat", "sat", "on", "mat", "a", "dog", "ran")
SPECIALS = ("<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|notimestamps|>")


@pytest.fixture(autouse=True)
def _no_remembered_models():
    lm.forget_loaded_models()
    yield
    lm.forget_loaded_models()


@pytest.fixture(scope="module")
def asr() -> lm.WhisperASR:
    """A 2-layer Whisper (d_model 16) with a 1,545-token vocabulary: 8 words, letters, the
    special tokens and the 1,501 timestamps, so language, task and long-form decoding all run."""
    vocab = {"Ġ" + w: i for i, w in enumerate(WORDS)}
    for c in "abcdefghijklmnopqrstuvwxyzĠ":
        vocab.setdefault(c, len(vocab))
    for token in SPECIALS + tuple(f"<|{i * 0.02:.2f}|>" for i in range(1501)):
        vocab[token] = len(vocab)
    tokenizer = transformers.WhisperTokenizer(vocab=vocab, merges=[], extra_special_tokens=list(SPECIALS[1:]))
    ids = {t: vocab[t] for t in SPECIALS}
    eos = ids["<|endoftext|>"]
    config = transformers.WhisperConfig(
        vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80, max_source_positions=1500,
        max_target_positions=64, pad_token_id=eos, bos_token_id=eos, eos_token_id=eos,
        decoder_start_token_id=ids["<|startoftranscript|>"], begin_suppress_tokens=None, suppress_tokens=None,
    )
    torch.manual_seed(0)
    model = transformers.WhisperForConditionalGeneration(config).eval()
    # a checkpoint's own generation config (one derived from the model config is not kept on reload);
    # random weights favour timestamps, so short-form output is kept to words to give a transcript
    model.generation_config = transformers.GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
        lang_to_id={"<|en|>": ids["<|en|>"]}, is_multilingual=True, no_timestamps_token_id=ids["<|notimestamps|>"],
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}, max_new_tokens=8,
        suppress_tokens=list(range(ids["<|startoftranscript|>"], len(vocab))), begin_suppress_tokens=[eos],
    )
    return lm.WhisperASR(model, transformers.WhisperFeatureExtractor(), tokenizer)


@pytest.fixture(scope="module")
def encoder() -> lm.SpeakerEncoder:
    """A 1-layer WavLM x-vector model (hidden 16, 8-dim embeddings, 20 ms frames like the real one)."""
    config = transformers.WavLMConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, conv_dim=(16, 16, 16, 16),
        conv_kernel=(10, 3, 3, 3), conv_stride=(5, 4, 4, 4), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        tdnn_dim=(16, 16), tdnn_kernel=(3, 1), tdnn_dilation=(1, 1), xvector_output_dim=8, num_buckets=16,
        max_bucket_distance=32,
    )
    torch.manual_seed(0)
    model = transformers.WavLMForXVector(config).eval()
    return lm.SpeakerEncoder(model, transformers.Wav2Vec2FeatureExtractor(do_normalize=False))


def test_registered_opt_in_with_metadata():
    wer, sim = get_metric("whisper_wer"), get_metric("speaker_similarity")
    assert wer.axis == sim.axis == "distortion" and wer.opt_in and sim.opt_in
    assert wer.higher_is_better is False and wer.value_range == (0.0, math.inf) and wer.needs_transcript
    assert sim.higher_is_better is True and sim.value_range == (-1.0, 1.0) and sim.needs_reference
    for m in (wer, sim):
        assert m.speech_only and m.sample_rate == 16000 and m.package == "transformers"
        assert m.pip_name == "'audiolatent[adapters]'"
    default = {m.name for m in available_metrics("distortion", has_transcript=True, installed_only=False)}
    assert not default & {"whisper_wer", "speaker_similarity"}  # no default selection runs them
    asked = {m.name for m in available_metrics("distortion", has_transcript=True, installed_only=False, opt_in=True)}
    assert {"whisper_wer", "speaker_similarity", "asr_wer"} <= asked


def test_cosine_similarity_known_answers():
    assert lm.cosine_similarity(torch.tensor([3.0, 4.0]), torch.tensor([4.0, 3.0])) == pytest.approx(0.96, abs=1e-12)
    assert lm.cosine_similarity(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) == 0.0
    assert lm.cosine_similarity(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.0])) == pytest.approx(1.0)
    assert lm.cosine_similarity(torch.tensor([1.0, -1.0]), torch.tensor([-2.0, 2.0])) == pytest.approx(-1.0)
    assert lm.cosine_similarity(torch.zeros(3), torch.ones(3)) == 0.0


def test_forced_transcript_goes_through_decoding_and_asr_wer_normalisation(asr, speech, monkeypatch):
    vocab = asr.tokenizer.get_vocab()
    spoken = [vocab["<|startoftranscript|>"], vocab["<|en|>"], vocab["<|transcribe|>"], vocab["<|notimestamps|>"]]
    spoken += [vocab["Ġ" + w] for w in ("the", "cat", "sat", "on", "the", "mat")] + [vocab["<|endoftext|>"]]
    monkeypatch.setattr(asr.model, "generate", lambda features, **options: torch.tensor([spoken]))
    assert lm.whisper_transcribe(speech[0], 16000, asr=asr) == "the cat sat on the mat"
    assert float(lm.whisper_wer(speech, speech, 16000, ["The cat sat, on the mat!"], asr=asr)[0]) == 0.0
    assert float(lm.whisper_wer(speech, speech, 16000, ["the cat sat on a mat"], asr=asr)[0]) == pytest.approx(1 / 6)
    assert float(lm.whisper_wer(speech, speech, 16000, ["the cat"], asr=asr)[0]) == pytest.approx(2.0)  # 4 insertions


def test_whisper_wer_with_random_weights(asr, speech, monkeypatch):
    transcript = lm.whisper_transcribe(speech[0], 16000, asr=asr)
    assert transcript and transcript == lm.whisper_transcribe(speech[0], 16000, asr=asr)  # greedy: deterministic
    assert float(lm.whisper_wer(speech, speech, 16000, [transcript], asr=asr)[0]) == 0.0
    monkeypatch.setattr(lm, "load_whisper", lambda weights=None: asr)  # the registry path, no download
    batch = torch.cat([speech, 0.5 * speech])[..., :24000]
    value = get_metric("whisper_wer")(batch, resample(batch, 16000, 24000), 24000,
                                      transcripts=["at the tone the time will be", "exactly"])
    assert value.shape == (2,) and all(get_metric("whisper_wer").in_range(float(v)) for v in value)
    with pytest.raises(ValueError, match="2 signals but 1 transcripts"):
        lm.whisper_wer(batch, batch, 16000, ["one"], asr=asr)


def test_whisper_decodes_past_30_seconds_long_form(asr, monkeypatch):
    generation = copy.deepcopy(asr.model.generation_config)
    generation.suppress_tokens, generation.max_new_tokens = None, None  # long form needs the timestamps
    monkeypatch.setattr(asr.model, "generation_config", generation)
    calls = []
    generate = asr.model.generate
    monkeypatch.setattr(asr.model, "generate", lambda features, **kw: calls.append(features.shape) or generate(features, **kw))
    audio = 0.1 * torch.randn(1, 1, 31 * 16000, generator=torch.Generator().manual_seed(0))
    assert isinstance(lm.whisper_transcribe(audio[0], 16000, asr=asr), str)
    assert calls[0][-1] > 3000  # the whole 31 s reached the model, not the first 30 s window only


def test_speaker_similarity_with_random_weights(encoder, speech, monkeypatch):
    same = lm.speaker_similarity(speech, speech, 16000, encoder=encoder)
    assert same.shape == (1,) and float(same[0]) == pytest.approx(1.0, abs=1e-6)
    noise = 0.1 * torch.randn(speech.shape, generator=torch.Generator().manual_seed(1))
    other = float(lm.speaker_similarity(speech, noise, 16000, encoder=encoder)[0])
    assert -1.0 <= other < 0.9999
    monkeypatch.setattr(lm, "load_speaker_encoder", lambda weights=None: encoder)
    metric = get_metric("speaker_similarity")
    values = metric(torch.cat([speech, noise]), torch.cat([speech, speech]), 16000)
    assert values.shape == (2,) and all(metric.in_range(float(v)) for v in values)
    assert float(values[0]) == pytest.approx(1.0, abs=1e-6) and float(values[1]) == pytest.approx(other, abs=1e-6)
    with pytest.warns(RuntimeWarning, match="shorter than 0.5 s"):
        assert math.isnan(float(metric(speech[..., :4000], speech[..., :4000], 16000)[0]))


@pytest.mark.parametrize("name, hub_id, env", [
    ("whisper_wer", lm.WHISPER_WEIGHTS, lm.WHISPER_ENV),
    ("speaker_similarity", lm.SPEAKER_WEIGHTS, lm.SPEAKER_ENV),
])
def test_missing_weights_is_one_line_naming_the_id(name, hub_id, env, speech, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv(env, raising=False)
    extras = {"transcripts": ["hello"]} if name == "whisper_wer" else {}
    with pytest.raises(MetricUnavailable) as caught:
        get_metric(name)(speech, speech, 16000, **extras)
    message = str(caught.value)
    assert hub_id in message and "\n" not in message and f"hf download {hub_id}" in message and env in message
    with pytest.raises(MetricUnavailable, match=hub_id):  # the failure is remembered
        get_metric(name)(speech, speech, 16000, **extras)
    monkeypatch.setenv(env, "someone/not-cached")
    with pytest.raises(MetricUnavailable, match="someone/not-cached"):
        get_metric(name)(speech, speech, 16000, **extras)


def test_missing_transformers_names_the_extra(speech, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MetricUnavailable, match=r"pip install 'audiolatent\[adapters\]'"):
        lm.load_whisper()
    with pytest.raises(MetricUnavailable, match=r"pip install 'audiolatent\[adapters\]'"):
        lm.load_speaker_encoder()


def test_weights_from_a_local_directory_load_through_the_real_loaders(asr, encoder, speech, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    for part in (asr.model, asr.feature_extractor, asr.tokenizer):
        part.save_pretrained(tmp_path / "whisper")
    for part in (encoder.model, encoder.feature_extractor):
        part.save_pretrained(tmp_path / "speaker")
    monkeypatch.setenv(lm.WHISPER_ENV, str(tmp_path / "whisper"))
    monkeypatch.setenv(lm.SPEAKER_ENV, str(tmp_path / "speaker"))
    loaded = lm.load_whisper()
    assert loaded.transcribe(speech[0, 0].numpy()) == asr.transcribe(speech[0, 0].numpy())
    assert lm.load_whisper() is loaded  # once per process
    assert float(get_metric("speaker_similarity")(speech, speech, 16000)[0]) == pytest.approx(1.0, abs=1e-6)
