"""Tests of audiolatent.lm.heads: analytic NLLs, GMM(K=1) == Gaussian, a flow head learns a 2-D mixture."""

import math

import pytest
import torch

from audiolatent.lm.heads import HEADS, FlowHead, GaussianHead, GMMHead, get_head

DIM_IN, DIM = 4, 3


def force_gaussian(head: GaussianHead, mean: torch.Tensor, log_var: torch.Tensor) -> None:
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.copy_(torch.cat([mean, log_var]))


def force_gmm(head: GMMHead, logits: torch.Tensor, means: torch.Tensor, log_vars: torch.Tensor) -> None:
    """logits [C], means/log_vars [C, D]."""
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.copy_(torch.cat([logits, torch.cat([means, log_vars], dim=-1).reshape(-1)]))


def analytic_nll(x, mu, s):
    d = x.shape[-1]
    return 0.5 * d * math.log(2 * math.pi * s**2) + ((x - mu) ** 2).sum(-1) / (2 * s**2)


def test_gaussian_nll_matches_the_analytic_value():
    head = GaussianHead(DIM_IN, DIM)
    mu, s = 0.7, 1.5
    force_gaussian(head, torch.full((DIM,), mu), torch.full((DIM,), math.log(s**2)))
    h, x = torch.randn(2, 5, DIM_IN), torch.randn(2, 5, DIM)
    nll = head.nll(h, x)
    assert nll.shape == (2, 5)
    assert torch.allclose(nll, analytic_nll(x, mu, s), atol=1e-5)
    assert torch.allclose(head.loss(h, x), nll.mean() / DIM)
    assert torch.allclose(head.mean(h), torch.full((2, 5, DIM), mu))


def test_gmm_with_one_component_equals_the_gaussian():
    mean, log_var = torch.tensor([0.1, -0.4, 2.0]), torch.tensor([0.3, -1.0, 0.5])
    gauss, gmm = GaussianHead(DIM_IN, DIM), GMMHead(DIM_IN, DIM, n_components=1)
    force_gaussian(gauss, mean, log_var)
    force_gmm(gmm, torch.tensor([3.0]), mean[None], log_var[None])
    h, x = torch.randn(7, DIM_IN), torch.randn(7, DIM)
    assert torch.allclose(gmm.nll(h, x), gauss.nll(h, x), atol=1e-5)
    mu, s = 0.7, 1.5
    force_gmm(gmm, torch.tensor([0.0]), torch.full((1, DIM), mu), torch.full((1, DIM), math.log(s**2)))
    assert torch.allclose(gmm.nll(h, x), analytic_nll(x, mu, s), atol=1e-5)


def test_gmm_nll_is_the_mixture_log_sum_exp():
    gmm = GMMHead(DIM_IN, DIM, n_components=2)
    means = torch.tensor([[-1.0, 0.0, 1.0], [2.0, 2.0, 2.0]])
    force_gmm(gmm, torch.log(torch.tensor([0.25, 0.75])), means, torch.zeros(2, DIM))
    h, x = torch.randn(6, DIM_IN), torch.randn(6, DIM)
    density = torch.zeros(6)
    for w, m in [(0.25, means[0]), (0.75, means[1])]:
        density = density + w * torch.exp(-analytic_nll(x - m, 0.0, 1.0))
    assert torch.allclose(gmm.nll(h, x), -torch.log(density), atol=1e-5)
    assert torch.allclose(gmm.mean(h), (0.25 * means[0] + 0.75 * means[1]).expand(6, DIM), atol=1e-6)


def test_gaussian_and_gmm_samples_have_the_forced_moments():
    gauss = GaussianHead(DIM_IN, DIM)
    force_gaussian(gauss, torch.tensor([1.0, -2.0, 0.0]), torch.log(torch.tensor([0.25, 1.0, 4.0])))
    samples = gauss.sample(torch.zeros(20000, DIM_IN), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(samples.mean(0), torch.tensor([1.0, -2.0, 0.0]), atol=0.05)
    assert torch.allclose(samples.var(0), torch.tensor([0.25, 1.0, 4.0]), rtol=0.05)
    gmm = GMMHead(DIM_IN, 1, n_components=2)
    force_gmm(gmm, torch.log(torch.tensor([0.3, 0.7])), torch.tensor([[-5.0], [5.0]]), torch.full((2, 1), -4.0))
    draws = gmm.sample(torch.zeros(20000, DIM_IN), generator=torch.Generator().manual_seed(0))
    assert abs(float((draws > 0).float().mean()) - 0.7) < 0.02


def test_flow_head_learns_a_two_dimensional_mixture():
    torch.manual_seed(0)
    data_gen = torch.Generator().manual_seed(0)

    def mixture(n):  # two Gaussians at (-2, 0) and (2, 0), std 0.5: mean 0, cov diag(4.25, 0.25)
        centre = torch.randint(0, 2, (n,), generator=data_gen) * 4.0 - 2.0
        return torch.stack([centre, torch.zeros(n)], dim=1) + 0.5 * torch.randn(n, 2, generator=data_gen)

    head = FlowHead(DIM_IN, 2, hidden=64, n_layers=2, n_steps=16)
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 500)
    h = torch.zeros(256, DIM_IN)
    for _ in range(500):
        loss = head.loss(h, mixture(256), generator=data_gen)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    assert head.nll(h, mixture(256)) is None
    with torch.no_grad():
        samples = head.sample(torch.zeros(4000, DIM_IN), generator=torch.Generator().manual_seed(1))
    cov = torch.cov(samples.T)
    assert samples.mean(0).abs().max() < 0.25
    assert abs(float(cov[0, 0]) - 4.25) < 0.6 and abs(float(cov[1, 1]) - 0.25) < 0.1 and abs(float(cov[0, 1])) < 0.2
    assert 0.4 < float((samples[:, 0] > 0).float().mean()) < 0.6  # both modes


def test_registry_builds_every_head():
    for name in HEADS:
        head = get_head(name, DIM_IN, DIM)
        assert head.sample(torch.zeros(2, 5, DIM_IN)).shape == (2, 5, DIM)
    with pytest.raises(ValueError, match="unknown head"):
        get_head("laplace", DIM_IN, DIM)
