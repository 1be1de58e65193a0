"""The dual (X-Codec) encoder: a frozen causal teacher beside the acoustic encoder, streaming exactly."""

from __future__ import annotations

import shutil

import pytest
import torch

from audiolatent.bench.streaming import probe_encoder_lookahead
from audiolatent.core.config import PACKAGED_CONFIGS, load_yaml
from audiolatent.core.errors import ConfigError, StreamingError
from audiolatent.testing import random_chunk_sizes
from audiolatent.tokenizers.codec import NeuralCodec, build_codec
from audiolatent.tokenizers.phone_teacher import PhoneTeacher, load_phone_teacher

PHONES = ["aa", "iy", "pau", "s"]


def teacher_folder(tmp_path, causal=True, name="teacher"):
    torch.manual_seed(1)
    teacher = PhoneTeacher(PHONES, width=12, dilations=(1, 2), causal=causal)
    return teacher.save(tmp_path / name, {})


def dual_config(folder, **extra) -> dict:
    data = load_yaml(PACKAGED_CONFIGS / "codecs" / "tiny-16k.yaml")
    data["encoder"] = {"kind": "dual", "acoustic": data["encoder"], "teacher": f"phone:{folder}", "semantic_dim": 8,
                       **extra}
    return data


@pytest.fixture(scope="module")
def codec(tmp_path_factory):
    folder = teacher_folder(tmp_path_factory.mktemp("dual"))
    torch.manual_seed(0)
    codec = build_codec(dual_config(folder)).eval()
    with torch.no_grad():  # the fusion starts at the acoustic path alone; give the teacher a say
        codec.encoder.fuse.weight.normal_(0, 0.2)
    return codec


def audio(n, batch=2, seed=0):
    return 0.3 * torch.randn(batch, 1, n, generator=torch.Generator().manual_seed(seed))


def test_it_is_a_causal_codec_whose_decoder_mirrors_the_acoustic_encoder(codec):
    assert isinstance(codec, NeuralCodec) and codec.causal and codec.lookahead == 0
    assert codec.encoder.stack == 2 and codec.encoder.semantic.in_channels == 24  # two 100 Hz frames per 50 Hz frame
    assert type(codec.decoder).__name__ == "SEANetDecoder" and codec.decoder.hop_length == 320
    assert not any(p.requires_grad for p in codec.encoder.teacher.parameters())
    codec.train()
    assert not codec.encoder.teacher.training  # frozen, always in eval mode
    codec.eval()


def test_the_fusion_starts_as_the_acoustic_encoder(tmp_path):
    torch.manual_seed(0)
    codec = build_codec(dual_config(teacher_folder(tmp_path))).eval()
    x = audio(3200)
    with torch.no_grad():
        assert torch.allclose(codec.encoder(x), codec.encoder.acoustic(x), atol=1e-6)


def test_the_teacher_reaches_the_latent_and_gets_no_gradient(codec):
    x = audio(3200).requires_grad_(True)
    codec.train()
    out = codec(x)
    out["audio"].pow(2).mean().backward()
    codec.eval()
    assert codec.encoder.semantic.conv.weight.grad is not None and codec.encoder.fuse.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in codec.encoder.teacher.parameters())
    codec.zero_grad()
    with torch.no_grad():  # the teacher's features change the latent
        frames = codec.encoder.teacher_frames(x)
        assert frames.shape == (2, 24, 10)
        z = codec.encoder(x)
        semantic = torch.nn.functional.gelu(codec.encoder.semantic(torch.zeros_like(frames)))
        acoustic_only = codec.encoder.fuse(torch.cat([codec.encoder.acoustic(x), semantic], 1))
        assert (z - acoustic_only).abs().max() > 1e-3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_encode_streams_like_offline(codec, seed):
    x = audio(320 * 13, seed=seed)
    offline = codec.encode(x).streams[0].values
    sizes = random_chunk_sizes(x.shape[-1], 320, torch.Generator().manual_seed(seed), max_units=4)
    with torch.no_grad(), codec.streaming(2):
        chunks, start = [], 0
        for size in sizes:
            chunks.append(codec.encode(x[..., start : start + size]).streams[0].values)
            start += size
    assert torch.equal(torch.cat(chunks, -1), offline)
    with torch.no_grad(), codec.streaming(2):  # the latent before quantisation, too
        z, start = [], 0
        for size in sizes:
            z.append(codec.encoder(x[..., start : start + size]))
            start += size
    assert (torch.cat(z, -1) - codec.encoder(x)).abs().max() <= 1e-5


def test_no_frame_reads_past_its_hop(codec):
    assert probe_encoder_lookahead(codec, 16000) <= 0
    x = audio(3200)
    y = x.clone()
    y[..., 1600:] += 0.3 * torch.randn(2, 1, 1600)  # frames 0-4 end by sample 1600
    with torch.no_grad():
        a, b = codec.encoder(x), codec.encoder(y)
    assert torch.equal(a[..., :5], b[..., :5]) and not torch.allclose(a[..., 5], b[..., 5])


def test_a_whole_signal_teacher_makes_an_offline_codec(tmp_path):
    codec = build_codec(dual_config(teacher_folder(tmp_path, causal=False))).eval()
    assert not codec.causal and codec.lookahead is None and not codec.streamable
    assert codec.encoder.stack == 1
    assert codec.encode(audio(3200)).streams[0].values.shape == (2, 4, 10)
    with pytest.raises(StreamingError, match="does not stream"):
        with codec.streaming(1):
            pass


def test_a_phone_teacher_without_its_folder_needs_the_checkpoint_to_hold_its_weights():
    from audiolatent.tokenizers.units import build_teacher

    spec = PhoneTeacher(PHONES, width=12, dilations=(1, 2), causal=True, output="hidden").spec()
    assert build_teacher(spec).dim == 12  # the architecture alone: a checkpoint fills in the weights
    with pytest.raises(ConfigError, match="needs `path`"):  # never a random teacher by accident
        build_teacher({k: v for k, v in spec.items() if k != "weights"})
    with pytest.raises(ConfigError, match="width"):
        build_teacher({k: v for k, v in spec.items() if k != "width"})


def test_bad_configs_are_clear_errors(tmp_path):
    folder = teacher_folder(tmp_path)
    data = dual_config(folder)
    with pytest.raises(ConfigError, match="acoustic"):
        build_codec({**data, "encoder": {"kind": "dual", "teacher": f"phone:{folder}"}})
    with pytest.raises(ConfigError, match="teacher"):
        build_codec({**data, "encoder": {"kind": "dual", "acoustic": data["encoder"]["acoustic"]}})
    with pytest.raises(ConfigError, match="cannot itself be dual"):
        build_codec({**data, "encoder": {**data["encoder"], "acoustic": {"kind": "dual"}}})
    with pytest.raises(ConfigError, match="hop dividing"):  # a 300-sample hop is not whole 160-sample teacher hops
        acoustic = {**data["encoder"]["acoustic"], "ratios": [3, 4, 5, 5]}
        build_codec({**data, "encoder": {**data["encoder"], "acoustic": acoustic}})


def test_the_trainer_trains_it_with_the_teacher_reconstruction_loss_and_reloads_it(tmp_path):
    from audiolatent.core.registry import load_tokenizer
    from tests.train.test_trainer import tiny_config, train, write_dataset

    folder = str(teacher_folder(tmp_path))
    model = {"sample_rate": 16000, "bottleneck": {"kind": "rvq", "n_codebooks": 2, "codebook_size": 16},
             "encoder": {"kind": "dual", "teacher": f"phone:{folder}", "semantic_dim": 4,
                         "acoustic": {"dimension": 8, "n_filters": 4, "ratios": [4, 8, 10], "n_residual_layers": 1}}}
    config = tiny_config(model=model, steps=4, checkpoint_every=4, discriminators=[],
                         data={"crop_seconds": 0.2, "batch_size": 2, "train_split": None, "eval_split": None},
                         semantic={"teacher": f"phone:{folder}", "repa": 1.0})
    data = write_dataset(tmp_path / "data")
    trainer, _ = train(config, data, tmp_path / "run")
    assert trainer.codec.encoder.fuse.weight[:, 8:].abs().sum() > 0  # the teacher's branch was admitted
    original = load_phone_teacher(folder, output="hidden").state_dict()
    shutil.rmtree(folder)  # the checkpoint names the teacher by its architecture and holds its weights
    codec = load_tokenizer(str(tmp_path / "run"))
    assert codec.config.encoder["teacher"] == {"kind": "phone", "weights": "checkpoint", "phones": PHONES, "width": 12,
                                               "dilations": [1, 2], "causal": True, "output": "hidden"}
    assert set(codec.encoder.teacher.state_dict()) == set(original)
    for key, value in codec.encoder.teacher.state_dict().items():
        assert torch.equal(value, original[key])  # untouched by training, and saved with the codec
    x = audio(3200)
    assert torch.equal(codec.encode(x).streams[0].values, trainer.codec.eval().encode(x).streams[0].values)
