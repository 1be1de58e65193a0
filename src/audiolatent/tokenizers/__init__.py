"""Tokenizers. Importing this package registers every built-in kind and name."""

from audiolatent.tokenizers import classical, codec, dmel, mel  # noqa: F401  (registers every built-in kind and name)
