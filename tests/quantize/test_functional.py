import torch

from audiolatent.quantize.functional import kmeans, kmeans_plus_plus, masked_mse, straight_through


def test_kmeans_finds_separated_clusters():
    torch.manual_seed(0)
    centres = torch.randn(8, 3) * 10
    samples = centres.repeat_interleave(50, dim=0) + 0.01 * torch.randn(400, 3)
    centroids, counts = kmeans(samples, 8, iters=5)
    nearest = torch.cdist(centres, centroids).min(dim=1).values
    assert nearest.max() < 0.1 and counts.sum() == 400 and (counts == 50).all()


def test_kmeans_plus_plus_with_fewer_samples_than_codes():
    picks = kmeans_plus_plus(torch.randn(3, 2), 5)
    assert picks.shape == (5,) and set(picks[:3].tolist()) == {0, 1, 2}


def test_straight_through_is_exact_with_identity_gradient():
    x = torch.randn(10, requires_grad=True)
    y = straight_through(torch.round(x), x)
    assert torch.equal(y, torch.round(x))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(10))


def test_masked_mse_ignores_masked_rows():
    a, b = torch.zeros(4, 2), torch.tensor([[1.0, 1.0], [1.0, 1.0], [9.0, 9.0], [9.0, 9.0]])
    assert masked_mse(a, b, torch.tensor([1.0, 1.0, 0.0, 0.0])).item() == 1.0
