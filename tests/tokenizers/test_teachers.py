"""Teachers: frame timing, resampling in time, HuBERT/WavLM layers through transformers (random weights)."""

from __future__ import annotations

import pytest
import torch

from audiolatent.core.errors import ConfigError
from audiolatent.core.registry import load_tokenizer
from audiolatent.tokenizers.teachers import HFTeacher, TokenizerTeacher, resample_frames

transformers = pytest.importorskip("transformers")


def _tiny(model_class: str = "HubertModel", config_class: str = "HubertConfig"):
    """A HuBERT/WavLM with HuBERT Base's convolutional front end (stride 320, field 400) and a tiny body."""
    torch.manual_seed(0)
    config = getattr(transformers, config_class)(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )
    return getattr(transformers, model_class)(config).eval()


def test_resampling_is_exact_for_a_linear_ramp_and_holds_the_ends():
    src = (torch.arange(10, dtype=torch.float64) * 320 + 199.5) / 16000  # HuBERT's centres
    feats = torch.stack([3.0 * src.float() + 1.0, -src.float()])[None]  # [1, 2, 10], linear in time
    dst = (torch.arange(25, dtype=torch.float64) + 0.5) / 100.0  # 100 Hz frames
    out = resample_frames(feats, src, dst)
    inside = (dst >= src[0]) & (dst <= src[-1])
    expected = torch.stack([3.0 * dst.float() + 1.0, -dst.float()])[None]
    assert torch.allclose(out[..., inside], expected[..., inside], atol=1e-6)
    assert torch.equal(out[..., ~inside & (dst < src[0])], feats[..., :1].expand(1, 2, int((dst < src[0]).sum())))
    assert torch.equal(out[..., ~inside & (dst > src[-1])], feats[..., -1:].expand(1, 2, int((dst > src[-1]).sum())))


def test_equal_grids_give_the_features_back():
    feats = torch.randn(2, 4, 7)
    centres = (torch.arange(7, dtype=torch.float64) + 0.5) / 50
    assert torch.allclose(resample_frames(feats, centres, centres), feats)


@pytest.mark.parametrize("model_class,config_class", [("HubertModel", "HubertConfig"), ("WavLMModel", "WavLMConfig")])
def test_hf_teacher_layers_and_timing(model_class, config_class):
    model = _tiny(model_class, config_class)
    teacher = HFTeacher(model, layer=2)
    assert (teacher.receptive_field, teacher.stride, teacher.frame_rate, teacher.dim) == (400, 320, 50.0, 32)
    audio = 0.1 * torch.randn(2, 1, 16000)
    feats = teacher.features(audio, 16000)
    assert feats.shape == (2, 32, 49)  # floor((16000 - 400) / 320) + 1
    with torch.no_grad():
        hidden = model(input_values=audio[:, 0], output_hidden_states=True).hidden_states
    assert torch.allclose(feats, hidden[2].transpose(1, 2))
    mean = HFTeacher(model, layer="mean").features(audio, 16000)
    assert torch.allclose(mean, torch.stack(hidden[1:]).mean(0).transpose(1, 2), atol=1e-6)
    # on the codec's 50 Hz grid: 50 frames for 1 s, frame 0 held from the teacher's first
    at_codec = teacher.features_at(audio, 16000, 50.0, 50)
    assert at_codec.shape == (2, 32, 50)
    assert torch.allclose(at_codec[..., 0], feats[..., 0])
    # another input rate is resampled to the teacher's 16 kHz first
    assert teacher.features(0.1 * torch.randn(1, 1, 24000), 24000).shape == (1, 32, 49)
    assert not any(p.requires_grad for p in teacher.parameters())


def test_hf_teacher_rejects_bad_layers_and_input():
    model = _tiny()
    with pytest.raises(ConfigError, match="layer must be 0..3"):
        HFTeacher(model, layer=7)
    with pytest.raises(ValueError, match="mono audio"):
        HFTeacher(model, layer=1).features(torch.zeros(1, 2, 16000), 16000)


def test_short_audio_still_gives_a_frame():
    assert HFTeacher(_tiny(), layer=1).features(torch.zeros(1, 1, 100), 16000).shape == (1, 32, 1)


def test_tokenizer_teacher_is_the_continuous_latent():
    mel = load_tokenizer("mel-16k")
    teacher = TokenizerTeacher(mel, "mel", centred=True)
    assert (teacher.dim, teacher.frame_rate, teacher.name) == (80, 100.0, "mel-16k:mel")
    audio = 0.1 * torch.randn(1, 1, 8000)
    assert torch.equal(teacher.features(audio, 16000), mel.encode(audio).streams[0].values)
    assert teacher.frame_centres(3).tolist() == [0.0, 0.01, 0.02]
    # a 50 Hz frame u is centred at (u + 0.5) / 50 s, on the centred mel frame 2u + 1
    feats = teacher.features(audio, 16000)
    at50 = teacher.features_at(audio, 16000, 50.0, 25)
    assert torch.allclose(at50[..., :24], feats[..., 1:49:2], atol=1e-5)
    # uncentred (hop-window) timing puts it halfway between mel frames 2u and 2u + 1
    shifted = TokenizerTeacher(mel, "mel").features_at(audio, 16000, 50.0, 25)
    assert torch.allclose(shifted[..., 3], feats[..., 6:8].mean(-1), atol=1e-5)
    with pytest.raises(ConfigError, match="discrete"):
        TokenizerTeacher(load_tokenizer("dmel-16k"))
    with pytest.raises(ConfigError, match="no stream"):
        TokenizerTeacher(mel, "codes")
