"""UniformLevels: fixed levels per channel over a fixed range (the quantiser of dMel)."""

import math

import pytest
import torch

from audiolatent.core.errors import ConfigError
from audiolatent.quantize import build_bottleneck
from audiolatent.tokenizers.dmel import dequantize_log_mel, quantize_log_mel


def test_known_codes_and_values():
    q = build_bottleneck({"kind": "levels", "dim": 2, "n_levels": 5, "min_value": -1.0, "max_value": 1.0})
    z = torch.tensor([[[-3.0, -1.0, -0.74, -0.26, 0.0, 0.24, 0.76, 1.0, 9.0]] * 2])  # [1, 2, 9]
    codes = q.encode(z)[0]
    assert codes.dtype == torch.long
    assert codes[0, 0].tolist() == [0, 0, 1, 1, 2, 2, 4, 4, 4]  # step 0.5; clamped at both ends
    assert q.decode([codes])[0, 0].tolist() == [-1.0, -1.0, -0.5, -0.5, 0.0, 0.0, 1.0, 1.0, 1.0]
    spec = q.stream_specs()[0]
    assert spec.kind == "discrete" and spec.codebook_sizes == (5, 5) and spec.bits_per_frame == pytest.approx(2 * math.log2(5))


def test_levels_round_trip_exactly_and_gradient_passes_straight_through():
    q = build_bottleneck({"kind": "levels", "dim": 3, "n_levels": 16, "min_value": math.log(1e-5), "max_value": math.log(10)})
    levels = q.decode([torch.arange(16).repeat(1, 3, 1)])
    assert torch.equal(q.encode(levels)[0], torch.arange(16).repeat(1, 3, 1))
    z = torch.randn(2, 3, 7, requires_grad=True)
    out = q(z)
    out.z_q.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))
    assert out.stats["usage"].shape == (3,)


def test_same_codes_as_dmel():
    x = 4 * torch.randn(2, 80, 50) - 4
    lo, hi = math.log(1e-5), math.log(10)
    q = build_bottleneck({"kind": "levels", "dim": 80, "n_levels": 16, "min_value": lo, "max_value": hi})
    assert torch.equal(q.encode(x)[0], quantize_log_mel(x, 16, lo, hi))
    codes = q.encode(x)[0]
    assert torch.equal(q.decode([codes]), dequantize_log_mel(codes, 16, lo, hi))


@pytest.mark.parametrize("bad", [{"n_levels": 1}, {"min_value": 1.0, "max_value": 1.0}])
def test_bad_config(bad):
    with pytest.raises(ConfigError, match="levels"):
        build_bottleneck({"kind": "levels", "dim": 4, **bad})
