"""Encode a corpus once with a tokenizer and keep the latents on disk for every later run.

Layout: ``CACHE/<tokenizer fingerprint>/<file key>.latent`` — one
:meth:`~audiolatent.core.latent.Latent.save` file (safetensors + JSON header) per audio file.

* The *tokenizer fingerprint* (16 hex digits) hashes the tokenizer's ``kind``, its config and
  its weights, so two checkpoints of one codec config never share latents.
* The *file key* (16 hex digits) hashes the audio file's resolved path, size and modification
  time (ns): an edited or replaced file is encoded again, an untouched one never.

Files are written atomically (``Latent.save``), so a run killed half-way leaves only complete
entries, and concurrent runs (DDP ranks) at worst encode the same file twice. The default
cache folder is ``$AUDIOLATENT_CACHE/latents`` or ``~/.cache/audiolatent/latents``.

Example::

    corpus = encode_corpus(load_tokenizer("dmel-16k"), builtin_corpus("speech_real"), split="train")
    corpus.items[0].shape     # [K, T] codes of the first file (T frames at corpus.frame_rate)
    corpus.n_encoded, corpus.n_cached
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from audiolatent.core.audio import load_audio
from audiolatent.core.errors import LatentError
from audiolatent.core.latent import Latent
from audiolatent.core.provenance import tokenizer_fingerprint  # noqa: F401  (re-exported: moved to core)
from audiolatent.data import DataError, entries_from_path
from audiolatent.lm.errors import LMError

__all__ = ["EncodedCorpus", "encode_corpus", "lm_view", "default_cache_dir", "tokenizer_fingerprint", "file_key"]


def default_cache_dir() -> Path:
    """``$AUDIOLATENT_CACHE/latents``, else ``$XDG_CACHE_HOME/audiolatent/latents`` (``~/.cache`` by default)."""
    if os.environ.get("AUDIOLATENT_CACHE"):
        return Path(os.environ["AUDIOLATENT_CACHE"]) / "latents"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "audiolatent" / "latents"


def file_key(path: str | os.PathLike) -> str:
    """16 hex digits of sha256 over ``path`` (resolved), its size and its mtime in ns."""
    path = Path(path).resolve()
    stat = path.stat()
    return hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]


@dataclass
class EncodedCorpus:
    """One split of a corpus as latents of a single-stream tokenizer (or the stacked tokens and
    durations of a variable-rate one, see :func:`lm_view`).

    Attributes:
        items: per file, the valid ``[K, T]`` long codes or ``[D, T]`` float values.
        paths: the audio file of each item.
        frame_rate: frames per second of audio (a variable-rate latent: segments per second over
            the split).
        codebook_sizes: K sizes for discrete streams, None for continuous ones.
        n_encoded / n_cached: files encoded in this call / read back from the cache.
    """

    items: list[torch.Tensor]
    paths: list[Path]
    frame_rate: float
    codebook_sizes: tuple[int, ...] | None
    n_encoded: int = 0
    n_cached: int = 0
    cache_dir: Path | None = None
    skipped: list[str] = field(default_factory=list)

    @property
    def is_discrete(self) -> bool:
        return self.codebook_sizes is not None

    @property
    def n_frames(self) -> int:
        return sum(x.shape[-1] for x in self.items)

    @property
    def seconds(self) -> float:
        return self.n_frames / self.frame_rate


def lm_view(latent: Latent, where: str) -> tuple[torch.Tensor, tuple[int, ...] | None, float]:
    """What a language model reads from one file's latent: ``(values [K|D, T], codebook sizes or
    None, seconds of audio)``.

    A single-stream latent gives its stream. A variable-rate latent (every stream discrete, with
    per-frame ``durations``: the ``segment`` bottleneck's tokens and ``durations`` streams) gives
    its streams stacked as codebooks of one frame per segment, so an LM models each token with its
    duration (the durations stream is one more codebook in the pattern).

    Raises:
        LMError: any other multi-stream latent.
    """
    streams = latent.streams
    first = streams[0]
    n = int(first.lengths[0]) if first.lengths is not None else first.num_frames
    variable = all(s.durations is not None and s.is_discrete for s in streams)
    if len(streams) == 1 and not variable:
        return first.values[0, :, :n].cpu(), first.codebook_sizes, n / first.frame_rate
    if not variable or len({s.values.shape[-1] for s in streams}) != 1:
        raise LMError(f"{where}: the tokenizer makes {len(streams)} streams; LM training takes single-stream latents "
                      "or the tokens and durations of a variable-rate latent")
    values = torch.cat([s.values[0, :, :n] for s in streams], dim=0).cpu()
    sizes = tuple(size for s in streams for size in s.codebook_sizes)
    return values, sizes, float(first.durations[0, :n].sum())


@torch.inference_mode()
def encode_corpus(tokenizer, source: str | os.PathLike, split: str | None = None,
                  cache_dir: str | os.PathLike | None = None, max_items: int | None = None,
                  use_cache: bool = True) -> EncodedCorpus:
    """Latents of every file of ``source`` (manifest, folder or file) in ``split`` (None: all).

    Cached files are read back, the others encoded whole (``[1, C, N]`` at the tokenizer's rate)
    and saved. ``max_items`` keeps the first files of the split. A file too short for one
    frame is skipped (listed in ``skipped``).

    Raises:
        DataError: unreadable source or an empty split.
        LMError: a multi-stream tokenizer.
    """
    entries = entries_from_path(source)
    if split is not None:
        entries = [e for e in entries if e.split == split]
    if max_items is not None:
        entries = entries[:max_items]
    if not entries:
        raise DataError(f"{source}: no files in split {split!r}")
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder / tokenizer_fingerprint(tokenizer)
    expected_hash = tokenizer.config_hash
    items, paths, skipped = [], [], []
    n_encoded = n_cached = 0
    total_seconds = 0.0
    for entry in entries:
        path = Path(entry.path)
        target = folder / f"{file_key(path)}.latent"
        latent = None
        if use_cache and target.is_file():
            try:
                latent = Latent.load(target, expect_config_hash=expected_hash)
                n_cached += 1
            except LatentError:
                latent = None  # damaged or foreign entry: encode again and overwrite it
        if latent is None:
            audio, _ = load_audio(path, sample_rate=tokenizer.sample_rate, mono=tokenizer.channels == 1)
            if audio.shape[-1] < tokenizer.hop_length:
                skipped.append(str(path))
                continue
            latent = tokenizer.encode(audio.to(tokenizer.device))
            if use_cache:
                latent.save(target)
            n_encoded += 1
        values, sizes, seconds = lm_view(latent, str(path))
        if values.shape[-1] == 0:
            skipped.append(str(path))
            continue
        items.append(values.long() if sizes is not None else values.float())
        paths.append(path)
        total_seconds += seconds
    if not items:
        raise DataError(f"{source}: every file of split {split!r} is shorter than one frame")
    # frames per second of audio: the stream's rate, or segments per second for a variable-rate latent
    frame_rate = latent.streams[0].frame_rate
    if latent.streams[0].durations is not None and total_seconds > 0:
        frame_rate = sum(x.shape[-1] for x in items) / total_seconds
    return EncodedCorpus(items, paths, frame_rate, sizes, n_encoded, n_cached, folder if use_cache else None, skipped)
