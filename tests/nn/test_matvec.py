"""One-frame matrix-vector products: int8-exact weights run as shipped, everything else as F.linear."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.core.cache import TableCache
from audiolatent.nn.matvec import int8_rows, linear_rows


def int8_exact_linear(n_in: int = 256, n_out: int = 96) -> nn.Linear:
    """A linear layer whose weight is ``scale * q`` with int8 ``q``, as an int8 checkpoint restores it."""
    torch.manual_seed(0)
    layer = nn.Linear(n_in, n_out)
    with torch.no_grad():
        scale = layer.weight.abs().amax(1) / 127.0
        layer.weight.copy_(torch.round(layer.weight / scale[:, None]) * scale[:, None])
    return layer.eval()


def test_an_int8_exact_weight_runs_as_shipped_and_equals_the_float_product():
    layer = int8_exact_linear()
    rows = int8_rows(layer.weight)
    if rows is None:
        pytest.skip("this PyTorch build has no FBGEMM fp16-weight GEMM")
    x = torch.randn(3, 256)
    with torch.no_grad():
        reference = F.linear(x.double(), layer.weight.double(), layer.bias.double()).float()
        assert (rows(x, layer.bias) - reference).abs().max() <= 1e-5 * reference.abs().max()
        memo = TableCache()
        for n_rows in (1, 3):
            out = linear_rows(x[:n_rows], layer.weight, layer.bias, memo, layer)
            assert (out - reference[:n_rows]).abs().max() <= 1e-5 * reference.abs().max()
        assert memo.get(layer, "weight", (layer.weight,), lambda: None) is not None  # packed once, reused


def test_other_weights_and_training_take_the_float_path():
    layer = nn.Linear(256, 96).eval()
    assert int8_rows(layer.weight) is None  # a float32 weight is not a product of int8 and a scale
    x = torch.randn(1, 256)
    with torch.no_grad():
        assert torch.allclose(linear_rows(x, layer.weight, layer.bias, TableCache(), layer), F.linear(x, layer.weight, layer.bias), atol=1e-6)
    exact = int8_exact_linear().train()
    out = linear_rows(x, exact.weight, exact.bias, TableCache(), exact)  # training: gradients reach the weight
    out.sum().backward()
    assert exact.weight.grad is not None


def test_the_packed_form_follows_in_place_updates():
    layer = int8_exact_linear()
    if int8_rows(layer.weight) is None:
        pytest.skip("this PyTorch build has no FBGEMM fp16-weight GEMM")
    memo, x = TableCache(), torch.randn(1, 256)
    with torch.no_grad():
        linear_rows(x, layer.weight, layer.bias, memo, layer)
        layer.weight.add_(1e-3 * torch.randn_like(layer.weight))  # an optimiser step: no longer int8-exact
        out = linear_rows(x, layer.weight, layer.bias, memo, layer)
        assert torch.allclose(out, F.linear(x, layer.weight, layer.bias), atol=1e-6)
