"""Core types: audio I/O, Latent, Tokenizer protocol, streaming state, configs, checkpoints.

Names are imported on first use (PEP 562): ``from audiolatent.core import Latent`` works as
usual, and importing ``audiolatent.core.errors`` alone does not load torch.
"""

_EXPORTS = {
    "check_audio": "audio", "load_audio": "audio", "resample": "audio", "save_audio": "audio",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "AudioError": "errors", "AudioLatentError": "errors", "CheckpointError": "errors", "ConfigError": "errors",
    "LatentError": "errors", "RegistryError": "errors", "StreamingError": "errors",
    "Latent": "latent", "Stream": "latent",
    "list_tokenizers": "registry", "load_tokenizer": "registry", "register_kind": "registry",
    "register_tokenizer": "registry",
    "StreamingModule": "streaming", "Tokenizer": "tokenizer",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f"audiolatent.core.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'audiolatent.core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
