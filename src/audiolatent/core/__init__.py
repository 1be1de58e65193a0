"""Core types: audio I/O, Latent, Tokenizer protocol, streaming state, configs, checkpoints."""

from audiolatent.core.audio import check_audio, load_audio, resample, save_audio
from audiolatent.core.checkpoint import load_checkpoint, save_checkpoint
from audiolatent.core.errors import (
    AudioError,
    AudioLatentError,
    CheckpointError,
    ConfigError,
    LatentError,
    RegistryError,
    StreamingError,
)
from audiolatent.core.latent import Latent, Stream
from audiolatent.core.registry import list_tokenizers, load_tokenizer, register_kind, register_tokenizer
from audiolatent.core.streaming import StreamingModule
from audiolatent.core.tokenizer import Tokenizer

__all__ = [
    "AudioError", "AudioLatentError", "CheckpointError", "ConfigError", "LatentError", "RegistryError",
    "StreamingError", "Latent", "Stream", "StreamingModule", "Tokenizer", "check_audio", "list_tokenizers",
    "load_audio", "load_checkpoint", "load_tokenizer", "register_kind", "register_tokenizer", "resample",
    "save_audio", "save_checkpoint",
]
