"""The Stable Audio Open VAE (Evans et al., 2024) through ``diffusers``: ``stable-audio-vae``.

``AutoencoderOobleck``: a convolutional VAE with Snake activations, 44.1 kHz stereo in,
a 64-dimensional continuous latent at 44100 / 2048 = 21.5 frames/s out (the latent the
Stable Audio Open diffusion model is trained on). Non-causal. The latent is the posterior
*mean* (deterministic; sampling it would add the VAE's noise). ``AutoencoderOobleck()``'s
defaults are the released architecture (156 M parameters). Weights: the ``vae`` folder of
``stabilityai/stable-audio-open-1.0``, a gated repository: accept its licence on the hub and
log in before downloading; offline, pass ``weights=`` the local folder holding the VAE.
"""

from __future__ import annotations

import inspect
import warnings

import torch

from audiolatent.core.latent import Stream
from audiolatent.tokenizers.adapters.base import AdapterError, AdapterSpec, register_adapter

NAME, HUB_ID = "stable-audio-vae", "stabilityai/stable-audio-open-1.0"
RATE, HOP, DIM = 44100, 2048, 64
#: round-trip lookahead, probed on the random-weight architecture (128 phases of two frames: 25065
#: samples, 568 ms), rounded up to whole frames; convolutions only, so it is finite
LOOKAHEAD = 13 * HOP


def _build(weights: str, revision: str, pretrained: bool, overrides: dict) -> torch.nn.Module:
    from diffusers import AutoencoderOobleck

    if pretrained:
        try:
            with warnings.catch_warnings():  # diffusers' own deprecations (weight_norm, hub arguments)
                warnings.simplefilter("ignore", FutureWarning)
                warnings.filterwarnings("ignore", "The `local_dir_use_symlinks`", UserWarning)
                return AutoencoderOobleck.from_pretrained(weights, revision=revision,
                                                          **({"subfolder": "vae"} if weights == HUB_ID else {}))
        except (OSError, ValueError) as exc:
            raise AdapterError(
                f"{NAME}: cannot load weights {weights!r} (revision {revision}, folder vae): "
                f"{' '.join(str(exc).split())[:200]}. The repository is gated: accept its licence on the hub, "
                f"download it on a machine with network (huggingface-cli download {weights} --include 'vae/*') and "
                f"copy the cache, pass a local directory, or use pretrained=False for random weights") from None
    unknown = set(overrides) - set(inspect.signature(AutoencoderOobleck.__init__).parameters)
    if unknown:
        raise AdapterError(f"{NAME}: AutoencoderOobleck has no argument {sorted(unknown)[0]!r} to override")
    with warnings.catch_warnings():  # diffusers builds it with the deprecated torch.nn.utils.weight_norm
        warnings.simplefilter("ignore", FutureWarning)
        return AutoencoderOobleck(**overrides)


def _encode(model, audio: torch.Tensor, n_q: int) -> list[Stream]:
    mean = model.encode(audio).latent_dist.mean  # [B, 64, T]
    return [Stream(mean, RATE / HOP, None, "latent")]


def _decode(model, latent: torch.Tensor) -> torch.Tensor:
    return model.decode(latent).sample


register_adapter(AdapterSpec(
    name=NAME, description=f"Stable Audio Open VAE (diffusers; {HUB_ID}, gated): non-causal, 44.1 kHz stereo, "
                           f"64-d continuous at 21.5 Hz",
    package="diffusers", hub_id=HUB_ID, sample_rate=RATE, channels=2, hop_length=HOP, codebook_size=0,
    max_codebooks=0, default_codebooks=0, causal=False, lookahead=LOOKAHEAD, build=_build, encode=_encode, decode=_decode,
    randomise=lambda model, seed: None, continuous=True, config_file="vae/config.json", streams_note="64-d continuous at 21.5 Hz",
))
