"""The encode stage of the bench pipeline: latents of a tokenizer, encoded once per file.

The bench reads every file mono at the tokenizer's rate (a stereo tokenizer gets the same
signal in each channel: :func:`as_channels`) and encodes it with
:func:`audiolatent.tokenizers.long.encode_any` (long files in bounded memory). The latents are
kept in a :class:`LatentCache` on disk, keyed like the LM latent cache
(:mod:`audiolatent.lm.latent_cache`): a fingerprint of the tokenizer's kind, config and every
weight, and a key of the file's path, size and modification time. The distortion and
modelability stages of one run, and every later run, read a file's latent back instead of
encoding it again; an edited file or other weights are a miss. Each entry records how long its
encode took, so ``rate.encode_rtf`` stays a measured figure when latents come from the cache.

Layout: ``CACHE/<fingerprint>[-dualmono]/<file key>.latent`` under ``$AUDIOLATENT_CACHE/bench``
(``~/.cache/audiolatent/bench`` by default); ``-dualmono`` marks stereo tokenizers, whose bench
latents are of dual-mono audio, not of the file's own channels. Writes are atomic, so a stopped
run leaves only whole entries and ``torchrun`` ranks never read half a file.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from audiolatent.core.errors import ConfigError, LatentError
from audiolatent.core.latent import Latent
from audiolatent.data import AudioDataset
from audiolatent.lm.latent_cache import file_key, tokenizer_fingerprint
from audiolatent.tokenizers.long import encode_any

__all__ = ["LatentCache", "default_bench_cache_dir", "as_channels", "encode_audio", "encode_entries"]


def default_bench_cache_dir() -> Path:
    """``$AUDIOLATENT_CACHE/bench``, else ``$XDG_CACHE_HOME/audiolatent/bench`` (``~/.cache`` by default)."""
    if os.environ.get("AUDIOLATENT_CACHE"):
        return Path(os.environ["AUDIOLATENT_CACHE"]) / "bench"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "audiolatent" / "bench"


@dataclass
class LatentCache:
    """One tokenizer's latents on disk (see the module docstring); ``folder`` None: no cache.

    ``hits`` and ``misses`` count the lookups of this run.
    """

    folder: Path | None
    config_hash: str = ""
    hits: int = 0
    misses: int = 0

    @classmethod
    def for_tokenizer(cls, tok, root: str | os.PathLike | None | bool = None) -> "LatentCache":
        """The cache of ``tok`` under ``root`` (None: :func:`default_bench_cache_dir`; False: no cache)."""
        if root is False:
            return cls(None, tok.config_hash)
        base = Path(root) if root not in (None, True) else default_bench_cache_dir()
        suffix = "" if tok.channels == 1 else "-dualmono"
        return cls(base / f"{tokenizer_fingerprint(tok)}{suffix}", tok.config_hash)

    def get(self, path) -> tuple[Latent, float] | None:
        """``(latent, encode seconds)`` of ``path``, or None (no cache, not there, or unreadable)."""
        if self.folder is None:
            return None
        target = self.folder / f"{file_key(path)}.latent"
        if target.is_file():
            try:
                latent = Latent.load(target, expect_config_hash=self.config_hash)
                self.hits += 1
                return latent, float(latent.meta.get("bench_encode_seconds", 0.0))
            except (LatentError, OSError, ValueError):
                pass  # a damaged or foreign entry: encode again and replace it
        self.misses += 1
        return None

    def put(self, path, latent: Latent, seconds: float) -> None:
        if self.folder is None:
            return
        latent.meta["bench_encode_seconds"] = seconds
        latent.save(self.folder / f"{file_key(path)}.latent")

    def summary(self) -> dict:
        return {"folder": None if self.folder is None else str(self.folder), "hits": self.hits, "misses": self.misses}


def as_channels(audio: torch.Tensor, tok) -> torch.Tensor:
    """Mono ``[1, 1, N]`` as the tokenizer's channels: the same signal in each (a stereo codec gets dual mono)."""
    return audio.expand(-1, tok.channels, -1) if tok.channels > 1 else audio


def encode_audio(tok, path, audio: torch.Tensor, cache: LatentCache, phones=None) -> tuple[Latent, float, bool]:
    """``(latent, encode seconds, from cache)`` of the mono ``[1, 1, N]`` ``audio`` of file ``path``;
    ``phones``: the file's alignment, for a tokenizer that segments by phones (``needs_phones``)."""
    found = cache.get(path)
    if found is not None:
        return found[0], found[1], True
    t0 = time.perf_counter()
    if getattr(tok, "needs_phones", False):
        if not phones:
            raise ConfigError(f"{tok.name}: {path} has no phone alignment (`phones` in its manifest row)")
        latent = tok.encode_aligned(as_channels(audio, tok), phones)
    else:
        latent = encode_any(tok, as_channels(audio, tok))
    seconds = time.perf_counter() - t0
    cache.put(path, latent, seconds)
    return latent, seconds, False


@torch.inference_mode()
def encode_entries(tok, entries: list, cache: LatentCache, ctx=None, progress: bool = False,
                   desc: str = "encode") -> tuple[list[Latent], list[torch.Tensor]]:
    """Latents and mono audio ``[1, N]`` of every entry, in entry order. Under ``torchrun``
    (``ctx``) each rank encodes every ``world_size``-th file and every rank gets them all."""
    rank, world = (ctx.rank, ctx.world_size) if ctx is not None else (0, 1)
    ds = AudioDataset(entries, sample_rate=tok.sample_rate, mono=True)
    mine = []
    for i in tqdm(range(rank, len(ds), world), desc=desc, disable=not progress or rank != 0, leave=False):
        audio = ds[i]["audio"][None]
        latent, _, _ = encode_audio(tok, ds.entries[i].path, audio, cache, ds.entries[i].phones)
        mine.append((i, latent.to("cpu"), audio[0]))
    if ctx is not None:
        mine = ctx.gather(mine)
    mine.sort(key=lambda item: item[0])
    return [latent for _, latent, _ in mine], [audio for _, _, audio in mine]
