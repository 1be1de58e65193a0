import torch

from audiolatent.quantize import SoftNormBottleneck


def test_running_scale_tracks_rms_and_latent_is_unit_scale():
    torch.manual_seed(0)
    bottleneck = SoftNormBottleneck(8, noise_std=0.1, momentum=0.2)
    for _ in range(60):
        bottleneck(torch.randn(4, 8, 50) * 5.0)
    assert abs(bottleneck.running_scale.item() - 5.0) < 0.3
    bottleneck.eval()
    latent = bottleneck.encode(torch.randn(4, 8, 50) * 5.0)[0]
    assert abs(latent.std().item() - 1.0) < 0.1


def test_noise_only_in_training_and_eval_roundtrip():
    torch.manual_seed(0)
    bottleneck = SoftNormBottleneck(4, noise_std=0.5, per_channel=True)
    z = torch.randn(2, 4, 20, requires_grad=True)
    out = bottleneck(z)
    assert bottleneck.running_scale.shape == (4,)
    assert not torch.allclose(out.z_q, bottleneck.decode(out.streams))  # noisy
    out.z_q.sum().backward()
    assert z.grad.abs().sum() > 0 and bottleneck.weight.grad is not None
    bottleneck.eval()
    before = bottleneck.running_scale.clone()
    out = bottleneck(z)
    assert torch.equal(bottleneck.running_scale, before)
    assert torch.allclose(bottleneck.decode(bottleneck.encode(z)), out.z_q)
    assert bottleneck.stream_specs()[0].kind == "continuous"
