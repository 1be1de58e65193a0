"""Build the reference codecs of other projects, randomly initialised, for the benchmarks.

``encodec`` (Meta) imports torchaudio and ``descript-audio-codec`` imports ``audiotools`` and
``argbind``; neither torchaudio build loads with every torch, and audiotools pulls a large
dependency tree. Model construction needs none of them, so :func:`install_stubs` puts small
stand-in modules into ``sys.modules`` (only names touched at import / model-build time) before
importing the packages. Install the packages themselves without dependencies::

    pip install --no-deps encodec descript-audio-codec   # plus einops

Nothing here loads pretrained weights (``pretrained=False``): timings and parameter counts
need only the architecture.
"""

from __future__ import annotations

import sys
import types

import torch


def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    mod.__stub__ = True
    return mod


class _Unavailable:
    """Placeholder for classes the models never instantiate when built and run on tensors."""

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError(f"{type(self).__name__} is a benchmark stub; install the real package to use it")


def install_stubs() -> None:
    """Register stand-ins for ``torchaudio``, ``audiotools`` and ``argbind`` unless they import."""
    try:
        import torchaudio  # noqa: F401
    except Exception:
        sys.modules.pop("torchaudio", None)
        transforms = _module("torchaudio.transforms", Resample=_Unavailable, Spectrogram=_Unavailable)
        sys.modules["torchaudio.transforms"] = transforms
        sys.modules["torchaudio"] = _module("torchaudio", transforms=transforms, load=_Unavailable, save=_Unavailable)
    try:
        import audiotools  # noqa: F401
    except Exception:
        for name in [n for n in sys.modules if n == "audiotools" or n.startswith("audiotools.")]:
            sys.modules.pop(name)

        class BaseModel(torch.nn.Module):
            INTERN: list = []
            EXTERN: list = []

        ml = _module("audiotools.ml", BaseModel=BaseModel, Accelerator=_Unavailable)
        sys.modules["audiotools.ml"] = ml
        sys.modules["audiotools"] = _module(
            "audiotools", ml=ml, AudioSignal=type("AudioSignal", (_Unavailable,), {}),
            STFTParams=type("STFTParams", (_Unavailable,), {}),
        )
    try:
        import argbind  # noqa: F401
    except Exception:
        def bind(*args, **kwargs):
            if args and callable(args[0]) and not kwargs:
                return args[0]
            return lambda fn: fn

        sys.modules["argbind"] = _module("argbind", bind=bind, parse_args=_Unavailable, scope=_Unavailable)


def encodec_24khz() -> torch.nn.Module:
    """Meta's EnCodec 24 kHz model (causal SEANet + 2-layer LSTM, 32 x 1024 RVQ at 75 Hz), random init."""
    install_stubs()
    from encodec import EncodecModel

    model = EncodecModel.encodec_model_24khz(pretrained=False)
    model.set_target_bandwidth(24.0)  # all 32 codebooks
    return model.eval()


#: DAC configurations of the released models (descript-audio-codec, conf/final/*.yaml)
DAC_CONFIGS = {
    "16k": dict(encoder_rates=[2, 4, 5, 8], decoder_rates=[8, 5, 4, 2], n_codebooks=12, sample_rate=16000),
    "24k": dict(encoder_rates=[2, 4, 5, 8], decoder_rates=[8, 5, 4, 2], n_codebooks=32, sample_rate=24000),
    "44k": dict(encoder_rates=[2, 4, 8, 8], decoder_rates=[8, 8, 4, 2], n_codebooks=9, sample_rate=44100),
}


def dac(variant: str = "16k") -> torch.nn.Module:
    """Descript Audio Codec (Kumar et al. 2023) of the given variant, random init."""
    install_stubs()
    from dac.model.dac import DAC

    return DAC(encoder_dim=64, decoder_dim=1536, codebook_size=1024, codebook_dim=8, **DAC_CONFIGS[variant]).eval()
