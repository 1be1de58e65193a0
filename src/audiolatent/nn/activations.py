"""Activations by name, and Snake.

Snake (Ziyin et al., 2020, "Neural Networks Fail to Learn Periodic Functions and How to Fix
It"; used per channel in BigVGAN, Lee et al., 2022, and DAC, Kumar et al., 2023)::

    snake(x) = x + sin^2(alpha * x) / alpha          alpha: one learnable value per channel

It adds a periodic inductive bias that helps waveform decoders. All activations here are
pointwise in time: they add no latency and keep no streaming state.

``get_activation(name, channels, **kwargs)`` builds one from the :data:`ACTIVATIONS` registry
(``elu``, ``snake``, ``gelu``, ``silu``, ``leaky_relu`` — slope 0.2 by default, as in MelGAN and
the EnCodec/DAC discriminators —, ``tanh``, ``identity``); new activations register themselves
with :func:`register_activation`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.core.errors import ConfigError

__all__ = ["ACTIVATIONS", "ACTIVATION_TYPES", "Snake", "activate_", "activate_into", "get_activation", "register_activation"]

#: name -> factory(channels, **kwargs) -> module
ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {}


def register_activation(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``factory(channels, **kwargs) -> nn.Module`` under ``name``."""

    def deco(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in ACTIVATIONS:
            raise ValueError(f"activation {name!r} is already registered")
        ACTIVATIONS[name] = factory
        return factory

    return deco


def get_activation(name: str, channels: int, **kwargs) -> nn.Module:
    """The activation ``name`` for ``[B, channels, T]`` inputs; ``kwargs`` go to its constructor."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name](channels, **kwargs)


class Snake(nn.Module):
    """``x + sin^2(alpha x) / alpha`` with a learnable ``alpha`` per channel, on ``[B, C, T]``.

    Args:
        channels: C.
        alpha: initial value of every alpha (1.0 as in BigVGAN/DAC).
        logscale: learn ``log(alpha)`` instead (BigVGAN option), which keeps alpha positive.
        eps: alphas with ``|alpha| < eps`` are replaced by ``eps`` (with their sign) in the
            division, so the function and its gradients stay finite when an alpha reaches 0
            (there ``sin^2(alpha x) / alpha ~ alpha x^2 -> 0``).
    """

    def __init__(self, channels: int, alpha: float = 1.0, logscale: bool = False, eps: float = 1e-9) -> None:
        super().__init__()
        init = torch.full((1, channels, 1), float(alpha))
        self.logscale, self.eps = logscale, eps
        self.alpha = nn.Parameter(init.log() if logscale else init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.exp() if self.logscale else self.alpha
        small = alpha.abs() < self.eps
        safe = torch.where(small, torch.where(alpha < 0, -self.eps, self.eps), alpha)
        if torch.is_grad_enabled():
            return torch.addcdiv(x, torch.sin(alpha * x).square(), safe)
        # inference: one output buffer, updated in place (each fresh buffer of a long signal costs
        # a round of page faults)
        return self._into(x, torch.mul(x, alpha), safe)

    @staticmethod
    def _into(x: torch.Tensor, scaled: torch.Tensor, safe: torch.Tensor) -> torch.Tensor:
        # x + sin^2(alpha x) / alpha in three passes over the buffer holding alpha x
        return torch.addcdiv(x, scaled.sin_().square_(), safe, out=scaled)

    def forward_into(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The inference ``forward(x)``, the same operations, written into ``out`` (gradients off)."""
        alpha = self.alpha.exp() if self.logscale else self.alpha
        small = alpha.abs() < self.eps
        safe = torch.where(small, torch.where(alpha < 0, -self.eps, self.eps), alpha)
        return self._into(x, torch.mul(x, alpha, out=out), safe)


@register_activation("snake")
def _snake(channels: int, **kwargs) -> nn.Module:
    return Snake(channels, **kwargs)


@register_activation("elu")
def _elu(channels: int, alpha: float = 1.0) -> nn.Module:
    return nn.ELU(alpha=alpha)


@register_activation("gelu")
def _gelu(channels: int, approximate: str = "none") -> nn.Module:
    return nn.GELU(approximate=approximate)


@register_activation("silu")
def _silu(channels: int) -> nn.Module:
    return nn.SiLU()


@register_activation("leaky_relu")
def _leaky_relu(channels: int, negative_slope: float = 0.2) -> nn.Module:
    return nn.LeakyReLU(negative_slope=negative_slope)


@register_activation("tanh")
def _tanh(channels: int) -> nn.Module:
    return nn.Tanh()


@register_activation("identity")
def _identity(channels: int) -> nn.Module:
    return nn.Identity()


def activate_(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` written into ``x`` where the activation has an in-place form (inference).

    For a caller that owns ``x`` (a fresh output of the previous layer, gradients off): a new
    buffer for a long signal costs a round of page faults, often more than the activation itself
    (ELU on 32 x 240000 samples: 15 ms into a new buffer, 6 ms in place). Activations without an
    in-place form return ``module(x)``.
    """
    if isinstance(module, nn.ELU):
        return F.elu_(x, module.alpha)
    if isinstance(module, nn.LeakyReLU):
        return F.leaky_relu_(x, module.negative_slope)
    if isinstance(module, nn.SiLU):
        return F.silu(x, inplace=True)
    if isinstance(module, nn.Tanh):
        return x.tanh_()
    if isinstance(module, nn.Identity):
        return x
    return module(x)


def activate_into(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``module(x)`` written into ``out``, a dead buffer shaped and laid out as ``x`` (inference).

    For a caller that keeps ``x`` (a residual unit adds it back) and has a buffer to spare: reusing
    it spares a fresh one's page faults (DAC-16k decode: the Snake's fresh output cost 4x the
    multiplication it holds). The values are those of ``module(x)``. Activations without an in-place
    form return ``module(x)``.
    """
    if torch.is_grad_enabled():  # out= has no autograd: the module's own forward
        return module(x)
    if isinstance(module, Snake):
        return module.forward_into(x, out)
    if isinstance(module, (nn.ELU, nn.LeakyReLU, nn.SiLU, nn.Tanh)):
        return activate_(module, out.copy_(x))
    return module(x)


#: module types :func:`activate_` knows, and the Snake (one buffer either way)
ACTIVATION_TYPES = (nn.ELU, nn.LeakyReLU, nn.SiLU, nn.Tanh, nn.GELU, Snake)

