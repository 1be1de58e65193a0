"""The shipped codec-16k-default: registered, loadable offline, within its spec, and streaming."""

import pytest
import torch

from audiolatent import load_tokenizer
from audiolatent.core.config import PACKAGED_CONFIGS, load_yaml
from audiolatent.core.registry import list_tokenizers
from audiolatent.testing import assert_codec_streams_like_offline
from audiolatent.tokenizers.pretrained import DEFAULT_CODEC, pretrained_path


@pytest.fixture(scope="module")
def codec():
    return load_tokenizer(DEFAULT_CODEC)


def test_it_is_registered_and_meets_its_spec(codec):
    entry = next(e for e in list_tokenizers() if e.name == DEFAULT_CODEC)
    assert entry.family == "neural"
    info = codec.describe()
    assert info["causal"] and info["lookahead_samples"] == 0
    assert info["algorithmic_latency_ms"] <= 40.0
    assert info["nominal_bits_per_second"] <= 1600.0
    assert info["sample_rate"] == 16000


def test_the_package_carries_small_weights_and_their_provenance():
    path = pretrained_path(DEFAULT_CODEC)
    assert (path / "model.safetensors").stat().st_size < 8e6
    data = load_yaml(path / "config.yaml")
    assert data["weights"] == "int8"
    training = data["training"]
    stages = training["stages"]
    recipes = [stage["recipe"] for stage in stages]
    assert recipes == ["configs/train/default-16k-aug.yaml"]  # one run from scratch
    assert stages[0]["initialised_from"] is None and stages[0]["steps"] == load_yaml(PACKAGED_CONFIGS / "train" / "default-16k-aug.yaml")["steps"]
    assert all((PACKAGED_CONFIGS / "train" / recipe.split("/")[-1]).is_file() for recipe in recipes)
    assert all(stage["steps"] > 0 and stage["wall_seconds"] > 0 for stage in stages)
    # the budget: at most two hours of training on the 2-core CPU, all stages together
    assert training["total_wall_seconds"] == sum(stage["wall_seconds"] for stage in stages) <= 7200
    # trained on the built-in speech corpora only (their train splits: the recipes say train_split: train)
    assert all(any(corpus in str(d) for corpus in ("speech_real", "speech_aligned")) for stage in stages for d in stage["data"])
    assert all(load_yaml(PACKAGED_CONFIGS / "train" / r.split("/")[-1])["data"]["train_split"] == "train" for r in recipes)


def test_streaming_encode_and_decode_equal_offline_on_speech(codec, speech):
    assert_codec_streams_like_offline(codec, speech)


def _stream_chunks(codec, speech, warm_up: bool) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Codes and audio of ``speech`` streamed in 20 ms chunks by a freshly loaded copy of the codec,
    and whether entering ``streaming()`` left the global RNG as it was."""
    fresh = load_tokenizer(DEFAULT_CODEC)
    codes, audio = [], []
    rng = torch.get_rng_state()
    with torch.inference_mode(), fresh.streaming(1, warm_up=warm_up):
        rng_kept = torch.equal(torch.get_rng_state(), rng)
        for start in range(0, 12 * codec.hop_length, codec.hop_length):
            latent = fresh.encode(speech[..., start : start + codec.hop_length])
            codes.append(latent.streams[0].values)
            audio.append(fresh.decode(latent))
    return torch.cat(codes, -1), torch.cat(audio, -1), rng_kept


def test_warm_up_on_streaming_entry_does_not_disturb_the_stream_or_the_rng(codec, speech):
    """The silent chunk run on entry leaves every state fresh: the first chunks are bit for bit
    those of a stream entered without it, and the caller's random numbers are untouched."""
    warm_codes, warm_audio, rng_kept = _stream_chunks(codec, speech, warm_up=True)
    cold_codes, cold_audio, _ = _stream_chunks(codec, speech, warm_up=False)
    assert rng_kept
    assert torch.equal(warm_codes, cold_codes) and torch.equal(warm_audio, cold_audio)
    assert warm_audio.abs().max() > 0  # speech, not the silence of the warm-up


@torch.no_grad()
def test_it_reconstructs_speech(codec, speech):
    from audiolatent.bench.align import align
    from audiolatent.bench.distortion import mel_distance

    recon = codec.decode(codec.encode(speech))
    ref, est, _ = align(speech, recon, 4 * codec.hop_length)
    noise = 0.05 * torch.randn_like(ref)
    # a trained codec is far closer to the input than noise is (mel distance 0 = identical)
    assert float(mel_distance(ref, est, 16000)[0]) < 0.5 * float(mel_distance(ref, noise, 16000)[0])


def test_the_warm_varrate_recipe_takes_the_whole_encoder_and_decoder_of_the_default():
    """``varrate-16k-warm`` starts ``--init-from codec-16k-default --init-partial``: every encoder
    and decoder tensor must fit, so that only the segmenting bottleneck starts fresh."""
    from audiolatent.tokenizers.codec import build_codec
    from audiolatent.train.checkpointing import load_training_checkpoint

    recipe = load_yaml(PACKAGED_CONFIGS / "train" / "varrate-16k-warm.yaml")
    model = build_codec(load_yaml((PACKAGED_CONFIGS / "train" / recipe["model"]).resolve()))
    shipped = load_training_checkpoint(pretrained_path(DEFAULT_CODEC), need_state=False).weights
    current = model.state_dict()
    fits = {k for k, v in shipped.items() if k in current and current[k].shape == v.shape}
    parts = {k for k in current if k.startswith(("encoder.", "decoder."))}
    assert parts and parts <= fits, sorted(parts - fits)[:5]
    assert all(k.startswith("bottleneck.") for k in set(current) - fits)
