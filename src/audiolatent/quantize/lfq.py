"""Lookup-free quantisation (LFQ; Yu et al. 2023, MAGVIT-v2, "Language Model Beats Diffusion").

``z [B, D, T]`` is projected to ``n_bits = log2(codebook_size)`` values per frame; each is
quantised to its sign, ``q_j = +1 if h_j > 0 else -1`` (straight-through gradient), and the
bits ``b_j = [h_j > 0]`` form one integer code ``sum_j b_j 2^j`` in ``[0, codebook_size)``:
codes ``long [B, 1, T]``. ``q`` is projected back to D channels. The implicit codebook is
``{-1, +1}^n_bits``; nothing is learned in it and nothing needs syncing.

Losses (unweighted, in nats): ``commitment`` = mean ``(h - q)^2``, and ``entropy`` =
``sample_entropy_weight * E_x[H(p(c|x))] - codebook_entropy_weight * H(E_x[p(c|x)])``: each
frame should be confidently assigned, the batch should use the whole codebook. ``p(c|x)`` is a
softmax of ``-||h - c||^2 / entropy_temperature`` over the codes; it factorises over bits with
``p(b_j = 1) = sigmoid(4 h_j / temperature)``, so the per-sample entropy is a sum of binary
entropies (exact, O(n_bits)). The codebook entropy does not factorise: it is computed exactly
over groups of at most ``entropy_group_bits`` bits and summed over groups (an upper bound of
the joint entropy, exact when ``n_bits <= entropy_group_bits``), costing ``N * 2^group``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.core.errors import ConfigError
from audiolatent.quantize.base import (
    Bottleneck,
    BottleneckOutput,
    StreamSpec,
    codebook_stats,
)
from audiolatent.quantize.functional import straight_through
from audiolatent.quantize.registry import register_bottleneck

__all__ = ["LFQ", "binary_entropy"]


def binary_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of Bernoulli(sigmoid(logits)), elementwise."""
    p = torch.sigmoid(logits)
    return -(p * F.logsigmoid(logits) + (1 - p) * F.logsigmoid(-logits))


@register_bottleneck
class LFQ(Bottleneck):
    """Binary (sign) quantiser with ``log2(codebook_size)`` projected dimensions.

    Args:
        dim: channels D of ``z``.
        codebook_size: a power of two, 2^n_bits (MAGVIT-v2 uses 2^18).
        entropy_temperature: temperature of ``p(c|x)`` (0.01 as in the paper's code).
        sample_entropy_weight, codebook_entropy_weight: the two terms of the ``entropy`` loss.
        entropy_group_bits: bits per group for the codebook entropy (memory ``N * 2^group``).
    """

    kind = "lfq"

    def __init__(
        self,
        dim: int,
        codebook_size: int = 1024,
        entropy_temperature: float = 0.01,
        sample_entropy_weight: float = 1.0,
        codebook_entropy_weight: float = 1.0,
        entropy_group_bits: int = 10,
    ) -> None:
        super().__init__()
        n_bits = int(round(math.log2(codebook_size))) if codebook_size > 1 else 0
        if n_bits < 1 or 2**n_bits != codebook_size:
            raise ConfigError(f"lfq: codebook_size must be a power of two >= 2, got {codebook_size}")
        if entropy_group_bits < 1:
            raise ConfigError(f"lfq: entropy_group_bits must be >= 1, got {entropy_group_bits}")
        self.dim = dim
        self.codebook_size = codebook_size
        self.n_bits = n_bits
        self.entropy_temperature = entropy_temperature
        self.sample_entropy_weight = sample_entropy_weight
        self.codebook_entropy_weight = codebook_entropy_weight
        self.entropy_group_bits = entropy_group_bits
        projected = dim != n_bits
        self.in_proj = nn.Linear(dim, n_bits) if projected else None
        self.out_proj = nn.Linear(n_bits, dim) if projected else None
        self.register_buffer("_powers", 2 ** torch.arange(n_bits), persistent=False)

    # ------------------------------------------------------------------ digits <-> codes
    def codes_to_digits(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``long [...]`` -> bits ``long [..., n_bits]`` (bit j has weight 2^j)."""
        return torch.bitwise_and(codes[..., None], self._powers).ne(0).long()

    def digits_to_codes(self, digits: torch.Tensor) -> torch.Tensor:
        """Bits ``[..., n_bits]`` in {0, 1} -> codes ``long [...]``."""
        return (digits.long() * self._powers).sum(dim=-1)

    # ------------------------------------------------------------------ quantisation
    def _project(self, z: torch.Tensor) -> torch.Tensor:
        """``z [B, D, T]`` -> ``h [B, T, n_bits]``."""
        x = z.transpose(1, 2)
        return self.in_proj(x) if self.in_proj is not None else x

    def _output(self, q: torch.Tensor) -> torch.Tensor:
        """``q [B, T, n_bits]`` in {-1, +1} -> ``z_q [B, D, T]``."""
        out = self.out_proj(q) if self.out_proj is not None else q
        return out.transpose(1, 2)

    def entropy_loss(self, h: torch.Tensor) -> torch.Tensor:
        """MAGVIT-v2 entropy penalty of projected values ``h [..., n_bits]`` (see module doc)."""
        logits = 4.0 * h.reshape(-1, self.n_bits).float() / self.entropy_temperature
        sample_entropy = binary_entropy(logits).sum(dim=1).mean()
        codebook_entropy = logits.new_zeros(())
        for start in range(0, self.n_bits, self.entropy_group_bits):
            group = logits[:, start : start + self.entropy_group_bits]
            g = group.shape[1]
            bits = self.codes_to_digits(torch.arange(2**g, device=h.device))[:, :g].to(group.dtype)  # [2^g, g]
            log_p = F.logsigmoid(group) @ bits.t() + F.logsigmoid(-group) @ (1 - bits).t()  # [N, 2^g]
            mean_p = log_p.exp().mean(dim=0)
            codebook_entropy = codebook_entropy - (mean_p * mean_p.clamp_min(1e-12).log()).sum()
        return self.sample_entropy_weight * sample_entropy - self.codebook_entropy_weight * codebook_entropy

    def forward(self, z: torch.Tensor, n_q: int | None = None) -> BottleneckOutput:
        """``z [B, D, T]`` -> ``z_q [B, D, T]``, codes ``[B, 1, T]``; ``n_q`` is ignored."""
        h = self._project(z)
        signs = torch.where(h > 0, 1.0, -1.0).to(h.dtype)
        q = straight_through(signs, h)
        codes = self.digits_to_codes(h.detach() > 0)[:, None, :]  # [B, 1, T]
        losses = {"commitment": F.mse_loss(h, signs), "entropy": self.entropy_loss(h)}
        usage, perplexity = codebook_stats(codes, self.codebook_size)
        return BottleneckOutput(self._output(q), [codes], losses, {"usage": usage[None], "perplexity": perplexity[None]})

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int | None = None) -> list[torch.Tensor]:
        """``z [B, D, T]`` -> ``[codes long [B, 1, T]]``."""
        return [self.digits_to_codes(self._project(z) > 0)[:, None, :]]

    def decode(self, streams: list[torch.Tensor]) -> torch.Tensor:
        """``[codes long [B, 1, T]]`` -> ``z_q [B, D, T]``."""
        bits = self.codes_to_digits(streams[0][:, 0])  # [B, T, n_bits]
        dtype = self.out_proj.weight.dtype if self.out_proj is not None else torch.get_default_dtype()
        return self._output(bits.to(dtype) * 2 - 1)

    def stream_specs(self, n_q: int | None = None) -> list[StreamSpec]:
        return [StreamSpec("discrete", (self.codebook_size,))]
