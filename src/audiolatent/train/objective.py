"""The codec training objective: which losses, their weights, and one backward pass per model.

Generator (the codec). For audio ``x [B, C, N]`` and its reconstruction ``y [B, C, N]``:

* reconstruction losses ``mel``, ``stft``, ``time_l1`` and, once the GAN is on, ``adversarial``
  (generator loss over every sub-discriminator) and ``feature_matching`` (EnCodec-normalised L1
  of the discriminator features of ``y`` vs ``x``) all depend on the codec only through ``y``,
  so :class:`~audiolatent.train.balancer.LossCombiner` turns them into one gradient ``G``
  w.r.t. ``y`` (weighted sum, or EnCodec's balancer);
* bottleneck losses (``commitment``, ``codebook``, ``kl``, ``entropy``, ``rate``, from the codec's output)
  are summed with their weights into ``aux``;
* :meth:`CodecObjective.generator_backward` runs ``autograd.backward([y, aux], [G, 1])``: a
  single backward pass, which is what DDP expects (two ``backward()`` calls per forward would
  make its reducer mark parameters ready twice).

Discriminators see real and generated audio concatenated along the batch (one forward, so DDP
sees one forward per backward). In the generator pass they run unwrapped with
``requires_grad`` off: no discriminator gradient is computed or all-reduced there.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping

import torch
from torch import nn

from audiolatent.core.errors import ConfigError
from audiolatent.train.balancer import LossCombiner
from audiolatent.train.config import LossConfig
from audiolatent.train.losses import (
    MultiResolutionMelLoss,
    MultiResolutionSTFTLoss,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    time_l1,
)

__all__ = ["CodecObjective", "BOTTLENECK_LOSSES"]

#: bottleneck loss names the codec returns, each weighted by the field of the same name in LossConfig
BOTTLENECK_LOSSES = ("commitment", "codebook", "kl", "entropy", "rate")


def _build_loss(field: str, cls: type[nn.Module], options: object, sample_rate: int) -> nn.Module:
    """``cls(sample_rate=sample_rate, **options)``; a bad ``losses.<field>`` is a :class:`ConfigError` naming it."""
    if not isinstance(options, dict):
        raise ConfigError(f"losses.{field}: expected a mapping of {cls.__name__} arguments, got {options!r}")
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "sample_rate")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"losses.{field}: unknown option(s) {unknown}; {cls.__name__} accepts {accepted}"
                          " (in --set, write YAML mappings with a space after each colon: {sc_weight: 1.0})")
    try:
        return cls(sample_rate=sample_rate, **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"losses.{field}: {error}") from error


class CodecObjective(nn.Module):
    """Loss modules and weights of one run (built once; holds the balancer's moving averages).

    Args:
        config: the ``losses`` section.
        sample_rate: Hz, for the mel loss.
        adversarial: whether discriminators exist (else the GAN weights are ignored).
        reduce_norms: balancer only; averages per-loss gradient norms across ranks.
    """

    def __init__(self, config: LossConfig, sample_rate: int, adversarial: bool,
                 reduce_norms: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        self.config = config
        self.mel = _build_loss("mel_options", MultiResolutionMelLoss, config.mel_options, sample_rate) if config.mel > 0 else None
        self.stft = (_build_loss("stft_options", MultiResolutionSTFTLoss, config.stft_options, sample_rate)
                     if config.stft > 0 else None)
        names = ["mel", "stft", "time_l1"] + (["adversarial", "feature_matching"] if adversarial else [])
        weights = {name: getattr(config, name) for name in names if getattr(config, name) > 0}
        if not weights:
            raise ValueError("losses: every reconstruction weight is 0; set at least mel, stft or time_l1")
        self.reconstruction_weights = weights
        self.sample_rate = sample_rate
        self.combiner = LossCombiner(weights, mode="balancer" if config.balancer else "sum", reduce_norms=reduce_norms)

    @property
    def adversarial_active(self) -> bool:
        """Whether any GAN loss has a positive weight."""
        return any(name in self.reconstruction_weights for name in ("adversarial", "feature_matching"))

    def reconstruction_losses(self, y: torch.Tensor, x: torch.Tensor, discriminators: nn.Module | None = None,
                              band_limit_hz: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Unweighted losses of ``y`` against ``x`` (both ``[B, C, N]`` float32).

        ``discriminators`` (unwrapped, parameters frozen by the caller) adds ``adversarial``
        and ``feature_matching``; None = reconstruction only (GAN off or still warming up).
        ``band_limit_hz`` (``[B]`` Hz, ``inf`` = none): mel, stft and time_l1 ignore what lies
        above each item's limit (:mod:`audiolatent.train.losses`); the GAN losses see the whole band.
        """
        losses: dict[str, torch.Tensor] = {}
        if self.mel is not None:
            losses["mel"] = self.mel(y, x, band_limit_hz)
        if self.stft is not None:
            losses["stft"] = self.stft(y, x, band_limit_hz)
        if "time_l1" in self.reconstruction_weights:
            losses["time_l1"] = time_l1(y, x, band_limit_hz, self.sample_rate)
        if discriminators is not None and self.adversarial_active:
            batch = x.shape[0]
            logits, features = discriminators(torch.cat([x, y]))
            if "adversarial" in self.reconstruction_weights:
                losses["adversarial"] = generator_adversarial_loss([lg[batch:] for lg in logits], self.config.adversarial_kind)
            if "feature_matching" in self.reconstruction_weights:
                real = [[f[:batch] for f in layers] for layers in features]
                fake = [[f[batch:] for f in layers] for layers in features]
                losses["feature_matching"] = feature_matching_loss(real, fake)
        return losses

    def bottleneck_loss(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """``sum_i w_i l_i`` over the codec's bottleneck losses with a positive weight (None if none)."""
        terms = [getattr(self.config, name) * value for name, value in losses.items()
                 if name in BOTTLENECK_LOSSES and getattr(self.config, name) > 0]
        return torch.stack(terms).sum() if terms else None

    def total(self, reconstruction: Mapping[str, torch.Tensor], aux: torch.Tensor | None) -> float:
        """The weighted sum of every generator loss (what the progress bar shows; the balancer
        uses the weights as gradient shares instead, but this number is still comparable)."""
        total = sum(self.reconstruction_weights[name] * float(value.detach()) for name, value in reconstruction.items())
        return float(total + (float(aux.detach()) if aux is not None else 0.0))

    def generator_backward(self, reconstruction: Mapping[str, torch.Tensor], y: torch.Tensor,
                           aux: torch.Tensor | None) -> dict[str, float]:
        """One backward pass of every generator loss (see the module docstring); returns combiner metrics."""
        gradient, metrics = self.combiner.gradient(reconstruction, y)
        tensors, grads = [y], [gradient]
        if aux is not None and aux.requires_grad:
            tensors.append(aux)
            grads.append(torch.ones_like(aux))
        torch.autograd.backward(tensors, grads)
        return metrics

    def discriminator_loss(self, discriminators: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Discriminator objective on real ``x`` and detached generated ``y`` (``[B, C, N]``)."""
        batch = x.shape[0]
        logits, _ = discriminators(torch.cat([x, y.detach()]))
        return discriminator_adversarial_loss([lg[:batch] for lg in logits], [lg[batch:] for lg in logits],
                                              self.config.adversarial_kind)
