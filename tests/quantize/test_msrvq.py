import pytest
import torch

from audiolatent.quantize import MultiScaleRVQ


def _trained(**kwargs):
    torch.manual_seed(0)
    msrvq = MultiScaleRVQ(6, strides=(4, 2, 1), codebook_size=16, **kwargs)
    msrvq.train()
    msrvq(torch.randn(4, 6, 32))
    return msrvq.eval()


def test_stream_strides_and_shapes():
    msrvq = _trained()
    specs = msrvq.stream_specs()
    assert [s.stride for s in specs] == [4, 2, 1]
    assert all(s.codebook_sizes == (16,) for s in specs)
    assert msrvq.temporal_stride == 4
    z = torch.randn(2, 6, 16)
    streams = msrvq.encode(z)
    assert [tuple(s.shape) for s in streams] == [(2, 1, 4), (2, 1, 8), (2, 1, 16)]
    assert all(s.dtype == torch.long and 0 <= s.min() and s.max() < 16 for s in streams)


def test_eval_roundtrip_and_n_q():
    msrvq = _trained(codebook_dim=3, l2_normalize=True)
    z = torch.randn(2, 6, 16)
    out = msrvq(z)
    encoded = msrvq.encode(z)
    assert all(torch.equal(a, b) for a, b in zip(encoded, out.streams))
    assert torch.allclose(msrvq.decode(encoded), out.z_q, atol=1e-5)
    coarse = msrvq.encode(z, n_q=1)
    assert len(coarse) == 1 and torch.equal(coarse[0], encoded[0])
    assert msrvq.decode(coarse).shape == z.shape
    assert len(msrvq.stream_specs(n_q=2)) == 2
    # the coarsest layer's output is constant over each block of 4 frames
    coarse_out = msrvq.decode(coarse)
    assert torch.allclose(coarse_out, coarse_out[..., ::4].repeat_interleave(4, dim=-1))


def test_bad_length_raises():
    msrvq = _trained()
    with pytest.raises(ValueError, match="multiple of the largest stride 4"):
        msrvq.encode(torch.randn(1, 6, 10))
    with pytest.raises(ValueError):
        msrvq(torch.randn(1, 6, 18))


def test_lookahead_is_confined_to_the_block():
    msrvq = _trained()
    z = torch.randn(1, 6, 16)
    z2 = z.clone()
    z2[..., 9] += 5.0  # frame 9 lies in coarse block 2 (frames 8..11)
    a, b = msrvq.encode(z), msrvq.encode(z2)
    assert torch.equal(a[0][..., :2], b[0][..., :2])  # earlier coarse codes unaffected
    assert torch.equal(a[1][..., :4], b[1][..., :4])
    assert torch.equal(a[2][..., :8], b[2][..., :8])


def test_gradient_reaches_input():
    msrvq = _trained()
    msrvq.train()
    z = torch.randn(2, 6, 8, requires_grad=True)
    out = msrvq(z)
    (out.z_q.sum() + out.losses["commitment"]).backward()
    assert z.grad.abs().sum() > 0
