"""LossCombiner: weighted sum equals autograd; the balancer gives each loss its weight's share of the norm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.train.balancer import LossCombiner




def two_losses(y: torch.Tensor, targets: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Scales 1e3 and 1e-3 apart: a plain sum would be all "big".
    return {"big": 1e3 * F.mse_loss(y, targets[0]), "small": 1e-3 * F.l1_loss(y, targets[1])}


@pytest.fixture
def problem():
    torch.manual_seed(0)
    model = nn.Conv1d(1, 1, 5, padding=2)
    x = torch.randn(3, 1, 200)
    targets = (torch.randn(3, 1, 200), torch.randn(3, 1, 200))
    return model, x, targets


def test_sum_mode_equals_autograd_of_weighted_sum(problem):
    model, x, targets = problem
    weights = {"big": 0.5, "small": 2.0}
    losses = two_losses(model(x), targets)
    (weights["big"] * losses["big"] + weights["small"] * losses["small"]).backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    y = model(x)
    metrics = LossCombiner(weights, mode="sum").backward(two_losses(y, targets), y)
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.grad, e)
    assert set(metrics) == {"loss/big", "loss/small", "grad_norm/big", "grad_norm/small"}


@pytest.mark.parametrize("per_batch_item", [False, True])
def test_balanced_components_have_norms_proportional_to_weights(problem, per_batch_item):
    model, x, targets = problem
    y = model(x)
    losses = two_losses(y, targets)
    combiner = LossCombiner({"big": 3.0, "small": 1.0}, mode="balancer", total_norm=2.0, per_batch_item=per_batch_item)

    def norm(g):
        if per_batch_item:
            return torch.linalg.vector_norm(g.reshape(g.shape[0], -1), dim=1).mean()
        return torch.linalg.vector_norm(g)

    grads = {k: torch.autograd.grad(v, y, retain_graph=True)[0] for k, v in losses.items()}
    assert norm(grads["big"]) / norm(grads["small"]) > 1e4  # very different scales
    combined, metrics = combiner.gradient(losses, y)
    # At the first step the moving average is the norm itself: component i = total * share_i * g_i / |g_i|.
    components = {k: 2.0 * metrics[f"grad_share/{k}"] * g / metrics[f"ema_grad_norm/{k}"] for k, g in grads.items()}
    torch.testing.assert_close(combined, components["big"] + components["small"])
    assert norm(components["big"]).item() == pytest.approx(1.5, rel=1e-5)
    assert norm(components["small"]).item() == pytest.approx(0.5, rel=1e-5)
    assert metrics["grad_norm/big"] == pytest.approx(norm(grads["big"]).item(), rel=1e-5)

    combiner.backward(losses, y)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_ema_state_and_scale_invariance(problem):
    model, x, targets = problem
    combiner = LossCombiner({"big": 1.0, "small": 1.0}, mode="balancer", ema_decay=0.5)
    y = model(x).detach().requires_grad_()
    first, _ = combiner.gradient(two_losses(y, targets), y)
    # Scaling a loss by 10 scales its raw gradient by 10; the moving average catches up over steps.
    scaled = {k: 10 * v for k, v in two_losses(y, targets).items()}
    for _ in range(30):
        later, metrics = combiner.gradient(scaled, y)
    torch.testing.assert_close(later, first, rtol=1e-4, atol=1e-8)

    restored = LossCombiner({"big": 1.0, "small": 1.0}, mode="balancer", ema_decay=0.5)
    restored.load_state_dict(combiner.state_dict())
    again, _ = restored.gradient(scaled, y)
    fresh_next, _ = combiner.gradient(scaled, y)
    torch.testing.assert_close(again, fresh_next)


def test_unused_loss_and_errors(problem):
    model, x, targets = problem
    y = model(x)
    losses = {"big": 1e3 * F.mse_loss(y, targets[0]), "const": torch.tensor(1.0)}
    combined, metrics = LossCombiner({"big": 1.0, "const": 1.0}, mode="balancer").gradient(losses, y)
    assert torch.isfinite(combined).all() and metrics["grad_norm/const"] == 0.0
    with pytest.raises(KeyError):
        LossCombiner({"big": 1.0}).gradient({"other": losses["big"]}, y)
    with pytest.raises(ValueError):
        LossCombiner({"big": 1.0}, mode="magic")
