"""Semantic training losses (distill, phone, ar, repa): known answers of the loss functions, the
gradient reaching the encoder only, the heads trained and resumed with the codec, config errors."""

from __future__ import annotations

import json

import pytest
import torch

from audiolatent.core.audio import load_audio
from audiolatent.core.errors import ConfigError
from audiolatent.data.corpus import builtin_corpus
from audiolatent.data.manifest import read_manifest
from audiolatent.tokenizers.codec import build_codec
from audiolatent.tokenizers.phone_teacher import PhoneTeacher
from audiolatent.train.config import SemanticConfig, load_train_config
from audiolatent.train.semantic import (CausalPredictor, SemanticObjective, cosine_distance,
                                        fraction_of_variance_unexplained, standardise_features)
from tests.train.test_trainer import TINY_MODEL, assert_resume_is_exact, dataset, tiny_config, train  # noqa: F401


@pytest.fixture(scope="module")
def phone_dir(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("teacher") / "phones"
    PhoneTeacher(["sil", "a", "b", "c"], width=8, dilations=(1, 2)).save(folder)
    return str(folder)


def test_fraction_of_variance_unexplained_known_answers():
    torch.manual_seed(0)
    y = torch.randn(3, 4, 50) * torch.tensor([1.0, 2.0, 5.0, 0.1])[None, :, None] + 3.0
    assert float(fraction_of_variance_unexplained(y, y)) == pytest.approx(0.0, abs=1e-7)
    mean = y.mean(dim=(0, 2), keepdim=True).expand_as(y)
    assert float(fraction_of_variance_unexplained(mean, y)) == pytest.approx(1.0, abs=1e-4)
    # a prediction with half the deviation from the mean leaves a quarter of the variance
    assert float(fraction_of_variance_unexplained(mean + 0.5 * (y - mean), y)) == pytest.approx(0.25, abs=1e-4)
    # scale free: shrinking latent and prediction together does not lower it
    noisy = y + 0.3 * torch.randn_like(y)
    assert float(fraction_of_variance_unexplained(0.01 * noisy, 0.01 * y)) == pytest.approx(
        float(fraction_of_variance_unexplained(noisy, y)), rel=1e-3)
    # a constant channel has nothing to predict and is left out; an all-constant target costs 0
    z = y.clone()
    z[:, 0] = 7.0
    assert float(fraction_of_variance_unexplained(mean, z)) == pytest.approx(1.0, abs=1e-4)
    assert float(fraction_of_variance_unexplained(torch.randn(2, 3, 5), torch.ones(2, 3, 5))) == 0.0


def test_cosine_distance_and_standardisation():
    x = torch.randn(2, 6, 10)
    assert float(cosine_distance(x, 3 * x)) == pytest.approx(0.0, abs=1e-6)
    assert float(cosine_distance(x, -x)) == pytest.approx(2.0, abs=1e-6)
    s = standardise_features(5 + 2 * x)
    assert s.mean(dim=(0, 2)).abs().max() < 1e-5 and (s.std(dim=(0, 2), unbiased=False) - 1).abs().max() < 1e-3


def test_causal_predictor_sees_only_the_past():
    torch.manual_seed(0)
    g = CausalPredictor(4, hidden=8, layers=3, kernel_size=3)
    x = torch.randn(1, 4, 20)
    y = x.clone()
    y[..., 12] += 1.0
    assert torch.equal(g(x)[..., :12], g(y)[..., :12]) and not torch.equal(g(x)[..., 12:], g(y)[..., 12:])


def objective(model: dict = TINY_MODEL, **weights) -> tuple[SemanticObjective, torch.nn.Module]:
    torch.manual_seed(0)
    codec = build_codec(model)
    codec.train()(0.3 * torch.randn(2, 1, 1600))  # initialises the codebooks (a fresh RVQ's z_q is constant)
    config = SemanticConfig(**weights)
    return SemanticObjective(config, codec.bottleneck.dim, codec.sample_rate / codec.encoder_hop, codec.sample_rate), codec


@pytest.mark.parametrize("weights", [
    {"teacher": "mel-16k", "distill": 1.0},
    {"teacher": "mel-16k", "distill": 1.0, "distill_kind": "l1"},
    {"teacher": "mel-16k", "repa": 1.0},
    {"ar": 1.0, "ar_options": {"dim": 8, "layers": 2}},
    "phone",
], ids=["distill-cosine", "distill-l1", "repa", "ar", "phone"])
def test_each_loss_trains_the_encoder_and_leaves_the_decoder_alone(weights, phone_dir):
    weights = {"phone_teacher": phone_dir, "phone": 1.0} if weights == "phone" else weights
    semantic, codec = objective(**weights)
    x = 0.3 * torch.randn(2, 1, 1600)
    out = codec.train()(x)
    losses = semantic.losses(x, out)
    assert set(losses) == set(semantic.weights) and all(torch.isfinite(v) and v > 0 for v in losses.values())
    semantic.weighted(losses).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in codec.encoder.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in codec.decoder.parameters())
    assert all(p.grad is not None for p in semantic.heads.parameters())
    teachers = [t for t in (semantic.teacher, semantic.phone_teacher) if t is not None]
    assert all(not p.requires_grad for t in teachers for p in t.parameters())  # frozen


def test_phone_targets_are_the_teacher_argmax(phone_dir):
    semantic, codec = objective(phone_teacher=phone_dir, phone=1.0)
    x = 0.3 * torch.randn(2, 1, 1600)
    out = codec.train()(x)
    frames = out["z_q"].shape[-1]
    labels = semantic.phone_teacher.features_at(x, 16000, 16000 / codec.encoder_hop, frames).argmax(1)
    expected = torch.nn.functional.cross_entropy(semantic.heads["phone"](out["first_level"]), labels)
    assert float(semantic.losses(x, out)["phone"].detach()) == pytest.approx(float(expected.detach()), rel=1e-6)


def test_a_phone_teacher_used_for_both_losses_runs_once_and_gives_the_same_targets(phone_dir, monkeypatch):
    shared, codec = objective(teacher=f"phone:{phone_dir}", distill=1.0, phone=1.0)
    # another spelling of the folder: not recognised as the same teacher, so it is loaded a second time
    separate, _ = objective(teacher=f"phone:{phone_dir}", distill=1.0, phone=1.0, phone_teacher=phone_dir + "/")
    assert shared.phone_teacher is shared.teacher and separate.phone_teacher is not separate.teacher
    x = 0.3 * torch.randn(2, 1, 1600)
    out = codec.train()(x)
    calls = []
    original = type(shared.teacher).features
    monkeypatch.setattr(type(shared.teacher), "features", lambda self, *a: calls.append(self) or original(self, *a))
    shared.heads.load_state_dict(separate.heads.state_dict())
    a = shared.losses(x, out)
    assert len(calls) == 1  # one pass of the teacher network for distill and phone
    b = separate.losses(x, out)
    assert float(a["phone"].detach()) == pytest.approx(float(b["phone"].detach()), rel=1e-5)
    assert float(a["distill"].detach()) == pytest.approx(float(b["distill"].detach()), rel=1e-5)


def test_the_phone_folder_comes_from_either_key():
    assert SemanticConfig(teacher="phone:/t", phone=1.0).phone_folder() == "/t"
    assert SemanticConfig(teacher={"kind": "phone", "path": "/t"}, phone=1.0).phone_folder() == "/t"
    assert SemanticConfig(teacher="phone:/t", phone_teacher="/p", phone=1.0).phone_folder() == "/p"
    assert SemanticConfig(teacher="mel-16k", phone=1.0).phone_folder() is None


def test_distillation_targets_the_first_rvq_level():
    semantic, codec = objective(teacher="mel-16k", distill=1.0)
    out = codec.eval()(0.3 * torch.randn(1, 1, 800))
    codes = out["streams"][0]
    first = codec.bottleneck.decode([codes[:, :1]])
    assert torch.allclose(out["first_level"], first, atol=1e-5) and not torch.allclose(out["first_level"], out["z_q"])


def test_training_with_every_loss_falls_and_resumes_exactly(dataset, tmp_path, phone_dir):  # noqa: F811
    semantic = {"teacher": "mel-16k", "distill": 1.0, "phone_teacher": phone_dir, "phone": 0.5, "ar": 0.5,
                "ar_options": {"dim": 8}, "repa": 0.5}
    config = tiny_config(steps=8, checkpoint_every=4, discriminators=[], semantic=semantic)
    trainer, _ = train(config, dataset, tmp_path / "straight")
    assert len(trainer.optimizer.param_groups) == 2  # the heads learn with the codec
    assert_resume_is_exact(config, dataset, tmp_path)  # the heads' weights and optimiser state are restored
    records = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert all(f"loss/{name}" in records[-1] for name in ("distill", "phone", "ar", "repa"))
    assert "grad_norm/semantic" in records[-1]


def test_distillation_makes_the_latent_predict_the_teacher():
    # Real speech (two 0.5 s excerpts): the latent of a small STFT encoder at 50 Hz comes to
    # predict the teacher's standardised log-mel, frame by frame. A continuous latent, so that the
    # test measures the teacher, resampling and head chain rather than how fast a codebook moves.
    entry = next(e for e in read_manifest(builtin_corpus("speech_real")) if e.split == "train" and e.duration >= 2.0)
    audio, _ = load_audio(entry.path, sample_rate=16000, mono=True)
    audio = audio.reshape(-1)
    x = torch.stack([audio[8000:16000], audio[16000:24000]])[:, None]
    model = {"sample_rate": 16000, "encoder": {"kind": "stft-convnext", "dimension": 16, "hop_length": 320, "dim": 32,
                                               "n_layers": 1, "intermediate_dim": 64},
             "decoder": {"kind": "vocos", "dim": 32, "n_layers": 1, "intermediate_dim": 64}, "bottleneck": {"kind": "identity"}}
    semantic, codec = objective(model, teacher="mel-16k", distill=1.0)
    params = list(codec.encoder.parameters()) + list(semantic.heads.parameters())
    optimiser = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for _ in range(60):
        optimiser.zero_grad()
        loss = semantic.losses(x, codec.train()(x))["distill"]
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[0] > 0.8 and min(losses[-5:]) < 0.7 * losses[0]


@pytest.mark.parametrize("semantic, message", [
    ({"distill": 1.0}, "need semantic.teacher"),
    ({"repa": 1.0}, "need semantic.teacher"),
    ({"phone": 1.0, "teacher": "mel-16k"}, "needs a phone teacher"),
    ({"distill": 1.0, "teacher": "mel-16k", "distill_kind": "l2"}, "cosine or l1"),
    ({"ar": 1.0, "ar_options": {"width": 8}}, "unknown option"),
    ({"ar": -1.0}, "a weight >= 0"),
    ({"distill": 1.0, "teacher": "nonsense-tokenizer"}, "nonsense-tokenizer"),
])
def test_bad_semantic_configs_are_config_errors(semantic, message, dataset, tmp_path):  # noqa: F811
    with pytest.raises(ConfigError, match=message):
        train(tiny_config(semantic=semantic, discriminators=[]), dataset, tmp_path / "run")


def test_semantic_options_load_from_a_recipe():
    config = load_train_config(tiny_config(), ["semantic.ar=0.1"])
    assert config.semantic.ar == 0.1 and config.semantic.active
    assert not load_train_config(tiny_config()).semantic.active
