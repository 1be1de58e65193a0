"""X-Codec 2.0 (Ye et al., 2025) through ``transformers``: ``xcodec2``.

A w2v-BERT 2.0 semantic encoder beside a convolutional acoustic encoder, fused and quantised by
one FSQ codebook of 65,536 codes (8 levels of 4) at 50 frames/s, 16 kHz: 0.8 kbps. A Vocos
decoder (transformer backbone, iSTFT head). Non-causal. Weights: ``HKUSTAudio/xcodec2-hf``;
``Xcodec2Config()``'s defaults are its architecture (629 M parameters, checked on the meta device).

The semantic encoder takes Kaldi log-mel filterbanks that transformers computes with
torchaudio, which does not load beside this project's torch; :func:`kaldi_fbank` computes the
same features in torch (80 bins, 25 ms Povey window, 10 ms shift, pre-emphasis 0.97, DC
removed, 20 Hz-8 kHz), and :func:`features` pads and stacks them the way
``Xcodec2FeatureExtractor`` does (one extra sample, half a hop each side, per-utterance
mean/variance normalisation, pairs of frames stacked to 160 dims). The library's extractor
makes ``ceil((N + 1) / 320)`` frames for ``N`` samples; the adapter keeps the ``ceil(N / 320)``
of the framing rule.
"""

from __future__ import annotations

import math

import torch

from audiolatent.tokenizers.adapters.base import AdapterSpec, apply_overrides, capture_input, from_pretrained, register_adapter

NAME, HUB_ID = "xcodec2", "HKUSTAudio/xcodec2-hf"
RATE, HOP, N_MELS, FRAME, SHIFT, STACK = 16000, 320, 80, 400, 160, 2


def _mel(f: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(f / 700.0)


def kaldi_fbank(waveform: torch.Tensor, sample_rate: int = RATE, n_mels: int = N_MELS, frame_length: int = FRAME,
                frame_shift: int = SHIFT, low_freq: float = 20.0, high_freq: float | None = None,
                preemphasis: float = 0.97) -> torch.Tensor:
    """Kaldi's log mel filterbank of a mono waveform ``[N]`` -> ``[frames, n_mels]``.

    ``snip_edges`` framing (``1 + (N - frame_length) // frame_shift`` frames), no dither, DC
    offset removed per frame, pre-emphasis, Povey window (Hann ** 0.85), FFT padded to a power
    of two, power spectrum, triangular filters equally spaced on Kaldi's mel scale
    (1127 ln(1 + f / 700)), natural log floored at float32 epsilon: what
    ``torchaudio.compliance.kaldi.fbank`` computes with ``use_energy=False``. The waveform is
    expected in 16-bit integer scale (``audio * 2**15``), as Kaldi reads it.
    """
    if waveform.dim() != 1 or waveform.shape[0] < frame_length:
        raise ValueError(f"kaldi_fbank needs a 1-D waveform of at least {frame_length} samples, got {tuple(waveform.shape)}")
    high_freq = sample_rate / 2 if high_freq is None else high_freq
    frames = waveform.double().unfold(0, frame_length, frame_shift)  # [F, L]
    frames = frames - frames.mean(-1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=-1)
    frames = frames - preemphasis * previous
    frames = frames * torch.hann_window(frame_length, periodic=False, dtype=torch.float64).pow(0.85)
    n_fft = 1 << (frame_length - 1).bit_length()
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2)  # [F, n_fft / 2 + 1]
    mel_low, mel_high = _mel(torch.tensor(low_freq, dtype=torch.float64)), _mel(torch.tensor(high_freq, dtype=torch.float64))
    delta = (mel_high - mel_low) / (n_mels + 1)
    edges = mel_low + delta * torch.arange(n_mels + 2, dtype=torch.float64)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    mel = _mel(sample_rate / n_fft * torch.arange(n_fft // 2, dtype=torch.float64))[None]  # Nyquist bin gets no weight
    banks = torch.clamp(torch.minimum((mel - left) / (centre - left), (right - mel) / (right - centre)), min=0.0)
    banks = torch.nn.functional.pad(banks, (0, 1))
    energies = power @ banks.T
    return torch.clamp(energies, min=torch.finfo(torch.float32).eps).log().float()


def features(audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_values [B, 1, N'], input_features [B, T', 160])`` for mono 16 kHz audio ``[B, 1, N]``,
    as ``Xcodec2FeatureExtractor`` pads and stacks them (see the module docstring)."""
    n = audio.shape[-1] + 1
    padded = torch.nn.functional.pad(audio, (0, math.ceil(n / HOP) * HOP - audio.shape[-1]))
    stacked = []
    for wave in padded[:, 0]:
        fb = kaldi_fbank(torch.nn.functional.pad(wave, (HOP // 2, HOP // 2)) * 2**15)
        fb = (fb - fb.mean(0)) / torch.sqrt(fb.var(0, unbiased=True) + 1e-7)
        usable = fb.shape[0] - fb.shape[0] % STACK
        stacked.append(fb[:usable].reshape(usable // STACK, N_MELS * STACK))
    return padded, torch.stack(stacked)


def _build(weights: str, revision: str, pretrained: bool, overrides: dict) -> torch.nn.Module:
    from transformers import Xcodec2Config, Xcodec2Model

    if pretrained:
        return from_pretrained(Xcodec2Model, weights, revision, NAME)
    return Xcodec2Model(apply_overrides(Xcodec2Config(), overrides))


def _encode(model, audio: torch.Tensor, n_q: int) -> torch.Tensor:
    frames = audio.shape[-1] // HOP
    values, feats = features(audio.float())
    codes = model.encode(values, feats.to(values.dtype)).audio_codes  # [B, 1, T + 1]
    return codes[..., :frames]


def _decode(model, codes: torch.Tensor) -> torch.Tensor:
    audio = model.decode(audio_codes=codes).audio_values
    return audio[:, None] if audio.dim() == 2 else audio


def _randomise(model, seed: int) -> None:
    """Random weights: the FSQ input projection re-drawn so the quantiser's input of 1 s of noise
    is standardised per dimension before projection (a random init puts every frame on one code)."""
    noise = 0.1 * torch.randn(1, 1, RATE, generator=torch.Generator().manual_seed(seed))
    values, feats = features(noise)
    x = capture_input(model.quantizer, "forward", lambda: model.encode(values, feats))[0]  # [T, D]
    mean, std = x.mean(0), x.std(0).clamp_min(1e-8)
    proj = model.quantizer.project_in
    weight = torch.randn(proj.weight.shape, generator=torch.Generator().manual_seed(seed)) / math.sqrt(x.shape[-1])
    proj.weight.copy_(weight / std)
    proj.bias.copy_(-(weight / std) @ mean)


register_adapter(AdapterSpec(
    name=NAME, description=f"X-Codec 2.0 (transformers; {HUB_ID}): non-causal, 50 Hz, one FSQ codebook of 65,536",
    package="transformers", hub_id=HUB_ID, sample_rate=RATE, channels=1, hop_length=HOP, codebook_size=4**8,
    max_codebooks=1, default_codebooks=1, causal=False, lookahead=None, build=_build, encode=_encode, decode=_decode,
    randomise=_randomise,
    streams_note="1 x 65,536 (FSQ) at 50 Hz",
))
