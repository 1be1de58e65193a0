"""Modelability: how easily a second-stage model learns a latent (DESIGN.md, "Modelability, defined").

Every tokenizer gets the same estimators under one fixed :class:`ProbeBudget` (architecture
size, at most so many optimiser steps, frames per step, seed), fitted on the train split's
latents and scored on the test split's (sliding windows, each frame scored once with context).
``validation_fraction`` of the train frames (whole items drawn at random,
:func:`audiolatent.lm.ngram.holdout_split`) are held out of fitting to choose the n-grams'
contexts and smoothing and the transformer's stopping step; nothing is fitted on test.

Definitions (``docs/metrics.md`` has the full text)
----------------------------------------------------
* **estimators** (discrete streams), each a held-out cross-entropy in bits per second of audio,
  total and per codebook: ``unigram`` (add-1/2, fitted on train), ``bigram`` and ``trigram``
  (count models of :mod:`audiolatent.lm.ngram`: within a codebook, conditioned on the codebook
  before in the same frame where that helps) and ``transformer`` (a causal LM,
  :func:`audiolatent.lm.probe.train_token_probe`, ``delay`` pattern or ``flat`` for one
  codebook, early-stopped on the held-out slice).
* **variable-rate streams** (per-frame ``durations``, the ``segment`` bottleneck): bits per
  token times the stream's *effective* rate (its test frames / their seconds of audio), so the
  tokens and the ``durations`` stream, each probed, add up in bits per second of audio and
  compare with fixed-rate latents on one footing; the phone probe skips them (no uniform grid).
* **probe bits/s** (the headline): the lowest of them, an upper bound on the entropy rate;
  ``estimator`` names it. **predictable bits/s** = train unigram - headline.
  **ratio_to_entropy** = headline / train unigram.
* **data efficiency**: the estimators refitted on nested subsets of 1/8, 1/4, 1/2 of the train
  frames (the same fraction of every corpus); ``half_data_change`` = |headline(1/2) - headline| /
  headline and ``converged`` = ``half_data_change < converged_tolerance`` (0.03).
* **NLL/s**, **marginal NLL/s**, **predictive information** (nats/s = marginal - conditional)
  and **next-frame R^2** (continuous streams): a Gaussian-head transformer predicting the next
  frame (:func:`audiolatent.lm.probe.train_continuous_probe`); NLLs in nats per second in the
  latent's own units; predictive information and R^2 (computed in the train standardisation)
  are invariant to a per-dimension affine map of the latent.
* **Fréchet log-mel distance** (both): the first ``prompt_seconds`` of the longest held-out
  items are continued by ``continuation_seconds`` with the probe (temperature 1), decoded with
  the tokenizer, and the *generated part* is described by its log-mel frames (16 kHz, 1024-point
  STFT, hop 256, 64 Slaney mels, log10). With ``mu, C`` the mean and covariance of those frames
  and ``mu_r, C_r`` of the real held-out audio, ``FD = |mu - mu_r|^2 + tr(C + C_r - 2 (C C_r)^{1/2})``
  (the Fréchet distance of two Gaussians, as in FID/FAD, Heusel et al. 2017; Kilgour et al.
  2019), in squared log10-magnitude units. 0 for identical statistics. Single-stream latents only.
* **effective rank** (continuous): of the held-out frames ``X [frames, D]`` centred per
  dimension, ``exp(H(p))`` with ``p_i = s_i / sum_j s_j`` the normalised singular values (Roy &
  Vetterli 2007): 1 for a rank-1 latent, D for an isotropic one.
* **adjacent-frame smoothness** (continuous): with every dimension standardised by its held-out
  mean and std, ``adjacent_cosine`` is the mean cosine similarity of consecutive frames
  (1: frames barely move; ~0: consecutive frames unrelated) and ``adjacent_delta_ratio`` is
  ``mean |x_{t+1} - x_t|^2 / (2 D)`` (0: constant; ~1: independent frames).
* **phoneme accuracy** (corpora with phone alignments): frame ``t`` of a stream at ``f`` frames/s
  is labelled with the phone covering time ``(t + 0.5) / f``. A linear (multinomial logistic)
  classifier on per-frame features — a one-hot of each code per codebook (as a sum of per-codebook
  embeddings, the same linear map), or the standardised continuous values — is trained on the
  train split's frames (full-batch Adam) and scored on the test split's: accuracy = correctly
  labelled test frames / test frames (phones never seen in training count as wrong).
  ``majority_baseline`` is the accuracy of always answering the most frequent train phone.
  Reported per stream ("all" codebooks) and per codebook for the first ``max_probe_codebooks``.
  At most ``max_phone_train_frames`` train frames (a seeded random subset) are used.

Example::

    result = measure_modelability(tokenizer, train_latents, test_latents, budget=QUICK_BUDGET,
                                  test_audio=[...], phones_train=[...], phones_test=[...])
    result["probe_bits_per_second"]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from audiolatent.bench.rate import effective_frame_rate
from audiolatent.core.latent import Latent, Stream
from audiolatent.data.manifest import frame_phone_labels
from audiolatent.lm.probe import (
    evaluate_continuous_probe,
    evaluate_token_probe,
    train_continuous_probe,
    train_token_probe,
    unigram_bits_per_token,
)

__all__ = [
    "ProbeBudget",
    "DEFAULT_BUDGET",
    "STANDARD_BUDGET",
    "QUICK_BUDGET",
    "measure_modelability",
    "effective_rank",
    "adjacent_smoothness",
    "frechet_distance",
    "logmel_statistics",
    "frame_phone_labels",
    "phoneme_probe",
]

FRECHET_SAMPLE_RATE = 16000


@dataclass(frozen=True)
class ProbeBudget:
    """The fixed budget every tokenizer's probes get (same for all, so results compare)."""

    steps: int = 1000
    dim: int = 64
    layers: int = 2
    heads: int = 4
    lr: float = 3e-3
    batch_frames: int = 2048
    window_frames: int = 128
    seed: int = 0
    prompt_seconds: float = 1.0
    continuation_seconds: float = 2.0
    n_continuations: int = 6
    phone_steps: int = 300
    max_probe_codebooks: int = 8
    max_phone_train_frames: int = 20000
    validation_fraction: float = 0.1
    eval_every: int = 25
    patience: int = 4
    ngram_orders: tuple[int, ...] = (1, 2)
    curve_fractions: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)
    converged_tolerance: float = 0.03


DEFAULT_BUDGET = ProbeBudget()
#: the default bench's budget (``audiolatent bench`` with no flag): the five built-ins on the
#: built-in corpus in under 10 minutes on a 2-core CPU, identical for every tokenizer
STANDARD_BUDGET = ProbeBudget(steps=400, dim=48, batch_frames=1024, window_frames=96, prompt_seconds=0.5,
                              continuation_seconds=1.0, n_continuations=3, phone_steps=200, max_probe_codebooks=8,
                              max_phone_train_frames=6000)
#: ``--quick``: a smoke test of every axis in a couple of minutes
QUICK_BUDGET = ProbeBudget(steps=40, dim=32, batch_frames=512, window_frames=64, prompt_seconds=0.25,
                           continuation_seconds=0.5, n_continuations=2, phone_steps=100, max_probe_codebooks=4,
                           max_phone_train_frames=3000, curve_fractions=(0.5, 1.0))


def _items(latents: list[Latent], index: int) -> list[torch.Tensor]:
    """Valid ``[K|D, T]`` values of stream ``index`` of every latent (every batch item)."""
    out = []
    for latent in latents:
        s = latent.streams[index]
        lengths = s.lengths if s.lengths is not None else [s.num_frames] * s.values.shape[0]
        out += [s.values[b, :, : int(n)].cpu().clone() for b, n in enumerate(lengths) if int(n) > 0]
    return out


# --- structure ---------------------------------------------------------------------------------
def effective_rank(x: torch.Tensor, center: bool = True) -> float:
    """``exp(entropy of normalised singular values)`` of ``x [frames, D]`` (see module docstring)."""
    x = x.double()
    if center:
        x = x - x.mean(dim=0, keepdim=True)
    s = torch.linalg.svdvals(x)
    if float(s.sum()) <= 0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def adjacent_smoothness(items: list[torch.Tensor]) -> dict:
    """``adjacent_cosine`` and ``adjacent_delta_ratio`` of continuous items ``[D, T]`` (module docstring)."""
    pooled = torch.cat([x.double() for x in items], dim=-1)
    mean, std = pooled.mean(-1, keepdim=True), pooled.std(-1, keepdim=True).clamp_min(1e-8)
    cos, delta, pairs = 0.0, 0.0, 0
    for x in items:
        z = (x.double() - mean) / std
        if z.shape[-1] < 2:
            continue
        a, b = z[:, :-1], z[:, 1:]
        cos += float(torch.nn.functional.cosine_similarity(a, b, dim=0, eps=1e-8).sum())
        delta += float((b - a).pow(2).sum(0).sum()) / (2 * z.shape[0])
        pairs += z.shape[-1] - 1
    if pairs == 0:
        return {"adjacent_cosine": float("nan"), "adjacent_delta_ratio": float("nan")}
    return {"adjacent_cosine": cos / pairs, "adjacent_delta_ratio": delta / pairs}


# --- Fréchet distance of log-mel statistics ---------------------------------------------------
def logmel_frames(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Log-mel frames ``[frames, 64]`` of mono audio ``[..., N]`` (resampled to 16 kHz)."""
    from audiolatent.core.audio import resample
    from audiolatent.nn.melscale import mel_filterbank

    x = audio.float().reshape(-1, audio.shape[-1]).mean(0)
    if sample_rate != FRECHET_SAMPLE_RATE:
        x = resample(x[None, None], sample_rate, FRECHET_SAMPLE_RATE)[0, 0]
    n_fft = 1024
    if x.shape[-1] < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.shape[-1]))
    spec = torch.stft(x, n_fft, 256, window=torch.hann_window(n_fft), center=False, return_complex=True).abs()
    fb = mel_filterbank(sample_rate=FRECHET_SAMPLE_RATE, n_fft=n_fft, n_mels=64, f_min=0.0, f_max=8000.0,
                        mel_scale="slaney", norm="slaney")
    return torch.log10((fb @ spec).clamp_min(1e-5)).T


def logmel_statistics(audios: list[torch.Tensor], sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[64]`` and covariance ``[64, 64]`` of the pooled log-mel frames of ``audios``."""
    frames = torch.cat([logmel_frames(a, sample_rate) for a in audios]).double().numpy()
    return frames.mean(0), np.cov(frames, rowvar=False)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet distance of two Gaussians ``|mu1 - mu2|^2 + tr(C1 + C2 - 2 sqrt(C1 C2))``."""
    # tr((C1 C2)^1/2) = sum sqrt(eig(C1^1/2 C2 C1^1/2)): symmetric PSD, so eigh is exact and stable
    w, v = np.linalg.eigh(np.asarray(cov1, dtype=np.float64))
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ np.asarray(cov2, dtype=np.float64) @ root1)
    trace_sqrt = float(np.sqrt(np.clip(inner, 0, None)).sum())
    diff = np.asarray(mu1, dtype=np.float64) - np.asarray(mu2, dtype=np.float64)
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt)
    return max(value, 0.0)


# --- phoneme probe ----------------------------------------------------------------------------
class _LinearProbe(nn.Module):
    """Linear classifier: continuous features ``[N, D]`` -> logits, or codes ``[N, K]`` via one-hot."""

    def __init__(self, n_classes: int, dims: int | None = None, codebook_sizes: tuple[int, ...] | None = None):
        super().__init__()
        self.codebook_sizes = codebook_sizes
        if codebook_sizes is not None:  # sum_k W_k[code_k] == one-hot(codes) @ W
            self.offsets = torch.tensor([0, *np.cumsum(codebook_sizes)[:-1].tolist()])
            self.table = nn.Embedding(int(sum(codebook_sizes)), n_classes)
            nn.init.zeros_(self.table.weight)
        else:
            self.linear = nn.Linear(dims, n_classes)
        self.bias = nn.Parameter(torch.zeros(n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.codebook_sizes is not None:
            return self.table(x.long() + self.offsets).sum(1) + self.bias
        return self.linear(x) + self.bias


def phoneme_probe(
    train_features: torch.Tensor, train_labels: list[str], test_features: torch.Tensor, test_labels: list[str],
    codebook_sizes: tuple[int, ...] | None = None, steps: int = 300, seed: int = 0,
) -> dict:
    """Linear phone classifier, train frames -> test accuracy (module docstring).

    ``*_features``: ``[N, K]`` codes when ``codebook_sizes`` is given, else ``[N, D]`` floats.
    """
    vocab = sorted(set(train_labels))
    index = {p: i for i, p in enumerate(vocab)}
    y_train = torch.tensor([index[p] for p in train_labels])
    y_test = torch.tensor([index.get(p, -1) for p in test_labels])
    torch.manual_seed(seed)
    x_train, x_test = train_features, test_features
    if codebook_sizes is None:
        mean, std = x_train.float().mean(0), x_train.float().std(0).clamp_min(1e-6)
        x_train, x_test = (x_train.float() - mean) / std, (x_test.float() - mean) / std
        model = _LinearProbe(len(vocab), dims=x_train.shape[1])
    else:
        model = _LinearProbe(len(vocab), codebook_sizes=tuple(codebook_sizes))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x_train), y_train) + 1e-4 * sum(p.pow(2).sum() for p in model.parameters())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = model(x_test).argmax(-1)
    majority = int(torch.bincount(y_train).argmax())
    return {
        "accuracy": float((predicted == y_test).float().mean()),
        "majority_baseline": float((y_test == majority).float().mean()),
        "n_phones": len(vocab),
        "train_frames": len(train_labels),
        "test_frames": len(test_labels),
    }


def _phone_frames(items: list[torch.Tensor], phones: list, frame_rate: float) -> tuple[torch.Tensor, list[str]]:
    feats, labels = [], []
    for x, ph in zip(items, phones):
        if ph is None:
            continue
        for t, label in enumerate(frame_phone_labels(ph, x.shape[-1], frame_rate)):
            if label is not None:
                feats.append(x[:, t])
                labels.append(label)
    return (torch.stack(feats) if feats else torch.zeros(0)), labels


# --- probes -----------------------------------------------------------------------------------
def _probe_kwargs(budget: ProbeBudget) -> dict:
    return dict(steps=budget.steps, dim=budget.dim, layers=budget.layers, heads=budget.heads, lr=budget.lr,
                seed=budget.seed, batch_frames=budget.batch_frames, window_frames=budget.window_frames,
                eval_every=budget.eval_every, patience=budget.patience)


#: estimator names, in the order they are reported
ESTIMATORS = ("unigram", "bigram", "trigram", "transformer")
_NGRAM_NAMES = {1: "bigram", 2: "trigram"}


def train_subset(items: list[torch.Tensor], fraction: float, seed: int = 0, groups: list | None = None) -> list[torch.Tensor]:
    """The first ``fraction`` of the train frames, items taken in a seeded random order.

    ``groups`` (one label per item, e.g. its corpus): the fraction is taken within each group,
    so the mix of the data stays the same and only its amount changes. Nested: a smaller
    fraction is a subset of a larger one. ``fraction >= 1``: every item.
    """
    if fraction >= 1:
        return list(items)
    if groups is not None:
        if len(groups) != len(items):
            raise ValueError(f"train_subset: {len(groups)} group labels for {len(items)} items")
        out = []
        for label in dict.fromkeys(groups):
            members = [x for x, g in zip(items, groups) if g == label]
            out += train_subset(members, fraction, seed)
        return out
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    target, out, total = fraction * sum(x.shape[-1] for x in items), [], 0
    for i in order:
        if total >= target:
            break
        out.append(items[i])
        total += items[i].shape[-1]
    return out


def discrete_estimators(train_items: list[torch.Tensor], test_items: list[torch.Tensor], codebook_sizes, frame_rate: float,
                        budget: ProbeBudget, transformer: bool = True, progress=None) -> dict:
    """Held-out cross-entropy of every estimator of one discrete stream (module docstring).

    Returns ``{"estimators": {name: {"bits_per_second", "bits_per_second_per_codebook", ...}},
    "headline": name, "bits_per_second", "probe": ProbeResult | None}``; ``headline`` is the
    estimator with the lowest held-out bits/s.
    """
    from audiolatent.lm.ngram import fit_ngrams, fit_unigram, holdout_split

    sizes = tuple(int(v) for v in codebook_sizes)
    out: dict[str, dict] = {}

    def row(bits_per_token, **extra):
        return {"bits_per_second": float(sum(bits_per_token)) * frame_rate,
                "bits_per_second_per_codebook": [b * frame_rate for b in bits_per_token], **extra}

    out["unigram"] = row(fit_unigram(train_items, sizes).bits_per_token(test_items))
    for order, model in fit_ngrams(train_items, sizes, budget.ngram_orders, validation=budget.validation_fraction).items():
        out[_NGRAM_NAMES.get(order, f"{order + 1}-gram")] = row(model.bits_per_token(test_items),
                                                                 contexts=[list(c.context) for c in model.codebooks])
    probe = None
    if transformer:
        fit, val = holdout_split(train_items, budget.validation_fraction)
        pattern = "flat" if len(sizes) == 1 else "delay"
        probe = train_token_probe([torch.cat(fit, dim=-1)], sizes, frame_rate, pattern=pattern, codes_val=val,
                                  progress=progress, **_probe_kwargs(budget))
        ev = evaluate_token_probe(probe, test_items)
        validation = probe.config["validation"]
        out["transformer"] = row(ev["bits_per_token"], pattern=pattern, best_step=validation["best_step"],
                                 stopped_at=validation["stopped_at"], final_train_loss=probe.train_losses[-1])
    headline = min(out, key=lambda k: out[k]["bits_per_second"])
    return {"estimators": out, "headline": headline, "bits_per_second": out[headline]["bits_per_second"], "probe": probe}


def _discrete_row(template: Stream, train_items, test_items, budget: ProbeBudget, progress=None,
                  groups: list | None = None) -> tuple[dict, object]:
    """The modelability row of one discrete stream: every estimator, the headline, its curve."""
    sizes, rate = template.codebook_sizes, template.frame_rate
    full = discrete_estimators(train_items, test_items, sizes, rate, budget, progress=progress)
    # the curve retrains the transformer only where it is the headline on all the data: where an
    # n-gram wins, leaving it out can only raise the smaller-data headlines (a stricter check)
    with_transformer = full["headline"] == "transformer"
    curve = []
    for fraction in sorted(set(budget.curve_fractions) | {1.0}):
        subset = train_subset(train_items, fraction, budget.seed, groups)
        part = full if fraction >= 1 else discrete_estimators(subset, test_items,
                                                               sizes, rate, budget, transformer=with_transformer,
                                                               progress=progress)
        curve.append({"fraction": fraction, "train_frames": sum(x.shape[-1] for x in subset),
                      "headline": part["headline"], "bits_per_second": part["bits_per_second"],
                      "estimators": {k: v["bits_per_second"] for k, v in part["estimators"].items()}})
    half = [c for c in curve if abs(c["fraction"] - 0.5) < 1e-9]
    change = abs(half[0]["bits_per_second"] - full["bits_per_second"]) / full["bits_per_second"] if half and full["bits_per_second"] > 0 else None
    unigram = full["estimators"]["unigram"]["bits_per_second"]
    test_entropy = sum(unigram_bits_per_token(test_items, sizes)) * rate
    row = {
        "probe_bits_per_second": full["bits_per_second"],
        "estimator": full["headline"],
        "probe_bits_per_second_per_codebook": full["estimators"][full["headline"]]["bits_per_second_per_codebook"],
        "estimators": full["estimators"],
        "unigram_bits_per_second": unigram,
        "test_entropy_bits_per_second": test_entropy,
        "predictable_bits_per_second": unigram - full["bits_per_second"],
        "ratio_to_entropy": full["bits_per_second"] / unigram if unigram > 0 else None,
        "data_efficiency": curve,
        "half_data_change": change,
        "converged": None if change is None else bool(change < budget.converged_tolerance),
        "train_frames": sum(x.shape[-1] for x in train_items),
    }
    return row, full["probe"]


def _continuous_row(template: Stream, train_items, test_items, budget: ProbeBudget, progress=None) -> tuple[dict, object]:
    from audiolatent.lm.ngram import holdout_split

    fit, val = holdout_split(train_items, budget.validation_fraction)
    probe = train_continuous_probe([torch.cat(fit, dim=-1)], template.frame_rate, head="gaussian", latents_val=val,
                                   progress=progress, **_probe_kwargs(budget))
    ev = evaluate_continuous_probe(probe, test_items)
    pooled = torch.cat(test_items, dim=-1).T
    validation = probe.config["validation"]
    row = {"nll_per_second": ev["nll_per_second"], "marginal_nll_per_second": ev["marginal_nll_per_second"],
           "predictive_nats_per_second": ev["predictive_nats_per_second"], "r2": ev["r2"],
           "effective_rank": effective_rank(pooled), "dims": pooled.shape[1],
           "best_step": validation["best_step"] if validation else None,
           "stopped_at": validation["stopped_at"] if validation else None,
           "train_frames": sum(x.shape[-1] for x in train_items), **adjacent_smoothness(test_items)}
    return row, probe


def _generate(tokenizer, stream: Stream, probe, test_items: list[torch.Tensor], budget: ProbeBudget, sample_rate: int):
    """Decoded continuations (generated part only) of the longest test items' prompts."""
    frame_rate = stream.frame_rate
    n_prompt = max(1, round(budget.prompt_seconds * frame_rate))
    n_new = max(1, round(budget.continuation_seconds * frame_rate))
    candidates = sorted((x for x in test_items if x.shape[-1] >= n_prompt), key=lambda x: -x.shape[-1])
    prompts = [x[:, :n_prompt] for x in candidates[: budget.n_continuations]]
    if not prompts:
        return []
    generator = torch.Generator().manual_seed(budget.seed)
    batch = torch.stack(prompts)
    with torch.no_grad():
        if stream.is_discrete:
            values = probe.model.generate(batch.long(), n_new, generator=generator)
        else:
            z = (batch.float() - probe.mean[None, :, None]) / probe.std[None, :, None]
            z = probe.model.generate(z, n_new, generator=generator)
            values = z * probe.std[None, :, None] + probe.mean[None, :, None]
        latent = Latent([Stream(values, frame_rate, stream.codebook_sizes, stream.name)], sample_rate,
                        tokenizer.name, tokenizer.config_hash)
        audio = tokenizer.decode(latent).float().cpu().mean(1, keepdim=True)  # stereo codecs: mixed to mono, as the test audio
    start = round(n_prompt * sample_rate / frame_rate)
    return [a[..., start:] for a in audio]


def measure_modelability(
    tokenizer,
    train_latents: list[Latent],
    test_latents: list[Latent],
    *,
    budget: ProbeBudget = DEFAULT_BUDGET,
    test_audio: list[torch.Tensor] | None = None,
    phones_train: list | None = None,
    phones_test: list | None = None,
    progress=None,
    train_groups: list | None = None,
) -> dict:
    """Every modelability metric of one tokenizer's latents (module docstring has the definitions).

    Args:
        tokenizer: decodes generated continuations (None: the Fréchet distance is skipped).
        train_latents, test_latents: one Latent per file of each split, batch size 1.
        budget: the probe budget (use the same for every tokenizer compared).
        test_audio: the held-out audio ``[C, N]`` at the tokenizer's rate (Fréchet reference).
        phones_train, phones_test: per latent, its phone alignment or None.
        progress: called with the number of probe training steps done (a progress bar's update).
        train_groups: per train latent, a label (its corpus): the data-efficiency subsets take
            the same fraction of every group.

    Returns:
        ``{"budget", "streams": {name: {...}}, "probe_bits_per_second", "estimator", "estimators",
        "probe_bits_per_second_per_codebook", "unigram_bits_per_second", "predictable_bits_per_second",
        "ratio_to_entropy", "converged", "half_data_change", "nll_per_second",
        "marginal_nll_per_second", "predictive_nats_per_second", "r2", "frechet_logmel",
        "effective_rank", "adjacent_cosine", "adjacent_delta_ratio", "phoneme_accuracy",
        "skipped": {metric: reason}}``; totals are summed over discrete (bits) or continuous
        (nats) streams, and None where no stream of that kind exists. Each discrete stream's row
        also holds every estimator per codebook and its ``data_efficiency`` curve.
    """
    if not train_latents or not test_latents:
        raise ValueError("measure_modelability needs train and test latents")
    skipped: dict[str, str] = {}
    streams: dict[str, dict] = {}
    phone_acc: dict = {}
    generated: list[torch.Tensor] = []
    for index, template in enumerate(test_latents[0].streams):
        train_items, test_items = _items(train_latents, index), _items(test_latents, index)
        variable = template.durations is not None
        if variable:  # bits per token x segments per second of audio = bits per second of audio
            template = replace(template, frame_rate=effective_frame_rate([lat.streams[index] for lat in test_latents],
                                                                          template.frame_rate))
        row: dict = {"kind": "discrete" if template.is_discrete else "continuous", "frame_rate": template.frame_rate}
        n_train = sum(x.shape[-1] for x in train_items)
        if n_train < MIN_TRAIN_FRAMES or not test_items:  # e.g. a 1 Hz side stream on a few seconds of train audio
            row["skipped"] = (f"{n_train} train frames (at least {MIN_TRAIN_FRAMES} needed to hold out a validation "
                              f"slice)" if test_items else "no test frames")
            skipped[f"stream {template.name}"] = row["skipped"]
            streams[template.name] = row
            continue
        if template.is_discrete:
            groups = None if train_groups is None else [g for lat, g in zip(train_latents, train_groups)
                                                        for n in _lengths(lat, template.name) if n > 0]
            values, probe = _discrete_row(template, train_items, test_items, budget, progress, groups)
        else:
            values, probe = _continuous_row(template, train_items, test_items, budget, progress)
        row.update(values)
        if variable:
            skipped[f"phoneme_accuracy (stream {template.name})"] = "variable-rate stream: frames are not on a uniform grid"
        elif phones_train is not None and phones_test is not None and any(p is not None for p in phones_test):
            row["phoneme"] = _phoneme_row(template, train_items, test_items, train_latents, test_latents, phones_train,
                                          phones_test, budget)
            phone_acc[template.name] = row["phoneme"]
        if len(test_latents[0].streams) == 1 and tokenizer is not None and test_audio:
            generated = _generate(tokenizer, template, probe, test_items, budget, tokenizer.sample_rate)
        streams[template.name] = row
    fd = None
    if generated:
        real = logmel_statistics(test_audio, tokenizer.sample_rate)
        fake = logmel_statistics(generated, tokenizer.sample_rate)
        fd = frechet_distance(*fake, *real)
    elif tokenizer is None or not test_audio:
        skipped["frechet_logmel"] = "no tokenizer or held-out audio given"
    elif len(test_latents[0].streams) != 1:
        skipped["frechet_logmel"] = "continuations are generated for single-stream latents only"
    else:
        skipped["frechet_logmel"] = f"no held-out item is longer than the {budget.prompt_seconds} s prompt"
    discrete = [r for r in streams.values() if r["kind"] == "discrete" and "skipped" not in r]
    continuous = [r for r in streams.values() if r["kind"] == "continuous" and "skipped" not in r]
    incomplete = {r["kind"] for r in streams.values() if "skipped" in r}  # a total over some streams is no total
    if not continuous:
        skipped["effective_rank"] = skipped["adjacent_smoothness"] = "defined for continuous latents only"
    if not discrete:
        skipped["probe_bits_per_second"] = "no discrete stream"
    if not continuous:
        skipped["nll_per_second"] = "no continuous stream"
    if not phone_acc:
        skipped["phoneme_accuracy"] = "no phone alignments in the data"

    def total(rows, key):
        values = [r[key] for r in rows]
        if rows is discrete and "discrete" in incomplete or rows is continuous and "continuous" in incomplete:
            return None
        return sum(values) if values and None not in values else None

    headline, unigram = total(discrete, "probe_bits_per_second"), total(discrete, "unigram_bits_per_second")
    estimators = sorted({e for r in discrete for e in r["estimators"]}, key=lambda e: (ESTIMATORS + (e,)).index(e))
    return {
        "budget": asdict(budget),
        "streams": streams,
        "probe_bits_per_second": headline,
        "estimator": "+".join(sorted({r["estimator"] for r in discrete})) if discrete else None,
        "estimators": {e: total([r["estimators"][e] for r in discrete if e in r["estimators"]], "bits_per_second")
                       for e in estimators} if discrete and "discrete" not in incomplete else None,
        "probe_bits_per_second_per_codebook": [b for r in discrete for b in r["probe_bits_per_second_per_codebook"]] or None,
        "unigram_bits_per_second": unigram,
        "predictable_bits_per_second": None if headline is None else unigram - headline,
        "ratio_to_entropy": headline / unigram if headline is not None and unigram else None,
        "converged": all(r["converged"] for r in discrete) if discrete and None not in [r["converged"] for r in discrete] else None,
        "half_data_change": max(r["half_data_change"] for r in discrete) if discrete and None not in [r["half_data_change"] for r in discrete] else None,
        "nll_per_second": total(continuous, "nll_per_second"),
        "marginal_nll_per_second": total(continuous, "marginal_nll_per_second"),
        "predictive_nats_per_second": total(continuous, "predictive_nats_per_second"),
        "r2": float(np.mean([r["r2"] for r in continuous])) if continuous else None,
        "frechet_logmel": fd,
        "effective_rank": continuous[0]["effective_rank"] if len(continuous) == 1 else ([r["effective_rank"] for r in continuous] or None),
        "adjacent_cosine": continuous[0]["adjacent_cosine"] if continuous else None,
        "adjacent_delta_ratio": continuous[0]["adjacent_delta_ratio"] if continuous else None,
        "phoneme_accuracy": {k: v["all"]["accuracy"] for k, v in phone_acc.items()} or None,
        "skipped": skipped,
    }


#: train frames a stream needs for the probes (the n-grams hold out a validation slice of 32)
MIN_TRAIN_FRAMES = 64


def _phoneme_row(template: Stream, train_items, test_items, train_latents, test_latents, phones_train, phones_test,
                 budget: ProbeBudget) -> dict:
    # _items drops empty items: keep the phone lists aligned with the latents that contribute
    def aligned(latents, phones):
        return [p for lat, p in zip(latents, phones) for n in _lengths(lat, template.name) if n > 0]

    x_train, y_train = _phone_frames(train_items, aligned(train_latents, phones_train), template.frame_rate)
    if len(y_train) > budget.max_phone_train_frames:  # a seeded subset keeps the probe's cost fixed
        keep = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(budget.seed))[: budget.max_phone_train_frames]
        x_train, y_train = x_train[keep], [y_train[i] for i in keep.tolist()]
    x_test, y_test = _phone_frames(test_items, aligned(test_latents, phones_test), template.frame_rate)
    if not y_train or not y_test:
        return {"all": {"accuracy": None, "reason": "no aligned frames"}}
    sizes = template.codebook_sizes
    out = {"all": phoneme_probe(x_train, y_train, x_test, y_test, sizes, steps=budget.phone_steps, seed=budget.seed)}
    if sizes is not None and len(sizes) > 1:
        for k in range(min(len(sizes), budget.max_probe_codebooks)):
            out[f"codebook_{k}"] = phoneme_probe(x_train[:, k : k + 1], y_train, x_test[:, k : k + 1], y_test, (sizes[k],),
                                                 steps=budget.phone_steps, seed=budget.seed)["accuracy"]
    return out


def _lengths(latent: Latent, name: str) -> list[int]:
    s = latent[name]
    return [int(n) for n in s.lengths] if s.lengths is not None else [s.num_frames] * s.values.shape[0]


def with_budget(budget: ProbeBudget, **changes) -> ProbeBudget:
    """A copy of ``budget`` with some fields changed (for tests and ablations)."""
    return replace(budget, **changes)

