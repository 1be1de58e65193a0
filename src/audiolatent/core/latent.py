"""``Latent``: what a tokenizer produces, and the ``.latent`` file that stores it.

A latent is one or more *streams*. Each stream is either

* **discrete**: integer codes ``[B, K, T]`` — K codebooks, ``codebook_sizes[k]`` symbols each, or
* **continuous**: float values ``[B, D, T]``,

at its own ``frame_rate`` (frames per second). Multi-scale tokenizers (SNAC-style) have several
streams at different rates; variable-rate tokenizers add per-frame ``durations`` (in seconds,
``[B, T]``). Padded batches carry ``lengths`` (valid frames per item, ``[B]``). The latent also
remembers the tokenizer that made it (name and config hash) and the number of audio samples
each item had, so decoding can trim to the original length.

Nominal rate of a discrete stream = frame_rate x sum_k log2(codebook_sizes[k]) bits/s; of a
continuous stream we report values/s = frame_rate x D (bits are not defined without a
precision). A latent's ``bits_per_second`` sums its discrete streams.

File format (``Latent.save``/``Latent.load``): one safetensors file; tensors
``stream{i}.values``, optional ``stream{i}.lengths``, ``stream{i}.durations`` and
``num_samples``; the safetensors metadata holds one JSON header under ``audiolatent``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from audiolatent.core.atomic import atomic_path
from audiolatent.core.errors import LatentError

__all__ = ["Stream", "Latent", "LATENT_FORMAT_VERSION"]

LATENT_FORMAT_VERSION = 1


@dataclass
class Stream:
    """One stream of a latent. See the module docstring for shapes and units."""

    values: torch.Tensor
    frame_rate: float
    codebook_sizes: tuple[int, ...] | None = None  # None: continuous
    name: str = "main"
    lengths: torch.Tensor | None = None  # [B] valid frames
    durations: torch.Tensor | None = None  # [B, T] seconds per frame (variable-rate)

    def __post_init__(self) -> None:
        if not isinstance(self.values, torch.Tensor) or self.values.dim() != 3:
            shape = tuple(self.values.shape) if isinstance(self.values, torch.Tensor) else type(self.values).__name__
            raise LatentError(f"stream {self.name!r}: values must be a [B, K|D, T] tensor, got {shape}")
        if not (self.frame_rate > 0 and math.isfinite(self.frame_rate)):
            raise LatentError(f"stream {self.name!r}: frame_rate must be positive, got {self.frame_rate}")
        if self.codebook_sizes is not None:
            self.codebook_sizes = tuple(int(s) for s in self.codebook_sizes)
            if torch.is_floating_point(self.values):
                raise LatentError(f"stream {self.name!r}: discrete codes must be integers, got {self.values.dtype}")
            if len(self.codebook_sizes) != self.values.shape[1]:
                raise LatentError(
                    f"stream {self.name!r}: {self.values.shape[1]} codebooks in values but "
                    f"{len(self.codebook_sizes)} codebook sizes"
                )
            if any(s < 2 for s in self.codebook_sizes):
                raise LatentError(f"stream {self.name!r}: codebook sizes must be >= 2, got {self.codebook_sizes}")
        elif not torch.is_floating_point(self.values):
            raise LatentError(f"stream {self.name!r}: continuous values must be floating point, got {self.values.dtype}")
        if self.lengths is not None and tuple(self.lengths.shape) != (self.values.shape[0],):
            raise LatentError(f"stream {self.name!r}: lengths must be [B]={self.values.shape[0]}, got {tuple(self.lengths.shape)}")
        if self.durations is not None and tuple(self.durations.shape) != (self.values.shape[0], self.values.shape[2]):
            raise LatentError(f"stream {self.name!r}: durations must be [B, T], got {tuple(self.durations.shape)}")

    @property
    def is_discrete(self) -> bool:
        return self.codebook_sizes is not None

    @property
    def num_frames(self) -> int:
        return self.values.shape[-1]

    @property
    def bits_per_frame(self) -> float:
        """Nominal bits per frame: sum of log2 codebook sizes (0 for continuous streams)."""
        return float(sum(math.log2(s) for s in self.codebook_sizes)) if self.is_discrete else 0.0

    @property
    def bits_per_second(self) -> float:
        """Nominal bitrate: frame_rate x bits_per_frame (0 for continuous streams); a variable-rate
        stream counts its :attr:`effective_frame_rate`."""
        return self.effective_frame_rate * self.bits_per_frame

    def frames_and_seconds(self) -> tuple[int, float]:
        """Valid frames over the batch and the seconds of audio they cover (their ``durations``,
        or ``frames / frame_rate`` for a fixed-rate stream)."""
        lengths = self.lengths.tolist() if self.lengths is not None else [self.num_frames] * self.values.shape[0]
        frames = sum(int(n) for n in lengths)
        if self.durations is None:
            return frames, frames / self.frame_rate
        return frames, sum(float(self.durations[b, : int(n)].sum()) for b, n in enumerate(lengths))

    @property
    def effective_frame_rate(self) -> float:
        """Frames per second of audio: ``frame_rate``, or for a variable-rate stream its valid
        frames / the seconds of their ``durations``."""
        if self.durations is None:
            return self.frame_rate
        frames, seconds = self.frames_and_seconds()
        return frames / seconds if seconds > 0 else self.frame_rate

    @property
    def values_per_second(self) -> float:
        """Numbers per second of audio: effective frame rate x (K or D)."""
        return self.effective_frame_rate * self.values.shape[1]

    def check_codes(self) -> None:
        """Raise LatentError if any discrete code lies outside its codebook."""
        if not self.is_discrete or self.values.numel() == 0:
            return
        if len(set(self.codebook_sizes)) == 1:  # one size (every RVQ): a min/max suffices
            low, high = torch.aminmax(self.values)
            bad = bool((low < 0) | (high >= self.codebook_sizes[0]))
        else:
            sizes = torch.tensor(self.codebook_sizes, device=self.values.device)[None, :, None]
            bad = bool((self.values < 0).any()) or bool((self.values >= sizes).any())
        if bad:
            raise LatentError(f"stream {self.name!r}: codes outside [0, codebook_size) for codebook sizes {self.codebook_sizes}")


@dataclass
class Latent:
    """A tokenizer's output: streams plus provenance. See the module docstring."""

    streams: list[Stream]
    sample_rate: int
    tokenizer: str = ""
    config_hash: str = ""
    num_samples: torch.Tensor | None = None  # [B] original audio lengths, samples
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.streams:
            raise LatentError("a latent needs at least one stream")
        batch = {s.values.shape[0] for s in self.streams}
        if len(batch) != 1:
            raise LatentError(f"streams disagree on batch size: {sorted(batch)}")
        names = [s.name for s in self.streams]
        if len(set(names)) != len(names):
            raise LatentError(f"stream names must be unique, got {names}")

    # --- convenience -----------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.streams[0].values.shape[0]

    @property
    def is_discrete(self) -> bool:
        return all(s.is_discrete for s in self.streams)

    @property
    def bits_per_second(self) -> float:
        """Nominal bitrate summed over discrete streams (bits/s)."""
        return sum(s.bits_per_second for s in self.streams)

    @property
    def values_per_second(self) -> float:
        return sum(s.values_per_second for s in self.streams)

    @property
    def codes(self) -> torch.Tensor:
        """The codes of a single-stream discrete latent, ``[B, K, T]``."""
        if len(self.streams) != 1 or not self.streams[0].is_discrete:
            raise LatentError("`.codes` needs a single discrete stream; use `.streams`")
        return self.streams[0].values

    def __getitem__(self, name: str) -> Stream:
        for s in self.streams:
            if s.name == name:
                return s
        raise LatentError(f"no stream named {name!r}; streams: {[s.name for s in self.streams]}")

    def to(self, device: torch.device | str) -> "Latent":
        streams = [
            Stream(
                s.values.to(device), s.frame_rate, s.codebook_sizes, s.name,
                None if s.lengths is None else s.lengths.to(device),
                None if s.durations is None else s.durations.to(device),
            )
            for s in self.streams
        ]
        ns = None if self.num_samples is None else self.num_samples.to(device)
        return Latent(streams, self.sample_rate, self.tokenizer, self.config_hash, ns, dict(self.meta))

    def describe(self) -> str:
        parts = []
        for s in self.streams:
            kind = f"{len(s.codebook_sizes)} codebooks x {sorted(set(s.codebook_sizes))}" if s.is_discrete else f"{s.values.shape[1]} dims"
            parts.append(f"{s.name}: {kind}, {s.num_frames} frames @ {s.frame_rate:g} Hz")
        return "; ".join(parts)

    # --- file format -----------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the latent to one safetensors file, atomically."""
        tensors: dict[str, torch.Tensor] = {}
        header_streams = []
        for i, s in enumerate(self.streams):
            tensors[f"stream{i}.values"] = s.values.detach().cpu().contiguous()
            if s.lengths is not None:
                tensors[f"stream{i}.lengths"] = s.lengths.detach().cpu().long().contiguous()
            if s.durations is not None:
                tensors[f"stream{i}.durations"] = s.durations.detach().cpu().float().contiguous()
            header_streams.append(
                {"name": s.name, "frame_rate": s.frame_rate,
                 "codebook_sizes": list(s.codebook_sizes) if s.is_discrete else None}
            )
        if self.num_samples is not None:
            tensors["num_samples"] = self.num_samples.detach().cpu().long().contiguous()
        header = {
            "format_version": LATENT_FORMAT_VERSION,
            "tokenizer": self.tokenizer,
            "config_hash": self.config_hash,
            "sample_rate": self.sample_rate,
            "streams": header_streams,
            "meta": self.meta,
        }
        with atomic_path(path, suffix=".tmp") as tmp:
            save_file(tensors, str(tmp), metadata={"audiolatent": json.dumps(header)})
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, expect_config_hash: str | None = None) -> "Latent":
        """Read a file written by :meth:`save`.

        ``expect_config_hash``: if given and the file was made by a tokenizer with another
        config hash, raise LatentError (decoding it would give silently wrong audio).
        """
        path = Path(path)
        if not path.is_file():
            raise LatentError(f"{path}: no such latent file")
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise LatentError(f"{path}: not a readable latent file ({' '.join(str(exc).split())})") from None
        if "audiolatent" not in metadata:
            raise LatentError(f"{path}: safetensors file without an audiolatent header; not a latent file")
        try:
            header = json.loads(metadata["audiolatent"])
        except json.JSONDecodeError:
            raise LatentError(f"{path}: corrupt latent header (not JSON)") from None
        _check_header(header, path)
        version = header["format_version"]
        if version > LATENT_FORMAT_VERSION:
            raise LatentError(f"{path}: latent format {version} is newer than this audiolatent ({LATENT_FORMAT_VERSION}); upgrade")
        if expect_config_hash is not None and header.get("config_hash") != expect_config_hash:
            raise LatentError(
                f"{path}: made by tokenizer {header.get('tokenizer')!r} (config {header.get('config_hash')}), "
                f"which differs from the decoding tokenizer (config {expect_config_hash})"
            )
        try:
            streams = [
                Stream(
                    tensors[f"stream{i}.values"], float(h["frame_rate"]),
                    tuple(h["codebook_sizes"]) if h["codebook_sizes"] is not None else None, h["name"],
                    tensors.get(f"stream{i}.lengths"), tensors.get(f"stream{i}.durations"),
                )
                for i, h in enumerate(header["streams"])
            ]
        except KeyError as exc:
            raise LatentError(f"{path}: corrupt latent file (missing {exc})") from None
        except LatentError as exc:
            raise LatentError(f"{path}: {exc}") from None
        num_samples = tensors.get("num_samples")
        if num_samples is not None:
            if num_samples.dim() != 1 or num_samples.dtype.is_floating_point or num_samples.shape[0] != streams[0].values.shape[0]:
                raise LatentError(f"{path}: corrupt latent file (num_samples must be [B] integers)")
            if bool((num_samples < 0).any()):
                raise LatentError(f"{path}: corrupt latent file (negative num_samples {num_samples.tolist()})")
        for s in streams:
            if s.lengths is not None and (s.lengths.dim() != 1 or bool((s.lengths < 0).any()) or bool((s.lengths > s.num_frames).any())):
                raise LatentError(f"{path}: corrupt latent file (stream {s.name!r} lengths outside [0, {s.num_frames}])")
        return cls(streams, int(header["sample_rate"]), header.get("tokenizer", ""), header.get("config_hash", ""),
                   num_samples, header.get("meta", {}))


def _check_header(header, path) -> None:
    """The header's schema: value types a hand edit could break (raise LatentError naming the field)."""
    def bad(field: str, want: str, value) -> LatentError:
        return LatentError(f"{path}: corrupt latent header: {field} must be {want}, got {value!r}")

    if not isinstance(header, dict):
        raise bad("the header", "a JSON object", header)
    if "format_version" not in header:
        raise LatentError(f"{path}: corrupt latent header (no format_version)")
    version = header["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise bad("format_version", "a positive integer", version)
    rate = header.get("sample_rate")
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        raise bad("sample_rate", "a positive integer", rate)
    for key in ("tokenizer", "config_hash"):
        if key in header and not isinstance(header[key], str):
            raise bad(key, "a string", header[key])
    if "meta" in header and not isinstance(header["meta"], dict):
        raise bad("meta", "an object", header["meta"])
    streams = header.get("streams")
    if not isinstance(streams, list) or not streams:
        raise bad("streams", "a non-empty list", streams)
    for i, h in enumerate(streams):
        if not isinstance(h, dict):
            raise bad(f"streams[{i}]", "an object", h)
        fr = h.get("frame_rate")
        if not isinstance(fr, int | float) or isinstance(fr, bool) or not math.isfinite(fr) or fr <= 0:
            raise bad(f"streams[{i}].frame_rate", "a positive number", fr)
        if not isinstance(h.get("name"), str):
            raise bad(f"streams[{i}].name", "a string", h.get("name"))
        sizes = h.get("codebook_sizes")
        if sizes is not None and (not isinstance(sizes, list) or not sizes
                                  or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 2 for v in sizes)):
            raise bad(f"streams[{i}].codebook_sizes", "null or a list of integers >= 2", sizes)
