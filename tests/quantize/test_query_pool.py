"""Query-based resampling: one token per block, causal by block, at 25 and 12.5 Hz inside a codec."""

from __future__ import annotations

import math

import pytest
import torch

from audiolatent.core.config import PACKAGED_CONFIGS, load_yaml
from audiolatent.core.errors import ConfigError
from audiolatent.quantize import QueryPool, build_bottleneck
from audiolatent.tokenizers.codec import build_codec

RVQ = {"kind": "rvq", "n_codebooks": 2, "codebook_size": 16, "kmeans_init": False}


def _pool(stride: int = 4) -> QueryPool:
    torch.manual_seed(0)
    return build_bottleneck({"kind": "query-pool", "dim": 8, "stride": stride, "quantizer": RVQ}).eval()


def test_without_attention_output_a_token_is_its_block_mean():
    pool = _pool()
    with torch.no_grad():
        pool.attention.out_proj.weight.zero_()
        pool.attention.out_proj.bias.zero_()
    z = torch.randn(2, 8, 12)
    torch.testing.assert_close(pool.pool(z), z.reshape(2, 8, 3, 4).mean(-1))


def test_a_token_reads_only_its_own_block():
    pool = _pool()
    z = torch.randn(1, 8, 16)
    changed = z.clone()
    changed[..., 8:] = torch.randn(1, 8, 8)  # blocks 2 and 3
    a, b = pool.pool(z), pool.pool(changed)
    assert torch.equal(a[..., :2], b[..., :2]) and not torch.allclose(a[..., 2:], b[..., 2:])
    out = pool.unpool(a)
    assert out.shape == (1, 8, 16)
    assert torch.equal(pool.unpool(a[..., :2]), out[..., :8])  # unpooling is per token too


def test_streams_are_at_the_block_rate_and_round_trip():
    pool = _pool(2)
    z = torch.randn(2, 8, 10)
    out = pool(z)
    assert out.z_q.shape == z.shape and out.streams[0].shape == (2, 2, 5)
    assert [s.stride for s in pool.stream_specs()] == [2]
    torch.testing.assert_close(pool.decode(pool.encode(z)), out.z_q)
    with pytest.raises(ValueError, match="multiple of the stride"):
        pool(torch.randn(1, 8, 9))


def test_bad_configs():
    with pytest.raises(ConfigError, match="stride"):
        build_bottleneck({"kind": "query-pool", "dim": 8, "stride": 1})
    with pytest.raises(ConfigError, match="heads"):
        build_bottleneck({"kind": "query-pool", "dim": 8, "heads": 3})
    with pytest.raises(ConfigError, match="frame-wise"):
        build_bottleneck({"kind": "query-pool", "dim": 8, "quantizer": {"kind": "msrvq", "strides": [2, 1]}})


@pytest.mark.parametrize("stride, rate", [(2, 25.0), (4, 12.5)])
def test_in_a_codec_the_frame_rate_and_latency_follow_the_stride(stride, rate):
    data = load_yaml(PACKAGED_CONFIGS / "codecs" / "tiny-16k.yaml")
    data["bottleneck"] = {"kind": "query-pool", "stride": stride, "quantizer": RVQ}
    codec = build_codec(data).eval()
    latent = codec.encode(0.1 * torch.randn(1, 1, 16000))
    assert latent.streams[0].frame_rate == rate and latent.streams[0].values.shape[-1] == math.ceil(rate)
    assert codec.algorithmic_latency_ms == pytest.approx(1000.0 / rate)
    assert codec.decode(latent).shape == (1, 1, 16000)
