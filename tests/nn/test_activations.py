"""Tests of audiolatent.nn.activations: the registry and Snake."""

import math

import pytest
import torch

from audiolatent.core.errors import ConfigError
from audiolatent.nn.activations import ACTIVATIONS, Snake, get_activation


@pytest.mark.parametrize("name", ["elu", "snake", "gelu", "silu", "leaky_relu", "tanh", "identity"])
def test_registry_builds_shape_preserving_modules(name):
    assert name in ACTIVATIONS
    x = torch.randn(2, 5, 11)
    assert get_activation(name, 5)(x).shape == x.shape


def test_kwargs_are_forwarded_and_unknown_names_fail():
    act = get_activation("leaky_relu", 3, negative_slope=0.5)
    assert act(torch.tensor([-2.0])).item() == -1.0
    with pytest.raises(ConfigError, match="unknown activation"):
        get_activation("swish-ish", 3)


def test_snake_formula():
    snake = Snake(2, alpha=0.5)
    x = torch.linspace(-3, 3, 7).view(1, 1, 7).repeat(1, 2, 1)
    expected = x + torch.sin(0.5 * x) ** 2 / 0.5
    torch.testing.assert_close(snake(x), expected)
    log_snake = Snake(2, alpha=0.5, logscale=True)
    torch.testing.assert_close(log_snake(x), expected)


@pytest.mark.parametrize("alpha", [0.0, 1e-12, -1e-12, 1e-6, -0.3, 1.0, 50.0])
def test_snake_gradients_are_finite(alpha):
    snake = Snake(3, alpha=alpha)
    x = (torch.randn(2, 3, 16) * 100).requires_grad_()
    y = snake(x)
    y.square().sum().backward()
    assert torch.isfinite(y).all()
    assert torch.isfinite(x.grad).all() and torch.isfinite(snake.alpha.grad).all()
    if abs(alpha) < 1e-9:
        torch.testing.assert_close(y, x, atol=1e-4, rtol=0)  # sin^2(a x) / a -> 0 as a -> 0
    assert not math.isnan(float(snake.alpha.grad.sum()))
