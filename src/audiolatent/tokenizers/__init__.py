"""Tokenizers. Importing this package registers every built-in kind and name."""

from audiolatent.tokenizers import adapters, classical, codec, dmel, mel, pretrained, waveform_patch  # noqa: F401  (registers every built-in kind and name)
