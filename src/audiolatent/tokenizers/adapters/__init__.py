"""Adapters: codecs of other projects as tokenizers (see :mod:`.base`). Importing registers them.

One file per model family: ``encodec.py`` (``encodec-24k``), ``dac.py`` (``dac-16k``, ``dac-24k``,
``dac-44k``), ``mimi.py`` (``mimi``, with exact streaming encode). The model libraries are imported only when an adapter is built, so listing them
costs nothing; install them with ``pip install 'audiolatent[adapters]'``.
"""

from audiolatent.tokenizers.adapters import dac, encodec, mimi, snac, stable_audio, wavtokenizer, xcodec, xcodec2  # noqa: F401  (registers the names)
from audiolatent.tokenizers.adapters.base import ADAPTERS, AdapterError, AdapterTokenizer, adapter_status, parse_options

__all__ = ["ADAPTERS", "AdapterError", "AdapterTokenizer", "adapter_status", "parse_options"]
