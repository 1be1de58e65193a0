"""The last stage of the bench pipeline: the results store.

``results.json`` (written atomically, with ``report.html``, after every tokenizer) and what makes
a finished tokenizer reusable: :func:`reuse_key` (config hash, weights, data files, scored split,
preset, metrics, audiolatent version) and :func:`previous_rows` (the rows of an earlier run in the
same folder).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch

from audiolatent.core.atomic import atomic_path

__all__ = ["write_results", "data_fingerprint", "reuse_key", "previous_rows", "summarise_warnings"]


def summarise_warnings(caught: list) -> list[dict]:
    """Warnings seen during a run, one entry per distinct message with its count, most frequent first."""
    from collections import Counter

    counts = Counter(f"{w.category.__name__}: {w.message}" for w in caught)
    return [{"message": m, "count": n} for m, n in counts.most_common()]


def write_results(results: dict, out_dir: Path) -> None:
    """``results.json`` (atomic) and ``report.html`` for what is finished so far."""
    from audiolatent.bench.report import write_report

    with atomic_path(out_dir / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2, default=json_default))
    write_report(results, out_dir)


def data_fingerprint(corpora: dict) -> str:
    """sha256 of every file the run reads (path, size, modification time, split) and the corpora's kinds."""
    rows = []
    for corpus, info in sorted(corpora.items()):
        for split, entries in sorted(info["splits"].items()):
            for e in entries:
                try:
                    st = Path(e.path).stat()
                    stamp = (st.st_size, st.st_mtime_ns)
                except OSError:
                    stamp = None
                rows.append([corpus, info["speech"], split, str(e.path), stamp, e.duration])
    return hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()[:16]


def reuse_key(config_hash: str, weights, data_key: str, preset, requested, split: str = "test") -> str:
    from audiolatent import __version__

    blob = json.dumps({"config": config_hash, "weights": weights, "data": data_key, "preset": asdict(preset),
                       "metrics": sorted(requested) if requested else None, "split": split, "version": __version__},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def previous_rows(path: Path) -> dict:
    """Tokenizer rows of an earlier ``results.json`` in the same folder ({} when there is none or it is unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data.get("tokenizers", {})
        return {k: v for k, v in rows.items() if isinstance(v, dict) and "reuse_key" in v}
    except (OSError, ValueError, AttributeError):
        return {}


def json_default(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)
