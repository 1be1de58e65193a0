"""audiolatent: build, train, stream and measure audio latents.

The public API::

    import audiolatent as al
    audio, sr = al.load_audio("speech.flac", sample_rate=16000, mono=True)   # [1, 1, N]
    tok = al.load_tokenizer("dmel-16k")
    latent = tok.encode(audio)          # Latent: streams of codes or values
    recon = tok.decode(latent)          # [1, 1, N]
"""

__version__ = "0.1.0"

from audiolatent.core import (  # noqa: E402
    AudioError,
    AudioLatentError,
    CheckpointError,
    ConfigError,
    Latent,
    LatentError,
    RegistryError,
    Stream,
    StreamingError,
    StreamingModule,
    Tokenizer,
    list_tokenizers,
    load_audio,
    load_tokenizer,
    save_audio,
)

__all__ = [
    "__version__", "AudioError", "AudioLatentError", "CheckpointError", "ConfigError", "Latent", "LatentError",
    "RegistryError", "Stream", "StreamingError", "StreamingModule", "Tokenizer", "list_tokenizers", "load_audio",
    "load_tokenizer", "save_audio",
]
