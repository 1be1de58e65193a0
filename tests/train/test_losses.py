"""Reconstruction, feature-matching and adversarial losses: zero on identical input, sensible ordering."""

from __future__ import annotations

import math

import pytest
import torch

from audiolatent.data.augment import lowpass
from audiolatent.train.losses import (
    ADVERSARIAL_LOSSES,
    MultiResolutionMelLoss,
    MultiResolutionSTFTLoss,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    time_l1,
)

SAMPLE_RATE = 16000




def tone(freq_hz: float, amplitude: float = 0.5, n: int = 4000) -> torch.Tensor:
    t = torch.arange(n) / SAMPLE_RATE
    return (amplitude * torch.sin(2 * torch.pi * freq_hz * t))[None, None]


@pytest.fixture(scope="module")
def mel_loss() -> MultiResolutionMelLoss:
    return MultiResolutionMelLoss(SAMPLE_RATE)


@pytest.fixture(scope="module")
def stft_loss() -> MultiResolutionSTFTLoss:
    return MultiResolutionSTFTLoss(fft_sizes=(512, 256, 128), hop_lengths=(64, 32, 16), window_lengths=(400, 200, 100))


@pytest.fixture(scope="module")
def reconstruction_losses(mel_loss, stft_loss):
    return {"mel": mel_loss, "stft": stft_loss, "time_l1": time_l1}


@pytest.mark.parametrize("name", ["mel", "stft", "time_l1"])
@pytest.mark.parametrize("length", [1, 1234, 4001])
def test_zero_for_identical_positive_for_different(reconstruction_losses, name, length):
    torch.manual_seed(0)
    loss = reconstruction_losses[name]
    x = 0.3 * torch.randn(2, 1, length)
    assert loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-7)
    assert loss(x * 0.5, x).item() > 0


@pytest.mark.parametrize("name", ["mel", "stft", "time_l1"])
def test_noise_vs_sine_is_positive_and_symmetric_inputs_allowed(reconstruction_losses, name):
    torch.manual_seed(0)
    loss = reconstruction_losses[name]
    sine = tone(440.0).repeat(1, 2, 1)  # stereo [1, 2, N]
    noise = 0.1 * torch.randn_like(sine)
    assert loss(noise, sine).item() > 0
    assert loss(sine, noise).item() > 0


def test_mel_loss_orders_pitch_shift_above_small_gain_change(mel_loss):
    reference = tone(440.0)
    assert mel_loss(tone(660.0), reference) > 2 * mel_loss(tone(440.0, amplitude=0.45), reference)


def test_mel_loss_gradient_is_finite_from_silence(mel_loss):
    estimate = torch.zeros(1, 1, 2000, requires_grad=True)
    mel_loss(estimate, tone(440.0, n=2000)).backward()
    assert torch.isfinite(estimate.grad).all()


def test_mel_loss_magnitude_term_and_buffers(mel_loss):
    both = MultiResolutionMelLoss(SAMPLE_RATE, (64, 256), (10, 40), mag_weight=1.0)
    log_only = MultiResolutionMelLoss(SAMPLE_RATE, (64, 256), (10, 40))
    a, b = tone(440.0), tone(500.0)
    assert both(a, b) > log_only(a, b)
    assert both.state_dict() == {}  # windows and filterbanks are derived, not checkpointed
    assert mel_loss.filterbank_6.shape == (320, 1025)


def test_shape_mismatch_raises(mel_loss):
    with pytest.raises(ValueError):
        mel_loss(torch.zeros(1, 1, 100), torch.zeros(1, 1, 101))
    with pytest.raises(ValueError):
        MultiResolutionMelLoss(SAMPLE_RATE, (64, 128), (10,))


# --- band-limited items (band_limit_hz) ------------------------------------------------------
LIMIT = 4000.0


@pytest.fixture(scope="module")
def limited_losses(mel_loss):
    stft = MultiResolutionSTFTLoss(fft_sizes=(512, 256, 128), hop_lengths=(64, 32, 16), window_lengths=(400, 200, 100),
                                   sample_rate=SAMPLE_RATE)
    return {"mel": mel_loss, "stft": stft,
            "time_l1": lambda y, x, limits=None: time_l1(y, x, limits, sample_rate=SAMPLE_RATE)}


def telephone_pair(batch: int = 1, n: int = 8000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(reference, estimate, above)``: noise with nothing above 4 kHz, a reconstruction of it with a
    small in-band error, and a 6.5 kHz tone, energy only above the limit, to add to the estimate."""
    generator = torch.Generator().manual_seed(0)
    reference = lowpass(0.3 * torch.randn(batch, 1, n, generator=generator), SAMPLE_RATE, LIMIT, transition=0.0)
    error = lowpass(0.03 * torch.randn(batch, 1, n, generator=generator), SAMPLE_RATE, LIMIT, transition=0.0)
    return reference, reference + error, tone(6500.0, amplitude=0.2, n=n).expand(batch, 1, n)


@pytest.mark.parametrize("name", ["mel", "stft", "time_l1"])
def test_band_limited_item_ignores_what_the_model_adds_above_its_limit(limited_losses, name):
    loss = limited_losses[name]
    reference, estimate, above = telephone_pair()
    limited, unlimited = torch.tensor([LIMIT]), torch.tensor([math.inf])
    base = loss(estimate, reference, limited)
    assert base > 0
    # Energy only above 4 kHz: the masked loss does not move (to window leakage), the full-band one does.
    assert abs(float(loss(estimate + above, reference, limited) - base)) < 1e-3 * float(base)
    assert loss(estimate + above, reference, unlimited) > 1.2 * loss(estimate, reference, unlimited)
    # ... while an error below the limit still counts.
    assert loss(estimate * 0.5, reference, limited) > 1.5 * base


@pytest.mark.parametrize("name", ["mel", "stft", "time_l1"])
def test_without_band_limited_items_the_loss_is_the_old_one(limited_losses, name):
    loss = limited_losses[name]
    reference, estimate, above = telephone_pair(batch=2)
    estimate = estimate + above
    old = loss(estimate, reference)
    for limits in (torch.tensor([math.inf, math.inf]), torch.tensor([SAMPLE_RATE / 2, 1e9])):
        assert torch.equal(loss(estimate, reference, limits), old)
    # A mixed batch: the limited item ignores its 6.5 kHz tone, the other one is charged for it.
    mixed = torch.tensor([LIMIT, math.inf])
    quiet_first = torch.cat([estimate[:1] - above[:1], estimate[1:]])
    quiet_second = torch.cat([estimate[:1], estimate[1:] - above[1:]])
    full = loss(estimate, reference, mixed)
    assert abs(float(loss(quiet_first, reference, mixed) - full)) < 1e-3 * float(full)
    assert loss(quiet_second, reference, mixed) < 0.9 * full


def test_band_limit_argument_errors(limited_losses):
    reference, estimate, _ = telephone_pair(batch=2)
    with pytest.raises(ValueError, match="one value per item"):
        limited_losses["mel"](estimate, reference, torch.tensor([LIMIT]))
    with pytest.raises(ValueError, match="needs the sample rate"):
        MultiResolutionSTFTLoss()(estimate, reference, torch.tensor([LIMIT, LIMIT]))
    assert MultiResolutionSTFTLoss()(estimate, reference, None) > 0


def test_feature_matching():
    torch.manual_seed(0)
    real = [[torch.randn(2, 4, 10), 100 * torch.randn(2, 8, 5)], [torch.randn(2, 1, 7)]]
    assert feature_matching_loss(real, real).item() == 0.0
    fake = [[f + 0.1 * torch.randn_like(f) for f in layers] for layers in real]
    normalised = feature_matching_loss(real, fake)
    plain = feature_matching_loss(real, fake, normalize=False)
    assert normalised > 0 and plain > 0
    # Normalising divides each layer by mean |real|: the large layer no longer dominates.
    assert normalised < plain
    fake_leaf = [[f.clone().requires_grad_() for f in layers] for layers in fake]
    real_leaf = [[f.clone().requires_grad_() for f in layers] for layers in real]
    feature_matching_loss(real_leaf, fake_leaf).backward()
    assert fake_leaf[0][0].grad is not None and real_leaf[0][0].grad is None


@pytest.mark.parametrize("kind", ["hinge", "least_squares", "least-squares"])
def test_adversarial_losses_zero_at_targets(kind):
    ones, zeros = [torch.ones(2, 1, 5), torch.ones(3, 1, 4, 2)], [torch.zeros(2, 1, 5), torch.zeros(3, 1, 4, 2)]
    fake_target = [-o for o in ones] if kind == "hinge" else zeros
    assert discriminator_adversarial_loss(ones, fake_target, kind).item() == 0.0
    assert generator_adversarial_loss(ones, kind).item() == 0.0
    # Wrong-way logits cost the discriminator; a fooled discriminator costs nothing to the generator.
    assert discriminator_adversarial_loss(fake_target, ones, kind).item() > 0
    assert generator_adversarial_loss(fake_target, kind).item() > 0


@pytest.mark.parametrize("kind", sorted(ADVERSARIAL_LOSSES))
def test_adversarial_gradient_signs(kind):
    fake = torch.full((1, 1, 4), -0.5, requires_grad=True)
    generator_adversarial_loss(fake, kind).backward()
    assert (fake.grad < 0).all()  # the generator raises its logits
    real = torch.full((1, 1, 4), 0.5, requires_grad=True)
    fake_d = torch.full((1, 1, 4), 0.5, requires_grad=True)
    discriminator_adversarial_loss(real, fake_d, kind).backward()
    assert (real.grad < 0).all() and (fake_d.grad > 0).all()


def test_unknown_adversarial_kind_raises():
    with pytest.raises(ValueError, match="unknown adversarial"):
        generator_adversarial_loss(torch.zeros(1), "wasserstein")
