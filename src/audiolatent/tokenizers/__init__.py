"""Tokenizers. Importing this package registers every built-in kind and name."""

from audiolatent.tokenizers import codec, dmel, mel  # noqa: F401  (registers mel, dmel, codec, mel-16k, mel-24k, dmel-16k)
