"""Tokenizers. Importing this package registers every built-in kind and name."""

from audiolatent.tokenizers import classical, codec, dmel, mel, pretrained  # noqa: F401  (registers every built-in kind and name)
