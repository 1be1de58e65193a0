"""Training: reconstruction and adversarial losses, discriminators, loss combination.

=====================  ===============================================================
module                 contents
=====================  ===============================================================
``losses``             multi-resolution mel (DAC) and STFT (Parallel WaveGAN) losses,
                       time L1, feature matching (EnCodec), hinge / least-squares GAN
``discriminators``     multi-period (HiFi-GAN), multi-scale STFT (EnCodec), multi-band
                       multi-scale STFT (DAC), ``Discriminators`` built from configs
``balancer``           ``LossCombiner``: weighted sum or EnCodec's gradient balancer
=====================  ===============================================================
"""

from audiolatent.train.balancer import LossCombiner
from audiolatent.train.discriminators import (
    DISCRIMINATORS,
    Discriminators,
    MultiBandMultiScaleSTFTDiscriminator,
    MultiPeriodDiscriminator,
    MultiScaleSTFTDiscriminator,
    register_discriminator,
)
from audiolatent.train.losses import (
    ADVERSARIAL_LOSSES,
    MultiResolutionMelLoss,
    MultiResolutionSTFTLoss,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    time_l1,
)

__all__ = [
    "LossCombiner", "DISCRIMINATORS", "Discriminators", "MultiBandMultiScaleSTFTDiscriminator",
    "MultiPeriodDiscriminator", "MultiScaleSTFTDiscriminator", "register_discriminator",
    "ADVERSARIAL_LOSSES", "MultiResolutionMelLoss", "MultiResolutionSTFTLoss", "discriminator_adversarial_loss",
    "feature_matching_loss", "generator_adversarial_loss", "time_l1",
]
