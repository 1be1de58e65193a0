import itertools

import pytest
import torch

from audiolatent.core.errors import ConfigError
from audiolatent.quantize import FSQ


def test_codes_digits_round_trip_exhaustive():
    fsq = FSQ(4, levels=(3, 4, 2))
    codes = torch.arange(24)
    digits = fsq.codes_to_digits(codes)
    assert digits.shape == (24, 3)
    assert torch.equal(fsq.digits_to_codes(digits), codes)
    grid = torch.tensor(list(itertools.product(range(3), range(4), range(2))))
    assert sorted(fsq.digits_to_codes(grid).tolist()) == list(range(24))
    assert torch.equal(fsq.codes_to_digits(fsq.digits_to_codes(grid)), grid)


@pytest.mark.parametrize("level", [2, 3, 4, 5, 8])
def test_bound_gives_exactly_level_values(level):
    fsq = FSQ(1, levels=(level,))  # no projection: the bound acts on z itself
    z = torch.linspace(-20, 20, 20001)[None, None]
    codes = fsq.encode(z)[0]
    assert codes.unique().tolist() == list(range(level))
    values = fsq(z).z_q.unique()
    half_width = level // 2
    expected = torch.arange(-half_width, level - half_width) / half_width  # even L: one more below 0
    assert torch.allclose(values, expected)


@pytest.mark.parametrize("n_codebooks", [1, 2])
def test_shapes_range_roundtrip_and_gradient(n_codebooks):
    torch.manual_seed(0)
    fsq = FSQ(16, levels=(8, 5, 5, 5), n_codebooks=n_codebooks)
    z = torch.randn(2, 16, 30, requires_grad=True)
    out = fsq(z)
    (codes,) = out.streams
    assert codes.shape == (2, n_codebooks, 30) and codes.dtype == torch.long
    assert 0 <= codes.min() and codes.max() < 1000
    assert out.losses == {}
    assert out.stats["usage"].shape == (n_codebooks,)
    out.z_q.square().sum().backward()
    assert z.grad.abs().sum() > 0
    fsq.eval()
    with torch.no_grad():
        out = fsq(z)
        assert torch.equal(fsq.encode(z)[0], out.streams[0])
        assert torch.allclose(fsq.decode(fsq.encode(z)), out.z_q, atol=1e-5)
    assert torch.allclose(fsq.decode(fsq.encode(z)), out.z_q, atol=1e-5)  # grad-enabled decode path
    assert fsq.stream_specs()[0].codebook_sizes == (1000,) * n_codebooks


def test_no_projection_when_dims_match_and_values_on_grid():
    fsq = FSQ(4, levels=(8, 5, 5, 5)).eval()
    assert fsq.in_proj is None
    z_q = fsq(torch.randn(3, 4, 50) * 3).z_q
    assert torch.allclose(z_q[:, 0] * 4, torch.round(z_q[:, 0] * 4))
    assert torch.allclose(z_q[:, 1:] * 2, torch.round(z_q[:, 1:] * 2))
    assert z_q.abs().max() <= 1


def test_bad_levels():
    with pytest.raises(ConfigError):
        FSQ(4, levels=(1, 5))
