"""Modelability probes: train a small LM on a latent's train split, score its held-out split.

DESIGN.md, "Modelability, defined". The bench calls these four functions:

* ``train_token_probe(codes_train, codebook_sizes, frame_rate, pattern=...)`` trains a
  ``TokenLM`` on random windows of ``window_frames`` frames cut from ``codes_train`` (a list of
  ``[K, T]`` long tensors), a fixed number of AdamW steps with warmup + cosine decay;
* ``evaluate_token_probe(result, codes_test)`` cuts every test item into consecutive windows of
  the same length (each scored from an empty context) and reports held-out cross-entropy as
  bits per token, per frame and per second of audio, total and per codebook, beside the
  nominal rate and the unigram (entropy-coded, order-0) rate of the test codes;
* ``train_continuous_probe(latents_train, frame_rate, head="gaussian"|"gmm"|"flow")`` trains a
  ``ContinuousLM`` on ``[D, T]`` float tensors, standardised per dimension with train-split
  statistics;
* ``evaluate_continuous_probe(result, latents_test)`` reports held-out NLL (nats per frame and
  per second, in the latent's own units: the standardisation's log-Jacobian is added back) and
  next-frame R^2 of the head's mean prediction.

Everything is seeded (``seed``) and runs on ``device`` (CPU by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.lm.continuous import ContinuousLM
from audiolatent.lm.token_lm import TokenLM

__all__ = ["ProbeResult", "train_token_probe", "evaluate_token_probe", "init_heads_to_unigram", "train_continuous_probe", "evaluate_continuous_probe"]


@dataclass
class ProbeResult:
    """A trained probe: the model, its training curve and what evaluation needs to know."""

    model: nn.Module
    frame_rate: float
    window_frames: int
    train_losses: list[float] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    mean: torch.Tensor | None = None  # [D] continuous probes: train-split statistics
    std: torch.Tensor | None = None  # [D]


def _check_items(items: list[torch.Tensor], what: str) -> int:
    if not items:
        raise ValueError(f"{what}: need at least one item")
    if any(x.dim() != 2 or x.shape[-1] < 1 for x in items):
        raise ValueError(f"{what}: every item must be a non-empty [C, T] tensor, got {[tuple(x.shape) for x in items]}")
    return min(x.shape[-1] for x in items)


def _sample_windows(items: list[torch.Tensor], window: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random windows ``[count, C, window]``; items weighted by their number of windows."""
    weights = torch.tensor([float(x.shape[-1] - window + 1) for x in items])
    picks = torch.multinomial(weights, count, replacement=True, generator=generator)
    out = []
    for i in picks.tolist():
        start = int(torch.randint(0, items[i].shape[-1] - window + 1, (1,), generator=generator))
        out.append(items[i][:, start : start + window])
    return torch.stack(out)


def _windows(item: torch.Tensor, window: int) -> list[torch.Tensor]:
    """Consecutive windows of ``item [C, T]`` (the last may be shorter), each ``[C, <=window]``."""
    return [item[:, s : s + window] for s in range(0, item.shape[-1], window)]


def _train(model: nn.Module, batch_loss, steps: int, lr: float) -> list[float]:
    """AdamW with linear warmup then cosine decay; gradient norm clipped at 1."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, min(50, steps // 10))
    schedule = lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / max(1, steps)))  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    losses = []
    model.train()
    for step in range(steps):
        loss = batch_loss(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


@torch.no_grad()
def init_heads_to_unigram(model: TokenLM, codes: list[torch.Tensor], smoothing: float = 0.5) -> None:
    """Start every output head at the order-0 model of ``codes`` (list of ``[K, T]`` long).

    Each head's weight is zeroed and its bias set to the log of the add-``smoothing`` unigram
    frequencies of its codebook, so the untrained probe already scores the training unigram
    entropy and training only has to find the structure beyond it. Without this, a probe on a
    small budget (tens of steps) can end *above* the unigram rate, which says nothing about the
    tokens (dMel's 80 codebooks under the quick budget: ratio 1.07).
    """
    joined = torch.cat([c.long().cpu() for c in codes], dim=-1)
    for k, (head, size) in enumerate(zip(model.heads, model.codebook_sizes)):
        counts = torch.bincount(joined[k], minlength=size).double() + smoothing
        head.weight.zero_()
        head.bias.copy_((counts / counts.sum()).log().to(head.bias))


def train_token_probe(
    codes_train: list[torch.Tensor],
    codebook_sizes: list[int] | tuple[int, ...],
    frame_rate: float,
    pattern: str = "delay",
    steps: int = 300,
    dim: int = 64,
    layers: int = 2,
    heads: int = 4,
    lr: float = 3e-3,
    seed: int = 0,
    batch_frames: int = 2048,
    window_frames: int = 128,
    device: str | torch.device = "cpu",
) -> ProbeResult:
    """Train a ``TokenLM`` probe on ``codes_train`` (list of ``[K, T]`` long). See the module docstring.

    ``batch_frames`` frames per step, as ``batch_frames // window`` windows of ``window`` =
    ``min(window_frames, shortest item)`` frames.
    """
    window = min(window_frames, _check_items(codes_train, "codes_train"))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = TokenLM(codebook_sizes, pattern=pattern, dim=dim, num_layers=layers, num_heads=heads,
                    depth_dim=dim, depth_heads=heads).to(device)
    items = [c.long().cpu() for c in codes_train]
    init_heads_to_unigram(model, items)
    per_batch = max(1, batch_frames // window)
    losses = _train(model, lambda step: model.loss(_sample_windows(items, window, per_batch, generator).to(device)).loss, steps, lr)
    config = dict(kind="token", pattern=pattern, steps=steps, dim=dim, layers=layers, heads=heads, lr=lr, seed=seed,
                  batch_frames=batch_frames, window_frames=window, codebook_sizes=list(codebook_sizes))
    return ProbeResult(model, float(frame_rate), window, losses, config)


@torch.no_grad()
def evaluate_token_probe(result: ProbeResult | TokenLM, codes_test: list[torch.Tensor], window_frames: int | None = None) -> dict:
    """Held-out cross-entropy of ``codes_test`` (list of ``[K, T]``) under a token probe.

    Returns a dict: ``bits_per_token`` (per codebook, list), ``bits_per_frame``,
    ``bits_per_second`` and ``bits_per_second_per_codebook`` (need a ``ProbeResult`` for the
    frame rate; a bare model gives per-frame values only), ``nominal_bits_per_second``,
    ``unigram_bits_per_second`` (order-0 entropy of the test codes), ``ratio_to_nominal``,
    ``ratio_to_unigram`` and ``n_frames``.
    """
    model = result.model if isinstance(result, ProbeResult) else result
    frame_rate = result.frame_rate if isinstance(result, ProbeResult) else float("nan")
    window = window_frames or (result.window_frames if isinstance(result, ProbeResult) else 128)
    _check_items(codes_test, "codes_test")
    device = next(model.parameters()).device
    model.eval()
    nats = torch.zeros(model.n_codebooks, dtype=torch.float64)
    n_frames = 0
    for item in codes_test:
        for chunk in _windows(item.long(), window):
            logits = model(chunk[None].to(device))
            for k, lg in enumerate(logits):
                nats[k] += float(F.cross_entropy(lg[0], chunk[k].to(device), reduction="sum"))
            n_frames += chunk.shape[-1]
    bits_per_token = (nats / n_frames / math.log(2)).tolist()
    bits_per_frame = float(sum(bits_per_token))
    nominal_per_frame = sum(math.log2(s) for s in model.codebook_sizes)
    all_codes = torch.cat([c.long().cpu() for c in codes_test], dim=-1)
    unigram_per_frame = 0.0
    for k, size in enumerate(model.codebook_sizes):
        p = torch.bincount(all_codes[k], minlength=size).double() / all_codes.shape[-1]
        unigram_per_frame += float(-(p[p > 0] * p[p > 0].log2()).sum())
    return dict(
        bits_per_token=bits_per_token,
        bits_per_frame=bits_per_frame,
        bits_per_second=bits_per_frame * frame_rate,
        bits_per_second_per_codebook=[b * frame_rate for b in bits_per_token],
        nominal_bits_per_second=nominal_per_frame * frame_rate,
        unigram_bits_per_second=unigram_per_frame * frame_rate,
        ratio_to_nominal=bits_per_frame / nominal_per_frame,
        ratio_to_unigram=bits_per_frame / unigram_per_frame if unigram_per_frame > 0 else float("inf"),
        n_frames=n_frames,
    )


def train_continuous_probe(
    latents_train: list[torch.Tensor],
    frame_rate: float,
    head: str = "gaussian",
    steps: int = 300,
    dim: int = 64,
    layers: int = 2,
    heads: int = 4,
    lr: float = 3e-3,
    seed: int = 0,
    batch_frames: int = 2048,
    window_frames: int = 128,
    head_kwargs: dict | None = None,
    device: str | torch.device = "cpu",
) -> ProbeResult:
    """Train a ``ContinuousLM`` probe on ``latents_train`` (list of ``[D, T]`` float). See the module docstring."""
    window = min(window_frames, _check_items(latents_train, "latents_train"))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    items = [x.float().cpu() for x in latents_train]
    everything = torch.cat(items, dim=-1)
    mean, std = everything.mean(dim=-1), everything.std(dim=-1).clamp_min(1e-6)
    items = [(x - mean[:, None]) / std[:, None] for x in items]
    model = ContinuousLM(everything.shape[0], head, dim=dim, num_layers=layers, num_heads=heads, head_kwargs=head_kwargs).to(device)
    per_batch = max(1, batch_frames // window)
    losses = _train(model, lambda step: model.loss(_sample_windows(items, window, per_batch, generator).to(device)).loss, steps, lr)
    config = dict(kind="continuous", head=head, steps=steps, dim=dim, layers=layers, heads=heads, lr=lr, seed=seed,
                  batch_frames=batch_frames, window_frames=window, latent_dim=everything.shape[0])
    return ProbeResult(model, float(frame_rate), window, losses, config, mean, std)


@torch.no_grad()
def evaluate_continuous_probe(result: ProbeResult, latents_test: list[torch.Tensor]) -> dict:
    """Held-out NLL and next-frame R^2 of ``latents_test`` (list of ``[D, T]``).

    Returns ``nll_per_frame`` (nats, latent units), ``nll_per_second``, ``nll_per_dim`` (nats per
    value) — all None for a flow head — ``r2`` (next-frame, the head's mean as the prediction,
    pooled over dims) and ``n_frames``.
    """
    model: ContinuousLM = result.model
    _check_items(latents_test, "latents_test")
    device = next(model.parameters()).device
    mean, std = result.mean.to(device), result.std.to(device)
    log_jacobian = float(std.log().sum())  # nll in latent units = nll standardised + sum log std
    nll_sum, sq_err, n_frames = 0.0, 0.0, 0
    has_nll = True
    targets = []
    for item in latents_test:
        for chunk in _windows(item.float().to(device), result.window_frames):
            x = ((chunk - mean[:, None]) / std[:, None])[None]
            h = model.hidden(x)
            nll = model.head.nll(h, x.transpose(1, 2))
            if nll is None:
                has_nll = False
            else:
                nll_sum += float(nll.sum()) + log_jacobian * chunk.shape[-1]
            prediction = model.head.mean(h)[0].T * std[:, None] + mean[:, None]  # [D, T]
            sq_err += float((prediction - chunk).pow(2).sum())
            targets.append(chunk)
            n_frames += chunk.shape[-1]
    all_targets = torch.cat(targets, dim=-1)
    total_var = float((all_targets - all_targets.mean(dim=-1, keepdim=True)).pow(2).sum())
    nll_per_frame = nll_sum / n_frames if has_nll else None
    return dict(
        nll_per_frame=nll_per_frame,
        nll_per_second=None if nll_per_frame is None else nll_per_frame * result.frame_rate,
        nll_per_dim=None if nll_per_frame is None else nll_per_frame / all_targets.shape[0],
        r2=1.0 - sq_err / total_var if total_var > 0 else float("nan"),
        n_frames=n_frames,
    )
