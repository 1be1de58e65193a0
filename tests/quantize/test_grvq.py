import pytest
import torch

from audiolatent.core.errors import ConfigError
from audiolatent.quantize import GroupResidualVQ


def _trained(**kwargs):
    torch.manual_seed(0)
    grvq = GroupResidualVQ(8, n_groups=2, n_codebooks=3, codebook_size=16, **kwargs)
    grvq.train()
    grvq(torch.randn(4, 8, 32))
    return grvq.eval()


def test_shapes_and_eval_roundtrip():
    grvq = _trained()
    z = torch.randn(2, 8, 20)
    out = grvq(z)
    (codes,) = out.streams
    assert codes.shape == (2, 6, 20)
    assert 0 <= codes.min() and codes.max() < 16
    assert torch.equal(grvq.encode(z)[0], codes)
    assert torch.allclose(grvq.decode(grvq.encode(z)), out.z_q, atol=1e-5)
    assert out.stats["usage"].shape == (6,)
    assert grvq.stream_specs()[0].codebook_sizes == (16,) * 6
    assert grvq.encode(z, n_q=2)[0].shape == (2, 4, 20)
    assert grvq.decode(grvq.encode(z, n_q=2)).shape == z.shape


def test_codes_are_group_major():
    grvq = _trained()
    z = torch.randn(1, 8, 10)
    codes = grvq.encode(z)[0]
    group0 = grvq.groups[0].encode(z[:, :4])[0]
    group1 = grvq.groups[1].encode(z[:, 4:])[0]
    assert torch.equal(codes, torch.cat([group0, group1], dim=1))
    # changing only group 1's channels changes only rows 3..5
    z2 = z.clone()
    z2[:, 4:] += 3.0
    codes2 = grvq.encode(z2)[0]
    assert torch.equal(codes2[:, :3], codes[:, :3])


def test_dropout_shared_by_groups():
    torch.manual_seed(0)
    grvq = GroupResidualVQ(8, n_groups=2, n_codebooks=4, codebook_size=8, quantizer_dropout=1.0, kmeans_init=False)
    grvq.train()
    shapes = {grvq(torch.randn(2, 8, 6)).streams[0].shape[1] for _ in range(20)}
    assert shapes <= {2, 4, 6, 8} and len(shapes) >= 2


def test_dim_must_divide():
    with pytest.raises(ConfigError):
        GroupResidualVQ(10, n_groups=3)
