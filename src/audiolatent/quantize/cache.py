"""The quantisers' memo of derived tables: :class:`audiolatent.core.cache.TableCache`.

It lives in ``core`` because the streaming convolutions of ``audiolatent.nn`` use it too (folded
weight norm); this module keeps the import path of the quantisers.
"""

from audiolatent.core.cache import TableCache, is_tracing

__all__ = ["TableCache", "is_tracing"]
