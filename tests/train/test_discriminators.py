"""Discriminators: variable-length input, consistent outputs, gradients, config-built container."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from audiolatent.train.discriminators import DISCRIMINATORS, Discriminators, register_discriminator

TINY = {
    "mpd": {"kind": "mpd", "periods": [2, 3, 5], "channels": [4, 8, 8]},
    "msstft": {"kind": "msstft", "n_ffts": [256, 64], "channels": 4, "max_channels": 8, "dilations": [1, 2]},
    "mbstft": {"kind": "mbstft", "n_ffts": [256, 128], "channels": 4, "n_strided": 2},
}
N_SUB = {"mpd": 3, "msstft": 2, "mbstft": 2}
N_LAYERS = {"mpd": 3, "msstft": 4, "mbstft": 4}




@pytest.fixture(scope="module")
def all_tiny() -> Discriminators:
    torch.manual_seed(0)
    return Discriminators(list(TINY.values()))


@pytest.mark.parametrize("length", [1234, 8000, 16001])
def test_variable_length_and_gradients(all_tiny, length):
    torch.manual_seed(0)
    audio = (0.1 * torch.randn(1, 1, length)).requires_grad_()
    all_tiny.zero_grad()
    logits, fmaps = all_tiny(audio)
    assert len(logits) == len(fmaps) == sum(N_SUB.values())
    expected_layers = [N_LAYERS[k] for k in TINY for _ in range(N_SUB[k])]
    assert [len(f) for f in fmaps] == expected_layers
    assert all(lg.shape[:2] == (1, 1) and torch.isfinite(lg).all() for lg in logits)
    sum(lg.mean() for lg in logits).backward()
    assert audio.grad is not None and audio.grad.abs().sum() > 0
    assert all(p.grad is not None for p in all_tiny.parameters())


@pytest.mark.parametrize("kind", sorted(TINY))
def test_any_single_kind_and_stereo(kind):
    torch.manual_seed(0)
    config = dict(TINY[kind], in_channels=2)
    logits, fmaps = Discriminators([config])(torch.randn(1, 2, 1500))
    assert len(logits) == len(fmaps) == N_SUB[kind]


def test_mpd_periods_fold_the_signal():
    disc = Discriminators([TINY["mpd"]])
    logits, _ = disc(torch.randn(1, 1, 1001))
    assert [lg.shape[-1] for lg in logits] == [2, 3, 5]


def test_registry_unknown_kind_and_custom_kind():
    with pytest.raises(ValueError, match="unknown discriminator kind"):
        Discriminators([{"kind": "nope"}])

    @register_discriminator("test_mean")
    class MeanDiscriminator(nn.Module):
        def __init__(self, scale: float = 1.0) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(scale))

        def forward(self, audio):
            return [self.scale * audio.mean(-1, keepdim=True)], [[audio]]

    try:
        logits, fmaps = Discriminators([{"kind": "test_mean", "scale": 2.0}, TINY["mpd"]])(torch.ones(1, 1, 300))
        assert len(logits) == 1 + 3 and logits[0].item() == pytest.approx(2.0)
    finally:
        del DISCRIMINATORS["test_mean"]


def test_empty_band_is_rejected():
    with pytest.raises(ValueError, match="empty band"):
        Discriminators([{"kind": "mbstft", "n_ffts": [8], "channels": 2}])
