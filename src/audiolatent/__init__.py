"""audiolatent: build, train, stream and measure audio latents.

The public API::

    import audiolatent as al
    audio, sr = al.load_audio("speech.flac", sample_rate=16000, mono=True)   # [1, 1, N]
    tok = al.load_tokenizer("dmel-16k")
    latent = tok.encode(audio)          # Latent: streams of codes or values
    recon = tok.decode(latent)          # [1, 1, N]
"""

__version__ = "0.1.0"

# Names are imported on first use (PEP 562), so `audiolatent --help` and the error types load
# without torch; `import audiolatent as al; al.load_tokenizer(...)` works as before.
_EXPORTS = {
    "AudioError": "audiolatent.core.errors", "AudioLatentError": "audiolatent.core.errors",
    "CheckpointError": "audiolatent.core.errors", "ConfigError": "audiolatent.core.errors",
    "ExportError": "audiolatent.core.errors",
    "LatentError": "audiolatent.core.errors", "RegistryError": "audiolatent.core.errors",
    "StreamingError": "audiolatent.core.errors", "Latent": "audiolatent.core.latent", "Stream": "audiolatent.core.latent",
    "StreamingModule": "audiolatent.core.streaming", "Tokenizer": "audiolatent.core.tokenizer",
    "list_tokenizers": "audiolatent.core.registry", "load_tokenizer": "audiolatent.core.registry",
    "load_audio": "audiolatent.core.audio", "save_audio": "audiolatent.core.audio",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'audiolatent' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
