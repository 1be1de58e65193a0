import torch

from audiolatent.quantize import GaussianBottleneck
from audiolatent.quantize.gaussian import gaussian_kl


def test_kl_is_zero_for_standard_normal_posterior():
    vae = GaussianBottleneck(8, latent_dim=4)
    with torch.no_grad():
        vae.in_proj.weight.zero_()
        vae.in_proj.bias.zero_()  # mean 0, log-variance 0
    out = vae(torch.randn(2, 8, 10))
    assert out.losses["kl"].item() == 0.0


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mean, logvar = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    posterior = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    prior = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    expected = torch.distributions.kl_divergence(posterior, prior).sum(1).mean()
    assert torch.allclose(gaussian_kl(mean, logvar), expected, atol=1e-5)


def test_sampling_in_training_mean_in_eval():
    torch.manual_seed(0)
    vae = GaussianBottleneck(8, latent_dim=4)
    z = torch.randn(2, 8, 10, requires_grad=True)
    out = vae(z)
    assert out.streams[0].shape == (2, 4, 10)
    (out.z_q.sum() + out.losses["kl"]).backward()
    assert z.grad.abs().sum() > 0
    mean = vae.encode(z)[0]
    assert not torch.allclose(out.streams[0], mean)  # a sample
    vae.eval()
    out = vae(z)
    assert torch.equal(out.streams[0], mean)
    assert torch.allclose(vae.decode(vae.encode(z)), out.z_q)
    assert not torch.allclose(vae.encode(z, sample=True)[0], mean)
    assert vae.stream_specs()[0].dim == 4 and not vae.is_discrete
