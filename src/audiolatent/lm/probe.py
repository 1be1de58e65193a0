"""Modelability probes: train a small LM on a latent's train split, score its held-out split.

DESIGN.md, "Modelability, defined". The bench calls these four functions:

* ``train_token_probe(codes_train, codebook_sizes, frame_rate, pattern=..., codes_val=...)``
  trains a ``TokenLM`` on random windows of ``window_frames`` frames cut from ``codes_train`` (a
  list of ``[K, T]`` long tensors), at most ``steps`` AdamW steps with warmup + cosine decay. Its
  output heads start at the train unigram (:func:`init_heads_to_unigram`). With ``codes_val``
  (a held-out slice of train) it is scored there every ``eval_every`` steps and at step 0, and
  the best state is kept (early stopping): on held-out data it never ends above where it started;
* ``evaluate_token_probe(result, codes_test, train_codes=...)`` scores every test frame with up
  to a window of context (sliding windows: :func:`context_windows`) and reports held-out
  cross-entropy as bits per token, per frame and per second of audio, total and per codebook,
  beside the nominal rate and the add-1/2 unigram rate fitted on ``train_codes`` (the order-0
  model a train-only coder can have), and, for reference, the plug-in unigram entropy of the
  test codes themselves;
* ``train_continuous_probe(latents_train, frame_rate, head="gaussian"|"gmm"|"flow", latents_val=...)``
  trains a ``ContinuousLM`` on ``[D, T]`` float tensors, standardised per dimension with
  train-split statistics (a Gaussian head starts at the standard-normal marginal), with the same
  early stopping on ``latents_val``;
* ``evaluate_continuous_probe(result, latents_test)`` reports held-out NLL (nats per frame and
  per second, in the latent's own units: the standardisation's log-Jacobian is added back), the
  NLL of the train-fitted diagonal Gaussian marginal, their difference (**predictive
  information**: what the past tells about the next frame, invariant to a per-dimension affine
  map of the latent) and next-frame R^2 of the head's mean prediction, computed in the train
  standardisation (so also invariant).

Sliding windows: a test item of T frames is scored by windows of ``W`` frames starting every
``W / 2`` frames; the first window scores all its frames, every later one only its last ``W / 2``,
so each frame (after the first ``W / 2``) is predicted with at least ``W / 2`` frames of context
and every frame is scored exactly once.

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

__all__ = ["ProbeResult", "train_token_probe", "evaluate_token_probe", "init_heads_to_unigram", "unigram_bits_per_token",
           "context_windows", "train_continuous_probe", "evaluate_continuous_probe"]


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


def context_windows(n_frames: int, window: int) -> list[tuple[int, int, int]]:
    """``(start, end, first_scored)`` of the sliding windows over ``n_frames`` (module docstring).

    Frames ``first_scored .. end - 1`` of window ``[start, end)`` are scored; together the
    windows score every frame exactly once.
    """
    if n_frames <= window:
        return [(0, n_frames, 0)]
    hop = max(1, window // 2)
    out = [(0, window, 0)]
    scored = window
    while scored < n_frames:
        end = min(n_frames, scored + hop)
        start = max(0, end - window)
        out.append((start, end, scored))
        scored = end
    return out


def _train(model: nn.Module, batch_loss, steps: int, lr: float, validate=None, eval_every: int = 25,
           patience: int | None = None, progress=None) -> tuple[list[float], dict]:
    """AdamW with linear warmup then cosine decay; gradient norm clipped at 1.

    ``validate()`` (held-out loss, lower is better) is called at step 0 and every ``eval_every``
    steps; the model ends in its best validated state, and training stops once ``patience``
    evaluations in a row did not improve. Returns the training losses and a record of the
    validation curve (``{"steps": [...], "losses": [...], "best_step": s, "stopped_at": s}``).
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, min(50, steps // 10))
    schedule = lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / max(1, steps)))  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    losses: list[float] = []
    record: dict = {"steps": [], "losses": [], "best_step": None, "stopped_at": steps}
    best_state, best_loss, since_best = None, float("inf"), 0

    def check(step: int) -> bool:
        nonlocal best_state, best_loss, since_best
        model.eval()
        with torch.no_grad():
            value = float(validate())
        model.train()
        record["steps"].append(step)
        record["losses"].append(value)
        if value < best_loss:
            best_loss, since_best, record["best_step"] = value, 0, step
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since_best += 1
        return patience is not None and since_best >= patience

    model.train()
    if validate is not None:
        check(0)
    for step in range(steps):
        loss = batch_loss(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(1)
        done = step + 1
        if validate is not None and (done % eval_every == 0 or done == steps) and check(done):
            record["stopped_at"] = done
            if progress is not None:
                progress(steps - done)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return losses, record


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
    codes_val: list[torch.Tensor] | None = None,
    eval_every: int = 25,
    patience: int | None = None,
    progress=None,
) -> ProbeResult:
    """Train a ``TokenLM`` probe on ``codes_train`` (list of ``[K, T]`` long). See the module docstring.

    ``batch_frames`` frames per step, as ``batch_frames // window`` windows of ``window`` =
    ``min(window_frames, shortest item)`` frames. ``codes_val``: a held-out slice of train for
    early stopping (the curve is in ``result.config["validation"]``). ``progress(n)`` is called
    with the number of steps done (for a progress bar).
    """
    window = min(window_frames, _check_items(codes_train, "codes_train"))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = TokenLM(codebook_sizes, pattern=pattern, dim=dim, num_layers=layers, num_heads=heads,
                    depth_dim=dim, depth_heads=heads).to(device)
    items = [c.long().cpu() for c in codes_train]
    init_heads_to_unigram(model, items)
    per_batch = max(1, batch_frames // window)
    validate = None
    if codes_val:
        _check_items(codes_val, "codes_val")
        val = [c.long().cpu() for c in codes_val]
        validate = lambda: _token_nats(model, val, window).sum() / sum(c.shape[-1] for c in val)  # noqa: E731
    losses, record = _train(model, lambda step: model.loss(_sample_windows(items, window, per_batch, generator).to(device)).loss,
                            steps, lr, validate, eval_every, patience, progress)
    config = dict(kind="token", pattern=pattern, steps=steps, dim=dim, layers=layers, heads=heads, lr=lr, seed=seed,
                  batch_frames=batch_frames, window_frames=window, codebook_sizes=list(codebook_sizes),
                  validation=record if validate is not None else None)
    return ProbeResult(model, float(frame_rate), window, losses, config)


def _token_nats(model: TokenLM, items: list[torch.Tensor], window: int) -> torch.Tensor:
    """``[K]`` summed nats of every frame of ``items`` under ``model``, scored by sliding windows."""
    device = next(model.parameters()).device
    nats = torch.zeros(model.n_codebooks, dtype=torch.float64)
    for item in items:
        item = item.long()
        for start, end, first in context_windows(item.shape[-1], window):
            chunk = item[:, start:end].to(device)
            logits = model(chunk[None])
            for k, lg in enumerate(logits):
                nats[k] += float(F.cross_entropy(lg[0, first - start :], chunk[k, first - start :], reduction="sum"))
    return nats


def unigram_bits_per_token(codes: list[torch.Tensor], codebook_sizes, fitted_on: list[torch.Tensor] | None = None) -> list[float]:
    """Per codebook, bits per token of ``codes`` under a unigram.

    ``fitted_on`` given: the add-1/2 unigram fitted on it (:func:`audiolatent.lm.ngram.fit_unigram`,
    a held-out cross-entropy);
    None: the plug-in entropy of ``codes`` themselves (what a coder fitted on the test set gets,
    a lower figure that no model trained elsewhere can promise).
    """
    if fitted_on is not None:
        from audiolatent.lm.ngram import fit_unigram

        return fit_unigram(fitted_on, codebook_sizes).bits_per_token(codes)
    scored = torch.cat([c.long().cpu() for c in codes], dim=-1)
    out = []
    for k, size in enumerate(codebook_sizes):
        p = torch.bincount(scored[k], minlength=size).double() / scored.shape[-1]
        out.append(float(-(p[p > 0] * p[p > 0].log2()).sum()) + 0.0)
    return out


@torch.no_grad()
def evaluate_token_probe(result: ProbeResult | TokenLM, codes_test: list[torch.Tensor], window_frames: int | None = None,
                         train_codes: list[torch.Tensor] | None = None) -> dict:
    """Held-out cross-entropy of ``codes_test`` (list of ``[K, T]``) under a token probe.

    Returns a dict: ``bits_per_token`` (per codebook, list), ``bits_per_frame``,
    ``bits_per_second`` and ``bits_per_second_per_codebook`` (need a ``ProbeResult`` for the
    frame rate; a bare model gives per-frame values only), ``nominal_bits_per_second``,
    ``test_entropy_bits_per_second`` (plug-in order-0 entropy of the test codes),
    ``unigram_bits_per_second`` (the add-1/2 unigram fitted on ``train_codes``; without
    ``train_codes``, the test entropy), ``ratio_to_nominal``, ``ratio_to_unigram`` and ``n_frames``.
    """
    model = result.model if isinstance(result, ProbeResult) else result
    frame_rate = result.frame_rate if isinstance(result, ProbeResult) else float("nan")
    window = window_frames or (result.window_frames if isinstance(result, ProbeResult) else 128)
    _check_items(codes_test, "codes_test")
    model.eval()
    nats = _token_nats(model, codes_test, window)
    n_frames = sum(c.shape[-1] for c in codes_test)
    bits_per_token = (nats / n_frames / math.log(2)).tolist()
    bits_per_frame = float(sum(bits_per_token))
    nominal_per_frame = sum(math.log2(s) for s in model.codebook_sizes)
    test_entropy = sum(unigram_bits_per_token(codes_test, model.codebook_sizes))
    unigram_per_frame = sum(unigram_bits_per_token(codes_test, model.codebook_sizes, train_codes)) if train_codes else test_entropy
    return dict(
        bits_per_token=bits_per_token,
        bits_per_frame=bits_per_frame,
        bits_per_second=bits_per_frame * frame_rate,
        bits_per_second_per_codebook=[b * frame_rate for b in bits_per_token],
        nominal_bits_per_second=nominal_per_frame * frame_rate,
        unigram_bits_per_second=unigram_per_frame * frame_rate,
        test_entropy_bits_per_second=test_entropy * frame_rate,
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
    latents_val: list[torch.Tensor] | None = None,
    eval_every: int = 25,
    patience: int | None = None,
    progress=None,
) -> ProbeResult:
    """Train a ``ContinuousLM`` probe on ``latents_train`` (list of ``[D, T]`` float). See the module docstring.

    ``latents_val``: a held-out slice of train for early stopping on its NLL (heads with an NLL;
    a flow head trains its fixed number of steps).
    """
    window = min(window_frames, _check_items(latents_train, "latents_train"))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    items = [x.float().cpu() for x in latents_train]
    everything = torch.cat(items, dim=-1).double()
    mean, std = everything.mean(dim=-1).float(), everything.std(dim=-1).clamp_min(1e-6).float()
    items = [(x - mean[:, None]) / std[:, None] for x in items]
    model = ContinuousLM(everything.shape[0], head, dim=dim, num_layers=layers, num_heads=heads, head_kwargs=head_kwargs).to(device)
    if head == "gaussian":  # start at the standardised marginal N(0, 1): training only adds what the past tells
        with torch.no_grad():
            model.head.proj.weight.zero_()
            model.head.proj.bias.zero_()
    per_batch = max(1, batch_frames // window)
    validate = None
    if latents_val and head != "flow":
        _check_items(latents_val, "latents_val")
        val = [((x.float().cpu() - mean[:, None]) / std[:, None]) for x in latents_val]
        validate = lambda: _continuous_sums(model, val, window)["nll"] / sum(x.shape[-1] for x in val)  # noqa: E731
    losses, record = _train(model, lambda step: model.loss(_sample_windows(items, window, per_batch, generator).to(device)).loss,
                            steps, lr, validate, eval_every, patience, progress)
    config = dict(kind="continuous", head=head, steps=steps, dim=dim, layers=layers, heads=heads, lr=lr, seed=seed,
                  batch_frames=batch_frames, window_frames=window, latent_dim=everything.shape[0],
                  validation=record if validate is not None else None)
    return ProbeResult(model, float(frame_rate), window, losses, config, mean, std)


def _continuous_sums(model: ContinuousLM, items: list[torch.Tensor], window: int) -> dict:
    """Sums over every frame of standardised ``items`` (sliding windows): NLL (None for a flow
    head), squared error of the mean prediction, and the frames."""
    device = next(model.parameters()).device
    nll_sum, sq_err, has_nll = 0.0, 0.0, True
    for item in items:
        item = item.float()
        for start, end, first in context_windows(item.shape[-1], window):
            x = item[:, start:end].to(device)[None]
            h = model.hidden(x)[:, first - start :]
            target = x[..., first - start :].transpose(1, 2)
            nll = model.head.nll(h, target)
            if nll is None:
                has_nll = False
            else:
                nll_sum += float(nll.sum())
            sq_err += float((model.head.mean(h) - target).pow(2).sum())
    return {"nll": nll_sum if has_nll else None, "sq_err": sq_err}


@torch.no_grad()
def evaluate_continuous_probe(result: ProbeResult, latents_test: list[torch.Tensor]) -> dict:
    """Held-out NLL, predictive information and next-frame R^2 of ``latents_test`` (list of ``[D, T]``).

    Returns ``nll_per_frame`` (nats, latent units), ``nll_per_second``, ``nll_per_dim`` (nats per
    value), ``marginal_nll_per_frame`` / ``marginal_nll_per_second`` (the diagonal Gaussian with
    the train mean and variance of each dimension), ``predictive_nats_per_frame`` /
    ``predictive_nats_per_second`` (marginal minus conditional NLL) — all None for a flow
    head — ``r2`` (next-frame, the head's mean as the prediction, in the train standardisation:
    ``1 - sum (x - xhat)^2 / sum (x - mean_test)^2`` over standardised values of every dim) and
    ``n_frames``.
    """
    model: ContinuousLM = result.model
    _check_items(latents_test, "latents_test")
    mean, std = result.mean.cpu(), result.std.cpu()
    log_jacobian = float(std.double().log().sum())  # nll in latent units = nll standardised + sum log std
    z = [(x.float().cpu() - mean[:, None]) / std[:, None] for x in latents_test]
    sums = _continuous_sums(model, z, result.window_frames)
    n_frames = sum(x.shape[-1] for x in z)
    pooled = torch.cat(z, dim=-1).double()
    total_var = float((pooled - pooled.mean(dim=-1, keepdim=True)).pow(2).sum())
    marginal = 0.5 * float((math.log(2 * math.pi) + pooled.pow(2)).sum()) / n_frames + log_jacobian
    nll_per_frame = None if sums["nll"] is None else sums["nll"] / n_frames + log_jacobian
    rate = result.frame_rate
    return dict(
        nll_per_frame=nll_per_frame,
        nll_per_second=None if nll_per_frame is None else nll_per_frame * rate,
        nll_per_dim=None if nll_per_frame is None else nll_per_frame / pooled.shape[0],
        marginal_nll_per_frame=marginal,
        marginal_nll_per_second=marginal * rate,
        predictive_nats_per_frame=None if nll_per_frame is None else marginal - nll_per_frame,
        predictive_nats_per_second=None if nll_per_frame is None else (marginal - nll_per_frame) * rate,
        r2=1.0 - sums["sq_err"] / total_var if total_var > 0 else float("nan"),
        n_frames=n_frames,
    )
