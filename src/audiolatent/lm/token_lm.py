"""``TokenLM``: a causal transformer language model over discrete codes ``[B, K, T]``.

The codes are laid out by a codebook pattern (``lm/patterns.py``) as a sequence ``[B, K', S]``;
the transformer predicts step ``s`` from the steps before it. Ideas:

* per step, the input is the **sum of one embedding per codebook** (one table per codebook plus
  two special tokens: *empty* for pattern padding and *start* before step 0) and the output is
  **one linear head per codebook** — MusicGen (Copet et al., 2023);
* ``flat``: a single token per step; its embedding comes from its codebook's table, and a
  learned *codebook-position* embedding tells the model which codebook step ``s`` predicts
  (``s % K``), as in fully flattened token LMs (e.g. UniAudio's global view, Yang et al., 2023);
* ``depth``: a temporal transformer over frames (input: the summed embeddings of frame t - 1)
  and a small causal *depth transformer* over the K codebooks of frame t, whose input at
  codebook k is the projected temporal state plus the embedding of code k - 1 of the same
  frame — the RQ-Transformer (Lee et al., 2022), UniAudio and Moshi (Défossez et al., 2024).

Backbone: ``audiolatent.nn.transformer.StreamingTransformer`` (pre-norm, RoPE, KV cache).
``generate`` feeds one step at a time inside ``streaming()``, which equals the full causal pass,
so the logits of incremental decoding are the logits of ``forward`` on the finished codes.

Shapes: ``forward(codes [B, K, T])`` returns *frame-aligned* logits, a list of K tensors
``[B, T, codebook_sizes[k]]``: entry ``[b, t]`` of codebook k is the prediction of code
``codes[b, k, t]`` from what the pattern places before it. ``loss`` is the cross-entropy of
those logits, mean over tokens, in nats (bits = nats / ln 2), per codebook.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.lm.patterns import Pattern, get_pattern
from audiolatent.lm.sampling import sample_from_logits
from audiolatent.nn.transformer import StreamingTransformer

__all__ = ["TokenLM", "TokenLMLoss"]


@dataclass
class TokenLMLoss:
    """Cross-entropy of a batch. ``loss``: mean nats per token (for backprop); per codebook ``[K]``."""

    loss: torch.Tensor
    nats_per_codebook: torch.Tensor  # [K] mean nats per token of codebook k
    tokens_per_codebook: torch.Tensor  # [K] number of tokens averaged

    @property
    def bits_per_codebook(self) -> torch.Tensor:
        return self.nats_per_codebook / math.log(2)

    @property
    def bits_per_frame(self) -> torch.Tensor:
        """Bits per frame: one token per codebook per frame, so the sum over codebooks."""
        return self.bits_per_codebook.sum()


class TokenLM(nn.Module):
    """Causal transformer LM over codes with a codebook pattern (see the module docstring).

    Args:
        codebook_sizes: size of each of the K codebooks.
        pattern: a pattern name (``flat``, ``parallel``, ``delay``, ``valle``, ``depth``).
        dim: transformer width.
        num_layers, num_heads, dim_feedforward, context: of the temporal transformer.
        depth_dim, depth_layers, depth_heads: of the depth transformer (``depth`` only).
    """

    def __init__(
        self,
        codebook_sizes: list[int] | tuple[int, ...],
        pattern: str = "delay",
        dim: int = 128,
        num_layers: int = 4,
        num_heads: int = 4,
        dim_feedforward: int | None = None,
        context: int | None = None,
        depth_dim: int = 64,
        depth_layers: int = 1,
        depth_heads: int = 4,
    ) -> None:
        super().__init__()
        self.codebook_sizes = tuple(int(c) for c in codebook_sizes)
        self.n_codebooks = len(self.codebook_sizes)
        self.pattern: Pattern = get_pattern(pattern, self.n_codebooks)
        self.is_flat = pattern == "flat"
        self.dim = dim
        # one table per codebook, stored as one embedding with offsets: codes, then empty, then start
        offsets = [0]
        for size in self.codebook_sizes:
            offsets.append(offsets[-1] + size + 2)
        self.register_buffer("offsets", torch.tensor(offsets[:-1]), persistent=False)
        self.register_buffer("sizes", torch.tensor(self.codebook_sizes), persistent=False)
        self.embedding = nn.Embedding(offsets[-1], dim)
        self.codebook_position = nn.Embedding(self.n_codebooks, dim) if self.is_flat else None
        self.transformer = StreamingTransformer(dim, num_layers, num_heads, dim_feedforward, context)
        self.norm = nn.LayerNorm(dim)
        if self.pattern.depth:
            self.depth_in = nn.Linear(dim, depth_dim)
            self.depth_embedding = nn.Embedding(offsets[-1], depth_dim)
            self.depth_transformer = StreamingTransformer(depth_dim, depth_layers, depth_heads)
            self.depth_norm = nn.LayerNorm(depth_dim)
            head_dim = depth_dim
        else:
            head_dim = dim
        self.heads = nn.ModuleList(nn.Linear(head_dim, size) for size in self.codebook_sizes)

    # --- token ids and embeddings ------------------------------------------------------------
    def _codebook_of_rows(self, steps: torch.Tensor) -> torch.Tensor:
        """``[K', L]`` long: the codebook of each slot of the given steps."""
        if self.is_flat:
            return (steps % self.n_codebooks)[None]
        return torch.arange(self.n_codebooks, device=steps.device)[:, None].expand(-1, steps.numel())

    def _token_ids(self, sequence: torch.Tensor, valid: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Global embedding ids of ``sequence [B, K', L]`` at ``steps [L]`` (empty slots -> empty id)."""
        codebook = self._codebook_of_rows(steps)
        tokens = torch.where(valid[None], sequence, self.sizes[codebook][None])
        return self.offsets[codebook][None] + tokens

    def _start_ids(self, batch: int, device: torch.device) -> torch.Tensor:
        """``[B, K', 1]`` ids of the start token (codebook 0's for ``flat``)."""
        rows = 1 if self.is_flat else self.n_codebooks
        ids = (self.offsets + self.sizes + 1)[:rows]
        return ids[None, :, None].expand(batch, -1, 1).to(device)

    def _embed(self, ids: torch.Tensor, predicted_steps: torch.Tensor) -> torch.Tensor:
        """``ids [B, K', L]`` -> ``[B, dim, L]``: summed over rows, plus the codebook position (flat)."""
        x = self.embedding(ids).sum(dim=1)
        if self.codebook_position is not None:
            x = x + self.codebook_position(predicted_steps % self.n_codebooks)[None]
        return x.transpose(1, 2)

    def _frame_steps(self, n_frames: int, device: torch.device) -> torch.Tensor:
        """``[K, T]`` long: the step at which code (k, t) sits in the pattern's sequence."""
        steps = torch.arange(self.pattern.n_steps(n_frames), device=device)
        return self.pattern.revert(steps[None, None].expand(1, self.pattern.n_streams, -1), n_frames)[0]

    # --- offline ------------------------------------------------------------------------------
    def forward(self, codes: torch.Tensor) -> list[torch.Tensor]:
        """``codes [B, K, T]`` -> K frame-aligned logits ``[B, T, codebook_sizes[k]]``."""
        batch, _, n_frames = codes.shape
        if self.pattern.depth:
            return self._forward_depth(codes)
        sequence, valid = self.pattern.build(codes)
        steps = torch.arange(sequence.shape[-1], device=codes.device)
        ids = self._token_ids(sequence, valid, steps)
        inputs = torch.cat([self._start_ids(batch, codes.device), ids[..., :-1]], dim=-1)
        hidden = self.norm(self.transformer(self._embed(inputs, steps)).transpose(1, 2))  # [B, S, dim]
        frame_steps = self._frame_steps(n_frames, codes.device)
        return [head(hidden[:, frame_steps[k]]) for k, head in enumerate(self.heads)]

    def _temporal_inputs(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, K, T]`` -> temporal inputs ``[B, dim, T]`` (frame t sees frame t - 1)."""
        batch, _, n_frames = codes.shape
        valid = torch.ones(self.n_codebooks, n_frames, dtype=torch.bool, device=codes.device)
        ids = self._token_ids(codes, valid, torch.arange(n_frames, device=codes.device))
        inputs = torch.cat([self._start_ids(batch, codes.device), ids[..., :-1]], dim=-1)
        return self._embed(inputs, torch.arange(n_frames, device=codes.device))

    def _depth_logits(self, temporal: torch.Tensor, codes: torch.Tensor) -> list[torch.Tensor]:
        """``temporal [N, dim]`` state, ``codes [N, k]`` (k < K known codes) -> logits of codebooks 0..k."""
        n_known = codes.shape[1]
        x = self.depth_in(temporal)[:, None].expand(-1, n_known + 1, -1)
        start = (self.offsets[:1] + self.sizes[:1] + 1).expand(temporal.shape[0], 1)  # codebook 0's start id
        ids = torch.cat([start, self.offsets[:n_known][None] + codes], dim=1)
        x = x + self.depth_embedding(ids)
        hidden = self.depth_norm(self.depth_transformer(x.transpose(1, 2)).transpose(1, 2))  # [N, k + 1, depth_dim]
        return [self.heads[k](hidden[:, k]) for k in range(n_known + 1)]

    def _forward_depth(self, codes: torch.Tensor) -> list[torch.Tensor]:
        batch, n_codebooks, n_frames = codes.shape
        temporal = self.norm(self.transformer(self._temporal_inputs(codes)).transpose(1, 2))  # [B, T, dim]
        flat_codes = codes.transpose(1, 2).reshape(batch * n_frames, n_codebooks)
        logits = self._depth_logits(temporal.reshape(batch * n_frames, -1), flat_codes[:, :-1])
        return [lg.reshape(batch, n_frames, -1) for lg in logits]

    def loss(self, codes: torch.Tensor) -> TokenLMLoss:
        """Cross-entropy of ``codes [B, K, T]`` under the model, per codebook (nats)."""
        logits = self(codes)
        per_codebook = torch.stack(
            [F.cross_entropy(lg.reshape(-1, lg.shape[-1]), codes[:, k].reshape(-1)) for k, lg in enumerate(logits)]
        )
        tokens = torch.full((self.n_codebooks,), codes.shape[0] * codes.shape[2], device=codes.device)
        return TokenLMLoss(per_codebook.mean(), per_codebook, tokens)

    # --- generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        prompt_codes: torch.Tensor,
        n_frames: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        return_logits: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Continue ``prompt_codes [B, K, Tp]`` (Tp may be 0) by ``n_frames`` frames.

        Returns codes ``[B, K, Tp + n_frames]``; with ``return_logits`` also the K frame-aligned
        logits ``[B, Tp + n_frames, V_k]`` seen during decoding (prompt slots teacher-forced),
        which equal ``forward`` on the returned codes. One transformer call per step, KV-cached.
        """
        batch, n_codebooks, n_prompt = prompt_codes.shape
        if n_codebooks != self.n_codebooks:
            raise ValueError(f"expected {self.n_codebooks} codebooks in the prompt, got {n_codebooks}")
        total = n_prompt + n_frames
        device = prompt_codes.device
        codes = torch.zeros(batch, n_codebooks, total, dtype=torch.long, device=device)
        codes[..., :n_prompt] = prompt_codes
        logits_out = [torch.zeros(batch, total, size, device=device) for size in self.codebook_sizes]
        sample = functools.partial(sample_from_logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
        with self.transformer.streaming(batch):
            if self.pattern.depth:
                self._generate_depth(codes, n_prompt, sample, logits_out)
            else:
                self._generate_steps(codes, n_prompt, sample, logits_out)
        return (codes, logits_out) if return_logits else codes

    def _generate_steps(self, codes: torch.Tensor, n_prompt: int, sample: Callable, logits_out: list[torch.Tensor]) -> None:
        """Fill ``codes [B, K, T]`` past ``n_prompt`` one pattern step at a time (KV cache on)."""
        batch, _, total = codes.shape
        device = codes.device
        sequence, valid = self.pattern.build(codes)
        known = self.pattern.known_mask(n_prompt, total, device)
        frames = torch.arange(total, device=device)[None, None].expand(1, self.n_codebooks, -1).contiguous()
        frame_of_slot = self.pattern.build(frames)[0][0]  # [K', S]: the frame of the code in each slot
        for step in range(sequence.shape[-1]):
            steps = torch.tensor([step], device=device)
            if step == 0:
                ids = self._start_ids(batch, device)
            else:
                ids = self._token_ids(sequence[..., step - 1 : step], valid[:, step - 1 : step], steps - 1)
            hidden = self.norm(self.transformer(self._embed(ids, steps))[..., 0])  # [B, dim]
            codebook_of_row = self._codebook_of_rows(steps)[:, 0]
            for row in range(sequence.shape[1]):
                if not valid[row, step]:
                    continue
                k, frame = int(codebook_of_row[row]), int(frame_of_slot[row, step])
                logits = self.heads[k](hidden)
                logits_out[k][:, frame] = logits
                if not known[row, step]:
                    sequence[:, row, step] = sample(logits)
        codes.copy_(self.pattern.revert(sequence, total))

    def _generate_depth(self, codes: torch.Tensor, n_prompt: int, sample: Callable, logits_out: list[torch.Tensor]) -> None:
        """Fill ``codes`` frame by frame: one cached temporal step, then K depth passes (recomputed, K is small)."""
        batch, n_codebooks, total = codes.shape
        device = codes.device
        start = self._start_ids(batch, device)
        for frame in range(total):
            steps = torch.tensor([frame], device=device)
            if frame == 0:
                ids = start
            else:
                ids = self.offsets[None, :, None] + codes[..., frame - 1 : frame]
            temporal = self.norm(self.transformer(self._embed(ids, steps))[..., 0])  # [B, dim]
            for k in range(n_codebooks):
                logits = self._depth_logits(temporal, codes[:, :k, frame])[k]
                logits_out[k][:, frame] = logits
                if frame >= n_prompt:
                    codes[:, k, frame] = sample(logits)
