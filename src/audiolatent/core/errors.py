"""Exception types. Every error a user can cause derives from :class:`AudioLatentError`.

The CLI prints ``str(error)`` of these as one line and exits non-zero; anything else is a bug
and gets a traceback.
"""

from __future__ import annotations


class AudioLatentError(Exception):
    """Base class of every user-facing audiolatent error."""


class AudioError(AudioLatentError, ValueError):
    """Bad audio: missing/unreadable file, empty, NaN/inf, wrong shape, channels or sample rate."""


class LatentError(AudioLatentError, ValueError):
    """A latent that is malformed, or decoded by a tokenizer that did not make it."""


class ConfigError(AudioLatentError, ValueError):
    """A configuration that cannot be parsed or names unknown fields."""


class CheckpointError(AudioLatentError, ValueError):
    """A checkpoint directory that is missing, incomplete or corrupt."""


class StreamingError(AudioLatentError, RuntimeError):
    """A streaming call that breaks the streaming contract (chunk size, batch size, mode)."""


class ExportError(AudioLatentError, RuntimeError):
    """A model that cannot be exported as asked (a non-causal codec's streaming step, a missing exporter)."""


class RegistryError(AudioLatentError, KeyError):
    """An unknown tokenizer name or kind."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class OutputError(AudioLatentError):
    """An output that cannot or must not be written: read-only, disk full, a directory, the input
    file itself, or a folder that is not ours to replace."""


class DeviceError(AudioLatentError, ValueError):
    """A torch device that does not exist here (``cuda`` on a CPU-only build, a typo)."""
