import torch

from audiolatent.quantize import IdentityBottleneck


def test_identity_passes_z_through():
    bottleneck = IdentityBottleneck(6)
    z = torch.randn(2, 6, 9)
    out = bottleneck(z)
    assert torch.equal(out.z_q, z) and torch.equal(out.streams[0], z)
    assert out.losses == {}
    assert bottleneck.stream_specs()[0].dim == 6


def test_projection_to_smaller_dim():
    bottleneck = IdentityBottleneck(6, latent_dim=2).eval()
    z = torch.randn(2, 6, 9, requires_grad=True)
    out = bottleneck(z)
    assert out.streams[0].shape == (2, 2, 9) and out.z_q.shape == z.shape
    assert torch.allclose(bottleneck.decode(bottleneck.encode(z)), out.z_q)
    out.z_q.sum().backward()
    assert z.grad.abs().sum() > 0
    assert bottleneck.stream_specs()[0].dim == 2
