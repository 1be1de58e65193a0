"""Errors of the second-stage models."""

from audiolatent.core.errors import AudioLatentError


class LMError(AudioLatentError, ValueError):
    """An LM training or generation request that cannot be honoured (wrong latent kind, short prompt...)."""
