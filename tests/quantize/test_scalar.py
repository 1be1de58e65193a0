import torch

from audiolatent.quantize import ScalarQuantizer


def test_discrete_stream():
    sq = ScalarQuantizer(6, levels=5)
    z = torch.randn(2, 6, 11, requires_grad=True) * 2
    z.retain_grad()
    out = sq(z)
    (codes,) = out.streams
    assert codes.shape == (2, 6, 11) and codes.dtype == torch.long
    assert 0 <= codes.min() and codes.max() < 5
    assert set(torch.unique(out.z_q.detach()).tolist()) <= {-1.0, -0.5, 0.0, 0.5, 1.0}
    assert torch.equal(sq.decode(sq.encode(z)), out.z_q.detach())
    assert out.stats["usage"].shape == (6,)
    assert sq.stream_specs()[0].codebook_sizes == (5,) * 6
    out.z_q.sum().backward()
    assert z.grad.abs().sum() > 0


def test_continuous_stream():
    sq = ScalarQuantizer(4, levels=9, as_discrete=False)
    z = torch.randn(2, 4, 7)
    out = sq(z)
    (values,) = out.streams
    assert values.dtype == torch.float32 and values.abs().max() <= 1
    assert torch.allclose(values * 4, torch.round(values * 4))
    assert torch.equal(sq.decode(sq.encode(z)), out.z_q)
    spec = sq.stream_specs()[0]
    assert spec.kind == "continuous" and spec.dim == 4
    assert not sq.is_discrete
