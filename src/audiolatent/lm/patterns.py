"""Codebook interleaving patterns: codes ``[B, K, T]`` <-> an LM sequence ``[B, K', S]``.

A token LM predicts one *step* of a sequence at a time from the steps before it. With K
codebooks per frame there is a choice of which codes share a step; that choice is the pattern
(idea from audiocraft's ``codebooks_patterns``; Copet et al., 2023, "Simple and Controllable
Music Generation" — MusicGen). Every pattern here maps codes ``[B, K, T]`` to

* ``sequence [B, K', S]`` (long): the codes laid out over S steps, ``pad_id`` where a slot is
  empty, and
* ``valid [K', S]`` (bool): True where a slot holds a real code (same for every batch item),

and ``revert(sequence, n_frames)`` gives the codes back exactly. The patterns:

==========  ==========  =========  ===================================================================
name        K'          S          layout
==========  ==========  =========  ===================================================================
flat        1           K * T      fully unrolled, frame-major: step ``t * K + k`` holds code (k, t);
                                   one token per step, the codebook of step s is ``s % K``
parallel    K           T          step t holds all K codes of frame t (predicted independently)
delay       K           T + K - 1  codebook k of frame t sits at step ``t + k`` (MusicGen's delay)
valle       K           T or 2T    steps 0..T-1: codebook 0 of frame t (AR); steps T..2T-1: codebooks
                                   1..K-1 of frame ``s - T`` in parallel (VALL-E; Wang et al., 2023);
                                   K = 1 has no second half (S = T)
depth       K           T          ``parallel`` with ``depth = True``: the model runs a temporal
                                   transformer over frames and a small depth transformer over the K
                                   codebooks of a frame (RQ-Transformer, Lee et al., 2022; UniAudio,
                                   Yang et al., 2023; Moshi, Défossez et al., 2024)
==========  ==========  =========  ===================================================================

``valle`` as one causal sequence is audiocraft's reading of VALL-E: the codebook-0 stream is
predicted autoregressively, then codebooks 1..K-1 of each frame are predicted in one step
seeing all of codebook 0 and the earlier frames. VALL-E's own non-autoregressive stage
(bidirectional, one codebook per pass) is the SoundStorm-style decoder in ``lm/maskgit.py``.

Example (K = 2, T = 3, delay, ``.`` = pad)::

    codes  [[a0 a1 a2],        sequence  [[a0 a1 a2 . ],       valid [[1 1 1 0],
            [b0 b1 b2]]                   [ . b0 b1 b2]]              [0 1 1 1]]
"""

from __future__ import annotations

import torch

__all__ = ["Pattern", "FlatPattern", "ParallelPattern", "DelayPattern", "VallePattern", "DepthPattern", "PATTERNS", "get_pattern"]


class Pattern:
    """Base class. Subclasses define ``n_steps``, ``_build`` and ``_revert`` for ``K`` codebooks.

    Attributes:
        name: registry name.
        n_codebooks: K.
        n_streams: K' (rows of the sequence).
        depth: True when the model should predict a frame's codebooks with a depth transformer.
        pad_id: the integer written into empty slots.
    """

    name = ""
    depth = False

    def __init__(self, n_codebooks: int, pad_id: int = -1) -> None:
        if n_codebooks < 1:
            raise ValueError(f"a pattern needs at least one codebook, got {n_codebooks}")
        self.n_codebooks, self.pad_id = n_codebooks, pad_id

    @property
    def n_streams(self) -> int:
        return self.n_codebooks

    def n_steps(self, n_frames: int) -> int:
        """S for T = ``n_frames``."""
        raise NotImplementedError

    def build(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``codes [B, K, T]`` -> ``(sequence [B, K', S], valid [K', S] bool)``."""
        if codes.dim() != 3 or codes.shape[1] != self.n_codebooks:
            raise ValueError(f"{self.name}: expected codes [B, {self.n_codebooks}, T], got {tuple(codes.shape)}")
        sequence = self._build(codes)
        valid = self.valid_mask(codes.shape[-1], codes.device)
        return sequence.masked_fill(~valid[None], self.pad_id), valid

    def revert(self, sequence: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``sequence [B, K', S]`` -> ``codes [B, K, T]`` with T = ``n_frames``."""
        expected = (self.n_streams, self.n_steps(n_frames))
        if sequence.dim() != 3 or tuple(sequence.shape[1:]) != expected:
            raise ValueError(f"{self.name}: expected a sequence [B, {expected[0]}, {expected[1]}], got {tuple(sequence.shape)}")
        return self._revert(sequence, n_frames)

    def valid_mask(self, n_frames: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """``[K', S]`` bool: slots that hold a real code."""
        ones = torch.ones(1, self.n_codebooks, n_frames, dtype=torch.long, device=device)
        return self._build(ones)[0] == 1

    def known_mask(self, n_known_frames: int, n_frames: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """``[K', S]`` bool: slots holding codes of the first ``n_known_frames`` frames (a prompt)."""
        known = torch.zeros(1, self.n_codebooks, n_frames, dtype=torch.long, device=device)
        known[..., :n_known_frames] = 1
        return self._build(known)[0] == 1

    def _build(self, codes: torch.Tensor) -> torch.Tensor:
        """Lay ``codes [B, K, T]`` out as ``[B, K', S]``; empty slots hold 0."""
        raise NotImplementedError

    def _revert(self, sequence: torch.Tensor, n_frames: int) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_codebooks={self.n_codebooks}, pad_id={self.pad_id})"


class FlatPattern(Pattern):
    """Fully unrolled: ``[B, 1, K * T]``, step ``t * K + k`` holds code (k, t). See module docstring."""

    name = "flat"

    @property
    def n_streams(self) -> int:
        return 1

    def n_steps(self, n_frames: int) -> int:
        return self.n_codebooks * n_frames

    def codebook_of_step(self, n_steps: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """``[S]`` long: the codebook whose code sits at each step (``s % K``)."""
        return torch.arange(n_steps, device=device) % self.n_codebooks

    def _build(self, codes: torch.Tensor) -> torch.Tensor:
        return codes.transpose(1, 2).reshape(codes.shape[0], 1, -1)

    def _revert(self, sequence: torch.Tensor, n_frames: int) -> torch.Tensor:
        return sequence.reshape(sequence.shape[0], n_frames, self.n_codebooks).transpose(1, 2).contiguous()


class ParallelPattern(Pattern):
    """Step t holds all K codes of frame t: ``[B, K, T]`` unchanged."""

    name = "parallel"

    def n_steps(self, n_frames: int) -> int:
        return n_frames

    def _build(self, codes: torch.Tensor) -> torch.Tensor:
        return codes.clone()

    def _revert(self, sequence: torch.Tensor, n_frames: int) -> torch.Tensor:
        return sequence.clone()


class DelayPattern(Pattern):
    """MusicGen's delay: codebook k shifted right by k steps, ``S = T + K - 1``."""

    name = "delay"

    def n_steps(self, n_frames: int) -> int:
        return n_frames + self.n_codebooks - 1

    def _build(self, codes: torch.Tensor) -> torch.Tensor:
        batch, n_codebooks, n_frames = codes.shape
        sequence = codes.new_zeros(batch, n_codebooks, self.n_steps(n_frames))
        for k in range(n_codebooks):
            sequence[:, k, k : k + n_frames] = codes[:, k]
        return sequence

    def _revert(self, sequence: torch.Tensor, n_frames: int) -> torch.Tensor:
        return torch.stack([sequence[:, k, k : k + n_frames] for k in range(self.n_codebooks)], dim=1)


class VallePattern(Pattern):
    """VALL-E as one causal sequence: codebook 0 over T steps, then codebooks 1..K-1 per frame."""

    name = "valle"

    def n_steps(self, n_frames: int) -> int:
        return n_frames if self.n_codebooks == 1 else 2 * n_frames

    def _build(self, codes: torch.Tensor) -> torch.Tensor:
        batch, n_codebooks, n_frames = codes.shape
        sequence = codes.new_zeros(batch, n_codebooks, self.n_steps(n_frames))
        sequence[:, 0, :n_frames] = codes[:, 0]
        if n_codebooks > 1:
            sequence[:, 1:, n_frames:] = codes[:, 1:]
        return sequence

    def _revert(self, sequence: torch.Tensor, n_frames: int) -> torch.Tensor:
        if self.n_codebooks == 1:
            return sequence.clone()
        return torch.cat([sequence[:, :1, :n_frames], sequence[:, 1:, n_frames:]], dim=1)


class DepthPattern(ParallelPattern):
    """``parallel`` layout; the model predicts each frame's codebooks with a depth transformer."""

    name = "depth"
    depth = True


PATTERNS: dict[str, type[Pattern]] = {
    cls.name: cls for cls in (FlatPattern, ParallelPattern, DelayPattern, VallePattern, DepthPattern)
}


def get_pattern(name: str, n_codebooks: int, pad_id: int = -1) -> Pattern:
    """Build a registered pattern by name (``flat``, ``parallel``, ``delay``, ``valle``, ``depth``)."""
    if name not in PATTERNS:
        raise ValueError(f"unknown codebook pattern {name!r}; known: {sorted(PATTERNS)}")
    return PATTERNS[name](n_codebooks, pad_id)
