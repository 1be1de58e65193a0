"""Codec training losses: reconstruction (mel, STFT, waveform), feature matching, adversarial.

Every loss takes audio ``[B, C, N]`` (float, samples in [-1, 1]) as ``(estimate, reference)``,
returns a scalar tensor, is 0 for identical inputs and positive otherwise. Any length ``N``
works: frames are centred (``n_fft // 2`` zero samples padded on each side), so ``N`` need not
be a multiple of any hop.

* :class:`MultiResolutionMelLoss` — L1 between log10 mel magnitudes at several window lengths,
  DAC (Kumar et al. 2023, "High-Fidelity Audio Compression with Improved RVQGAN", Sec. 3.4).
* :class:`MultiResolutionSTFTLoss` — spectral convergence + log-magnitude L1 at several STFT
  resolutions, Parallel WaveGAN (Yamamoto et al. 2020, Sec. 2.3).
* :func:`time_l1` — mean absolute sample difference (EnCodec's ``l_t``, Défossez et al. 2022).
* :func:`feature_matching_loss` — L1 between discriminator feature maps of real and generated
  audio, optionally normalised per layer by the mean magnitude of the real features (EnCodec
  Eq. 2) as opposed to the plain HiFi-GAN version (Kong et al. 2020).
* :func:`generator_adversarial_loss`, :func:`discriminator_adversarial_loss` — hinge (EnCodec)
  or least-squares (LSGAN, Mao et al. 2017; HiFi-GAN, DAC) objectives over the logits of every
  sub-discriminator, picked by name from :data:`ADVERSARIAL_LOSSES`.

Band limits. The three reconstruction losses take ``band_limit_hz``: a ``[B]`` tensor of each
item's highest valid frequency in Hz (``inf``: the whole band; see ``band_limit_hz`` in
:mod:`audiolatent.data.datasets`), for training items such as 8 kHz telephone recordings
upsampled to 16 kHz, whose empty 4-8 kHz band must not teach the codec to drop it. For such an
item the mel and STFT losses ignore every STFT bin above its limit: those bins are zeroed in
both signals before the mel filterbank, and mel bands (or STFT bins) lying wholly above the limit
leave the average, which is taken over the remaining (item, frame, band) terms of the batch, so a
bin below the limit weighs what it weighs for a full-band item. ``time_l1`` compares both signals
after a brick-wall zero-phase low-pass at the item's limit (:func:`audiolatent.data.augment.lowpass`),
so it still checks the waveform below it. With no item limited below Nyquist (or
``band_limit_hz=None``) each loss is computed exactly as without the argument.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.data.augment import lowpass
from audiolatent.nn.melscale import mel_filterbank

__all__ = [
    "stft", "MultiResolutionMelLoss", "MultiResolutionSTFTLoss", "time_l1", "feature_matching_loss",
    "generator_adversarial_loss", "discriminator_adversarial_loss", "ADVERSARIAL_LOSSES",
]


def stft(audio: torch.Tensor, n_fft: int, hop_length: int, window: torch.Tensor) -> torch.Tensor:
    """Centred complex STFT of ``[B, C, N]`` audio -> ``[B * C, n_fft // 2 + 1, T]``, ``T = N // hop_length + 1``.

    Frame ``t`` is centred at sample ``t * hop_length``; the signal is zero-padded by
    ``n_fft // 2`` samples on each side (zeros, not reflection, so any ``N >= 1`` works).
    ``window`` has ``win_length <= n_fft`` samples and is centred in the frame by torch.
    """
    if audio.dim() != 3:
        raise ValueError(f"audio must be [B, C, N], got shape {tuple(audio.shape)}")
    flat = audio.reshape(-1, audio.shape[-1])
    return torch.stft(
        flat, n_fft, hop_length=hop_length, win_length=window.numel(), window=window,
        center=True, pad_mode="constant", return_complex=True,
    )


def _check_pair(estimate: torch.Tensor, reference: torch.Tensor) -> None:
    if estimate.shape != reference.shape or estimate.dim() != 3:
        raise ValueError(
            f"estimate and reference must both be [B, C, N] of one shape, got "
            f"{tuple(estimate.shape)} and {tuple(reference.shape)}"
        )


def _row_limits(band_limit_hz: torch.Tensor | None, estimate: torch.Tensor, sample_rate: int | None) -> torch.Tensor | None:
    """Band limit (Hz) of every row ``[B * C]`` of ``estimate [B, C, N]``, or None when no item of
    the batch is limited below Nyquist (the loss is then the unmasked one)."""
    if band_limit_hz is None:
        return None
    if sample_rate is None:
        raise ValueError("band_limit_hz needs the sample rate: build the loss with sample_rate=")
    limits = torch.as_tensor(band_limit_hz, dtype=torch.float32, device=estimate.device).reshape(-1)
    if limits.numel() != estimate.shape[0]:
        raise ValueError(f"band_limit_hz must hold one value per item ({estimate.shape[0]}), got {limits.numel()}")
    if not bool((limits < sample_rate / 2).any()):
        return None
    return limits.repeat_interleave(estimate.shape[1])


def _bins_below(limits: torch.Tensor, n_fft: int, sample_rate: int) -> torch.Tensor:
    """``[R, n_fft // 2 + 1]`` float mask: 1 where the bin's centre frequency is at most the row's limit."""
    freqs = torch.arange(n_fft // 2 + 1, device=limits.device, dtype=torch.float32) * (sample_rate / n_fft)
    return (freqs[None, :] <= limits[:, None]).float()


def _l1(estimate: torch.Tensor, reference: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean absolute difference, or its average over the terms where the 0/1 ``weight`` (broadcast) is 1."""
    if weight is None:
        return F.l1_loss(estimate, reference)
    weight = weight.expand_as(estimate)
    return ((estimate - reference).abs() * weight).sum() / weight.sum().clamp_min(1.0)


class MultiResolutionMelLoss(nn.Module):
    """Sum over window lengths of the L1 distance between log10 mel magnitudes (DAC's mel loss).

    For each resolution ``i`` (window ``w_i`` samples, Hann, ``n_fft = w_i``, hop
    ``round(w_i * hop_fraction)``, ``n_mels[i]`` mel bins):

        M = |STFT(x)|^T @ fb_i^T               # [B * C, T_i, n_mels[i]], linear magnitude
        loss_i = log_weight * mean|log10(clamp(M_est, eps) ** power) - log10(clamp(M_ref, eps) ** power)|
                 + mag_weight * mean|M_est - M_ref|

    and the loss is ``sum_i loss_i`` (DAC sums resolutions; its defaults are the ones here,
    with ``mag_weight=0``). Windows and filterbanks are precomputed as non-persistent buffers
    (they follow ``.to(device)`` but stay out of checkpoints). ``band_limit_hz`` (``[B]`` Hz, see the
    module docstring) drops every STFT bin above an item's limit, and the mel bands whose lowest
    bin lies above it.

    Args:
        sample_rate: Hz, for the filterbank.
        window_lengths: STFT window lengths in samples (each is also the FFT size).
        n_mels: mel bins per resolution; same length as ``window_lengths``.
        hop_fraction: hop as a fraction of the window (DAC: 1/4).
        f_min, f_max: filterbank range in Hz (``f_max=None``: Nyquist).
        clamp_eps: floor of the mel magnitude before the log (DAC: 1e-5).
        power: exponent on the clamped magnitude inside the log (1: magnitude, 2: power).
        log_weight, mag_weight: weights of the log-mel and linear-mel L1 terms.
        mel_scale, norm: passed to :func:`audiolatent.tokenizers.mel.mel_filterbank`.
    """

    def __init__(
        self,
        sample_rate: int,
        window_lengths: Sequence[int] = (32, 64, 128, 256, 512, 1024, 2048),
        n_mels: Sequence[int] = (5, 10, 20, 40, 80, 160, 320),
        hop_fraction: float = 0.25,
        f_min: float = 0.0,
        f_max: float | None = None,
        clamp_eps: float = 1e-5,
        power: float = 1.0,
        log_weight: float = 1.0,
        mag_weight: float = 0.0,
        mel_scale: str = "slaney",
        norm: str | None = "slaney",
    ) -> None:
        super().__init__()
        if len(window_lengths) != len(n_mels) or not window_lengths:
            raise ValueError(f"window_lengths {window_lengths} and n_mels {n_mels} must be non-empty, same length")
        self.sample_rate = int(sample_rate)
        self.window_lengths = [int(w) for w in window_lengths]
        self.n_mels = [int(m) for m in n_mels]
        self.hop_lengths = [max(1, round(w * hop_fraction)) for w in self.window_lengths]
        self.clamp_eps = clamp_eps
        self.power = power
        self.log_weight = log_weight
        self.mag_weight = mag_weight
        for i, (win, mels) in enumerate(zip(self.window_lengths, self.n_mels)):
            self.register_buffer(f"window_{i}", torch.hann_window(win), persistent=False)
            fb = mel_filterbank(
                sample_rate=self.sample_rate, n_fft=win, n_mels=mels, f_min=f_min, f_max=f_max,
                mel_scale=mel_scale, norm=norm,
            )
            self.register_buffer(f"filterbank_{i}", fb, persistent=False)
            # Lowest frequency each mel band reads (0 for an empty band, which then always counts).
            freqs = torch.arange(fb.shape[1], dtype=torch.float32) * (self.sample_rate / win)
            lowest = torch.where(fb > 0, freqs, torch.inf).amin(dim=1)
            self.register_buffer(f"band_low_hz_{i}", torch.where(torch.isinf(lowest), 0.0, lowest), persistent=False)

    def mel_magnitudes(self, audio: torch.Tensor, limits: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Linear mel magnitudes of ``[B, C, N]`` audio, one ``[B * C, T_i, n_mels[i]]`` per resolution.

        ``limits`` (``[B * C]`` Hz): STFT bins above a row's limit are zeroed before the filterbank.
        """
        out = []
        for i, (win, hop) in enumerate(zip(self.window_lengths, self.hop_lengths)):
            spec = stft(audio, win, hop, getattr(self, f"window_{i}")).abs()
            if limits is not None:
                spec = spec * _bins_below(limits, win, self.sample_rate)[:, :, None]
            # [B*C, T, F] @ [F, M] runs as one matrix product; fb @ spec would be a batched one.
            out.append(torch.matmul(spec.transpose(1, 2), getattr(self, f"filterbank_{i}").T))
        return out

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor,
                band_limit_hz: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar loss between ``estimate`` and ``reference``, both ``[B, C, N]``; ``band_limit_hz``: ``[B]`` Hz or None."""
        _check_pair(estimate, reference)
        limits = _row_limits(band_limit_hz, estimate, self.sample_rate)
        # One STFT pass over both signals halves the number of kernel launches.
        mels = self.mel_magnitudes(torch.cat([estimate, reference], dim=0),
                                   None if limits is None else limits.repeat(2))
        half = estimate.shape[0] * estimate.shape[1]
        loss = estimate.new_zeros(())
        for i, mel in enumerate(mels):
            mel_est, mel_ref = mel[:half], mel[half:]
            bands = None  # [B * C, 1, n_mels]: 1 for the mel bands that start at or below the row's limit
            if limits is not None:
                bands = (getattr(self, f"band_low_hz_{i}")[None, None, :] <= limits[:, None, None]).float()
            if self.log_weight:
                log_est = mel_est.clamp_min(self.clamp_eps).pow(self.power).log10()
                log_ref = mel_ref.clamp_min(self.clamp_eps).pow(self.power).log10()
                loss = loss + self.log_weight * _l1(log_est, log_ref, bands)
            if self.mag_weight:
                loss = loss + self.mag_weight * _l1(mel_est, mel_ref, bands)
        return loss


class MultiResolutionSTFTLoss(nn.Module):
    """Mean over STFT resolutions of spectral convergence + log-magnitude L1 (Parallel WaveGAN).

    For each resolution (FFT size, hop, Hann window length; magnitudes ``S = |STFT(x)|``
    of shape ``[B * C, n_fft // 2 + 1, T]``):

        sc   = mean over items of ||S_ref - S_est||_F / ||S_ref||_F      (spectral convergence)
        mag  = mean |log(clamp(S_ref, eps)) - log(clamp(S_est, eps))|      (natural log)
        loss = mean over resolutions of (sc_weight * sc + mag_weight * mag)

    Defaults are Parallel WaveGAN's three resolutions (Yamamoto et al. 2020, Table 1 at 24 kHz).
    Spectral convergence of a silent reference is taken against ``||S_ref||_F`` floored at ``eps``.
    ``sample_rate`` (Hz) is needed only for ``band_limit_hz`` (module docstring), which keeps both
    norms and the log-magnitude average to the bins at or below each item's limit.
    """

    def __init__(
        self,
        fft_sizes: Sequence[int] = (1024, 2048, 512),
        hop_lengths: Sequence[int] = (120, 240, 50),
        window_lengths: Sequence[int] = (600, 1200, 240),
        sc_weight: float = 1.0,
        mag_weight: float = 1.0,
        eps: float = 1e-7,
        sample_rate: int | None = None,
    ) -> None:
        super().__init__()
        if not (len(fft_sizes) == len(hop_lengths) == len(window_lengths)) or not fft_sizes:
            raise ValueError("fft_sizes, hop_lengths and window_lengths must be non-empty and of one length")
        for n_fft, win in zip(fft_sizes, window_lengths):
            if win > n_fft:
                raise ValueError(f"window length {win} exceeds FFT size {n_fft}")
        self.fft_sizes = [int(n) for n in fft_sizes]
        self.hop_lengths = [int(h) for h in hop_lengths]
        self.sc_weight = sc_weight
        self.mag_weight = mag_weight
        self.eps = eps
        self.sample_rate = sample_rate
        for i, win in enumerate(window_lengths):
            self.register_buffer(f"window_{i}", torch.hann_window(int(win)), persistent=False)

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor,
                band_limit_hz: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar loss between ``estimate`` and ``reference``, both ``[B, C, N]``; ``band_limit_hz``: ``[B]`` Hz or None."""
        _check_pair(estimate, reference)
        limits = _row_limits(band_limit_hz, estimate, self.sample_rate)
        both = torch.cat([estimate, reference], dim=0)
        half = estimate.shape[0] * estimate.shape[1]
        loss = estimate.new_zeros(())
        for i, (n_fft, hop) in enumerate(zip(self.fft_sizes, self.hop_lengths)):
            mag = stft(both, n_fft, hop, getattr(self, f"window_{i}")).abs()
            mag_est, mag_ref = mag[:half], mag[half:]
            keep = None if limits is None else _bins_below(limits, n_fft, self.sample_rate)[:, :, None]
            if keep is not None:
                mag_est, mag_ref = mag_est * keep, mag_ref * keep
            sc = torch.linalg.vector_norm(mag_ref - mag_est, dim=(1, 2)) / torch.linalg.vector_norm(
                mag_ref, dim=(1, 2)
            ).clamp_min(self.eps)
            log_l1 = _l1(mag_est.clamp_min(self.eps).log(), mag_ref.clamp_min(self.eps).log(), keep)
            loss = loss + self.sc_weight * sc.mean() + self.mag_weight * log_l1
        return loss / len(self.fft_sizes)


def time_l1(estimate: torch.Tensor, reference: torch.Tensor, band_limit_hz: torch.Tensor | None = None,
            sample_rate: int | None = None) -> torch.Tensor:
    """Mean absolute difference of ``[B, C, N]`` waveforms (EnCodec's time-domain loss ``l_t``).

    ``band_limit_hz`` (``[B]`` Hz, with ``sample_rate``): the rows of a limited item are compared
    after a brick-wall zero-phase low-pass at its limit (module docstring).
    """
    _check_pair(estimate, reference)
    limits = _row_limits(band_limit_hz, estimate, sample_rate)
    if limits is not None:
        limits = limits.reshape(estimate.shape[:2])
        limited = (limits < sample_rate / 2)[..., None]
        estimate = torch.where(limited, lowpass(estimate, sample_rate, limits, transition=0.0), estimate)
        reference = torch.where(limited, lowpass(reference, sample_rate, limits, transition=0.0), reference)
    return F.l1_loss(estimate, reference)


def feature_matching_loss(
    fmap_real: Sequence[Sequence[torch.Tensor]],
    fmap_fake: Sequence[Sequence[torch.Tensor]],
    normalize: bool = True,
    eps: float = 1e-8,
) -> torch.Tensor:
    """L1 between discriminator features of real and generated audio, averaged over all layers.

    ``fmap_*[k][l]`` is layer ``l`` of sub-discriminator ``k`` (any shape, the same for real
    and fake), as returned by the discriminators of :mod:`audiolatent.train.discriminators`.
    With ``normalize=True`` (EnCodec, Défossez et al. 2022, Eq. 2) each layer's mean absolute
    difference is divided by the mean absolute value of the real features, so every layer
    weighs the same whatever its scale; with ``False`` it is the plain mean L1 (HiFi-GAN
    sums these; we average, which only rescales the weight). The real features are detached:
    the generator is trained to match them, the discriminator is not trained by this loss.
    """
    if len(fmap_real) != len(fmap_fake):
        raise ValueError(f"{len(fmap_real)} real vs {len(fmap_fake)} fake sub-discriminators")
    terms = []
    for layers_real, layers_fake in zip(fmap_real, fmap_fake):
        if len(layers_real) != len(layers_fake):
            raise ValueError(f"{len(layers_real)} real vs {len(layers_fake)} fake layers")
        for real, fake in zip(layers_real, layers_fake):
            real = real.detach()
            term = F.l1_loss(fake, real)
            if normalize:
                term = term / (real.abs().mean() + eps)
            terms.append(term)
    if not terms:
        raise ValueError("no feature maps given")
    return torch.stack(terms).mean()


def _as_list(logits: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    items = [logits] if isinstance(logits, torch.Tensor) else list(logits)
    if not items:
        raise ValueError("no logits given")
    return items


def _hinge_generator(fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - fake).mean()


def _hinge_discriminator(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def _least_squares_generator(fake: torch.Tensor) -> torch.Tensor:
    return (1.0 - fake).pow(2).mean()


def _least_squares_discriminator(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return (1.0 - real).pow(2).mean() + fake.pow(2).mean()


#: adversarial objectives by name: (generator loss of fake logits, discriminator loss of real and fake logits).
#: ``hinge``: the generator pushes fake logits to >= 1, the discriminator real >= 1 and fake <= -1 (EnCodec).
#: ``least_squares``: targets 1 for real and 0 for fake (LSGAN; HiFi-GAN, DAC).
ADVERSARIAL_LOSSES: dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]] = {
    "hinge": (_hinge_generator, _hinge_discriminator),
    "least_squares": (_least_squares_generator, _least_squares_discriminator),
}


def _objectives(kind: str) -> tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    key = kind.replace("-", "_")
    if key not in ADVERSARIAL_LOSSES:
        raise ValueError(f"unknown adversarial loss {kind!r}; known: {sorted(ADVERSARIAL_LOSSES)}")
    return ADVERSARIAL_LOSSES[key]


def generator_adversarial_loss(
    logits_fake: torch.Tensor | Sequence[torch.Tensor], kind: str = "hinge"
) -> torch.Tensor:
    """Generator's adversarial loss, averaged over sub-discriminators (``1/K sum_k``, EnCodec Eq. 1).

    ``logits_fake``: one tensor or a list (one per sub-discriminator, any shapes) of logits of
    generated audio. ``kind``: a key of :data:`ADVERSARIAL_LOSSES` (``-`` and ``_`` both accepted).
    """
    gen, _ = _objectives(kind)
    return torch.stack([gen(fake) for fake in _as_list(logits_fake)]).mean()


def discriminator_adversarial_loss(
    logits_real: torch.Tensor | Sequence[torch.Tensor],
    logits_fake: torch.Tensor | Sequence[torch.Tensor],
    kind: str = "hinge",
) -> torch.Tensor:
    """Discriminator's adversarial loss, averaged over sub-discriminators.

    Pass logits of *detached* generated audio so that this loss trains only the discriminator.
    """
    _, disc = _objectives(kind)
    real, fake = _as_list(logits_real), _as_list(logits_fake)
    if len(real) != len(fake):
        raise ValueError(f"{len(real)} real vs {len(fake)} fake logits")
    return torch.stack([disc(r, f) for r, f in zip(real, fake)]).mean()
