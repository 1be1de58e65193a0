"""Causal ConvNeXt block/backbone, STFT-ConvNeXt encoder and Vocos decoder: streaming and latency."""

from __future__ import annotations

import pytest
import torch

from audiolatent.core.errors import StreamingError
from audiolatent.nn.convnext import ConvNeXtBackbone, ConvNeXtBlock, STFTConvNeXtEncoder, VocosDecoder
from audiolatent.nn.latency import measure_lookahead
from audiolatent.testing import check_streaming

HOP = 32


def frames(dim: int, t: int = 23) -> torch.Tensor:
    return torch.randn(2, dim, t, generator=torch.Generator().manual_seed(0))


def test_block_streams_like_offline_and_keeps_shape():
    torch.manual_seed(0)
    block = ConvNeXtBlock(8, layer_scale_init=0.5)
    x = frames(8)
    assert block(x).shape == x.shape
    assert check_streaming(block, x, 1) <= 1e-5


@pytest.mark.parametrize("in_channels", [None, 5])
def test_backbone_streams_like_offline(in_channels):
    torch.manual_seed(0)
    backbone = ConvNeXtBackbone(8, 3, in_channels=in_channels, dilations=(1, 2))
    x = frames(in_channels or 8)
    assert backbone(x).shape == (2, 8, 23)
    assert check_streaming(backbone, x, 1) <= 1e-5


@pytest.mark.parametrize("causal", [True, False])
def test_backbone_lookahead_is_measured(causal):
    torch.manual_seed(0)
    backbone = ConvNeXtBackbone(4, 2, in_channels=3, kernel_size=5, causal=causal).double()
    assert (backbone.lookahead == 0) is causal
    assert measure_lookahead(lambda x: backbone(x.double()), 64, 3, 1) == backbone.lookahead


def test_non_causal_block_refuses_to_stream():
    block = ConvNeXtBlock(4, causal=False)
    with pytest.raises(StreamingError):
        with block.streaming(1):
            pass


@pytest.mark.parametrize("downsample", [1, 2])
def test_stft_convnext_encoder_streams_and_frames(downsample):
    torch.manual_seed(0)
    encoder = STFTConvNeXtEncoder(dimension=6, hop_length=HOP, dim=8, n_layers=2, n_mels=10, downsample=downsample)
    x = torch.randn(2, 1, HOP * 9, generator=torch.Generator().manual_seed(1))
    assert encoder(x[..., : HOP * 4 + 1]).shape == (2, 6, 5)  # ceil(N / hop) frames
    assert check_streaming(encoder, x, HOP) <= 1e-5
    encoder.double()
    assert measure_lookahead(lambda x: encoder(x.double()), HOP * 12, 1, HOP, positions=range(HOP * 6, HOP * 7)) == encoder.lookahead == 0


def test_vocos_decoder_streams_and_is_causal():
    torch.manual_seed(0)
    decoder = VocosDecoder(dimension=6, hop_length=HOP, dim=8, n_layers=2, window="asymmetric")
    z = frames(6, 11)
    assert decoder(z).shape == (2, 1, 11 * HOP)
    assert check_streaming(decoder, z, 1) <= 1e-5
    decoder.double()
    assert measure_lookahead(lambda z: decoder(z.double()), 16, 6, HOP, upsample=True) == decoder.lookahead == 0
