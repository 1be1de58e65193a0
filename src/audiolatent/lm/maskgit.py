"""``MaskGIT``: parallel iterative decoding of codes ``[B, K, T]`` with a bidirectional transformer.

Ideas: masked-token modelling with a cosine mask schedule and confidence-based iterative
unmasking (Chang et al., 2022, "MaskGIT"); applied to RVQ codes one codebook (level) at a time,
coarse to fine (Borsos et al., 2023, "SoundStorm"); VALL-E's non-autoregressive stage (Wang et
al., 2023) is the one-step-per-codebook special case (``steps_per_codebook = 1``).

Input: codes ``[B, K, T]`` where ``MASK_ID`` (-1) marks a masked slot. Per frame the embeddings
of the K codebooks are summed (one table per codebook plus its mask token), sinusoidal
positions are added, and a non-causal pre-norm transformer encoder (``torch.nn``'s, since
``nn/transformer.py`` is causal only) feeds one linear head per codebook.

Training (SoundStorm): per item draw a level ``q`` uniformly; codebooks below ``q`` are given,
codebooks above are fully masked, and in codebook ``q`` a fraction ``cos(pi/2 u)``, ``u ~ U(0, 1)``,
of the frames (at least one) is masked; the loss is the cross-entropy on those masked slots.

Decoding: for k = 0..K-1, ``steps`` forward passes; after pass ``i`` (1-based) the number of
still-masked slots of codebook k is ``floor(N cos(pi/2 i / steps))`` (N = masked slots at the
start; 0 after the last pass, and at least one slot is committed per pass while any remain).
Each pass samples every masked slot and commits the most confident ones (probability of the
sampled token, plus Gumbel noise annealed to zero as in MaskGIT). Committed tokens never change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.lm.sampling import sample_from_logits, seeded_rand

__all__ = ["MASK_ID", "MaskGIT", "MaskGITLoss", "cosine_schedule", "sinusoidal_positions"]

MASK_ID = -1


def cosine_schedule(progress: torch.Tensor | float) -> torch.Tensor:
    """Fraction of slots still masked at ``progress`` in [0, 1]: ``cos(pi/2 progress)``."""
    return torch.cos(torch.as_tensor(progress, dtype=torch.float32) * math.pi / 2)


def sinusoidal_positions(n_frames: int, dim: int, device: torch.device) -> torch.Tensor:
    """``[T, dim]`` sinusoidal position encodings (Vaswani et al., 2017)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=device, dtype=torch.float32) / half)
    angles = torch.arange(n_frames, device=device, dtype=torch.float32)[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


@dataclass
class MaskGITLoss:
    """``loss``: mean cross-entropy (nats) over the masked slots of each item's level."""

    loss: torch.Tensor
    levels: torch.Tensor  # [B] codebook trained per item
    n_masked: torch.Tensor  # [B] masked slots in that codebook


class MaskGIT(nn.Module):
    """Bidirectional masked-token model over ``[B, K, T]`` codes (see the module docstring).

    Args:
        codebook_sizes: size of each of the K codebooks.
        dim, num_layers, num_heads, dim_feedforward: of the encoder.
    """

    def __init__(
        self,
        codebook_sizes: list[int] | tuple[int, ...],
        dim: int = 128,
        num_layers: int = 4,
        num_heads: int = 4,
        dim_feedforward: int | None = None,
    ) -> None:
        super().__init__()
        self.codebook_sizes = tuple(int(c) for c in codebook_sizes)
        self.n_codebooks, self.dim = len(self.codebook_sizes), dim
        offsets = [0]
        for size in self.codebook_sizes:
            offsets.append(offsets[-1] + size + 1)  # codes, then the mask token
        self.register_buffer("offsets", torch.tensor(offsets[:-1]), persistent=False)
        self.register_buffer("sizes", torch.tensor(self.codebook_sizes), persistent=False)
        self.embedding = nn.Embedding(offsets[-1], dim)
        layer = nn.TransformerEncoderLayer(
            dim, num_heads, dim_feedforward or 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.heads = nn.ModuleList(nn.Linear(dim, size) for size in self.codebook_sizes)

    def forward(self, codes: torch.Tensor) -> list[torch.Tensor]:
        """``codes [B, K, T]`` (``MASK_ID`` = masked) -> K logits ``[B, T, codebook_sizes[k]]``."""
        masked = codes == MASK_ID
        tokens = torch.where(masked, self.sizes[None, :, None].expand_as(codes), codes)
        x = self.embedding(self.offsets[None, :, None] + tokens).sum(dim=1)  # [B, T, dim]
        x = x + sinusoidal_positions(codes.shape[-1], self.dim, codes.device)[None]
        hidden = self.norm(self.encoder(x))
        return [head(hidden) for head in self.heads]

    def loss(self, codes: torch.Tensor, generator: torch.Generator | None = None) -> MaskGITLoss:
        """SoundStorm training loss on complete ``codes [B, K, T]``."""
        batch, n_codebooks, n_frames = codes.shape
        device = codes.device
        cpu = torch.empty(0)
        levels = (seeded_rand((batch,), cpu, generator) * n_codebooks).long().clamp(max=n_codebooks - 1).to(device)
        ratio = cosine_schedule(seeded_rand((batch,), cpu, generator)).to(device)
        n_masked = (ratio * n_frames).ceil().long().clamp(1, n_frames)  # [B]
        # mask the n_masked frames with the smallest random scores in each item
        scores = seeded_rand((batch, n_frames), codes.float(), generator)
        rank = scores.argsort(dim=-1).argsort(dim=-1)
        level_mask = rank < n_masked[:, None]  # [B, T]
        level_index = torch.arange(n_codebooks, device=device)[None, :, None]
        above = level_index > levels[:, None, None]
        at_level = (level_index == levels[:, None, None]) & level_mask[:, None]
        inputs = codes.masked_fill(above | at_level, MASK_ID)
        logits = self(inputs)
        total = codes.new_zeros((), dtype=torch.float32)
        for k, lg in enumerate(logits):
            ce = F.cross_entropy(lg.transpose(1, 2), codes[:, k], reduction="none")  # [B, T]
            total = total + (ce * at_level[:, k]).sum()
        return MaskGITLoss(total / n_masked.sum(), levels, n_masked)

    @torch.no_grad()
    def generate(
        self,
        n_frames: int,
        batch_size: int = 1,
        steps_per_codebook: int | list[int] = 8,
        prompt_codes: torch.Tensor | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        choice_temperature: float = 1.0,
        generator: torch.Generator | None = None,
        return_trace: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Decode ``[B, K, T]`` codes codebook by codebook (see the module docstring).

        Args:
            n_frames: T (prompt included).
            steps_per_codebook: forward passes per codebook (an int, or one per codebook).
            prompt_codes: optional ``[B, K, Tp]`` codes kept fixed at the first Tp frames.
            temperature, top_k: for sampling the candidate tokens (``temperature <= 0``: argmax).
            choice_temperature: scale of the Gumbel noise on confidences, annealed to 0.
            return_trace: also return the codes after every pass, a list of ``[B, K, T]``.
        """
        device = self.offsets.device
        if prompt_codes is not None:
            batch_size = prompt_codes.shape[0]
        steps = [steps_per_codebook] * self.n_codebooks if isinstance(steps_per_codebook, int) else list(steps_per_codebook)
        if len(steps) != self.n_codebooks or min(steps) < 1:
            raise ValueError(f"steps_per_codebook needs {self.n_codebooks} positive values, got {steps_per_codebook}")
        codes = torch.full((batch_size, self.n_codebooks, n_frames), MASK_ID, dtype=torch.long, device=device)
        if prompt_codes is not None:
            codes[..., : prompt_codes.shape[-1]] = prompt_codes
        trace = []
        for k in range(self.n_codebooks):
            n_start = int((codes[0, k] == MASK_ID).sum())
            for i in range(1, steps[k] + 1):
                masked = codes[:, k] == MASK_ID  # [B, T], same count in every item
                n_now = int(masked[0].sum())
                n_after = 0 if i == steps[k] else int(math.floor(n_start * float(cosine_schedule(i / steps[k]))))
                n_commit = n_now - min(n_after, max(n_now - 1, 0))
                if n_commit > 0:
                    logits = self(codes)[k]  # [B, T, V]
                    sampled = sample_from_logits(logits, temperature, top_k, None, generator)
                    confidence = logits.float().log_softmax(dim=-1).gather(-1, sampled[..., None])[..., 0]
                    noise_scale = choice_temperature * (1 - i / steps[k])
                    if noise_scale > 0:
                        uniform = seeded_rand(confidence.shape, confidence, generator).clamp(1e-9, 1 - 1e-9)
                        confidence = confidence + noise_scale * -torch.log(-torch.log(uniform))
                    confidence = confidence.masked_fill(~masked, float("-inf"))
                    chosen = confidence.topk(n_commit, dim=-1).indices  # [B, n_commit]
                    codes[:, k].scatter_(1, chosen, sampled.gather(1, chosen))
                if return_trace:  # a pass with nothing left to commit (N < steps) is a no-op
                    trace.append(codes.clone())
        return (codes, trace) if return_trace else codes
