"""Count-based n-gram models of discrete codes: the simplest estimators of the modelability axis.

A transformer probe is only as good as its training; a count model on the same codes says how
much of the structure sits in the last frame or two, in seconds of CPU and with nothing to
converge. The bench reports both and takes the lower (``bench/modelability.py``).

Model
-----
Codes are ``[K, T]`` per item (an audio file). Codebook ``k`` of frame ``t`` is predicted from a
*context*: an ordered tuple of features, each one of

* ``t1``, ``t2``: the same codebook one or two frames back, ``c_k[t-1]``, ``c_k[t-2]`` (a
  *start* symbol before the first frame of an item);
* ``f1``: the codebook before it in the same frame, ``c_{k-1}[t]`` (k > 0).

Frames are read frame-major (codebook 0 .. K-1 of frame t, then frame t + 1), so every context
is in the past of its token, and the product of the per-codebook conditionals is a proper joint
distribution: the summed cross-entropy is a valid code length of the whole latent.

Probabilities are interpolated absolute discounting with a Pitman-Yor strength term
(Ney, Essen & Kneser 1994; Teh 2006). With ``h_n`` the first ``n`` features of the context,
``c(h, x)`` train counts, ``c(h) = sum_x c(h, x)`` and ``u(h)`` the distinct symbols seen after
``h``::

    P_0(x)       = (c(x) + alpha) / (N + alpha V)                          (add-alpha unigram)
    P_n(x | h_n) = (max(c(h_n, x) - d_n, 0) + (d_n u(h_n) + beta_n) P_{n-1}(x | h_{n-1}))
                   / (c(h_n) + beta_n)

and a context never seen in train falls back to ``P_{n-1}``. Every ``P_n`` sums to 1 over the
``V`` symbols.

Selection
---------
:func:`fit_ngram` chooses, **per codebook**, the context among the candidates allowed by
``max_order`` (``t1``/``t1 t2`` within the codebook, each with and without ``f1``) and each
level's ``(d_n, beta_n)`` on a grid, greedily level by level, by cross-entropy on a held-out
slice of the train items (``validation``); the chosen model is then refitted on all the train
items. Nothing is ever fitted on the data it is scored on.

Example::

    model = fit_ngram(train_codes, codebook_sizes=[256] * 4, max_order=1)
    bits = model.bits_per_token(test_codes)      # [K] held-out bits per token
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["NGramModel", "CodebookNGram", "fit_ngram", "fit_ngrams", "fit_unigram", "holdout_split", "context_candidates"]

#: grids searched per level on the held-out slice
DISCOUNTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)
STRENGTHS = (0.0, 0.5, 2.0, 8.0, 32.0)
#: add-alpha of the unigram level (Krichevsky-Trofimov)
UNIGRAM_ALPHA = 0.5


def context_candidates(codebook: int, max_order: int, cross_codebook: bool = True) -> list[tuple[str, ...]]:
    """Contexts considered for ``codebook`` (the empty one, i.e. the unigram, always among them)."""
    within = [tuple(f"t{j}" for j in range(1, n + 1)) for n in range(0, max_order + 1)]
    out = list(within)
    if cross_codebook and codebook > 0:
        out.append(("f1",))
        for ctx in within[1:]:
            out += [("f1", *ctx), (*ctx, "f1")]
    return out


def holdout_split(items: list, fraction: float = 0.1, min_frames: int = 32, seed: int = 0) -> tuple[list, list]:
    """``(fit, validation)``: about ``fraction`` of the train frames held out, as whole items.

    Items are drawn in a seeded random order until the held-out part has ``fraction`` of the
    frames, so it is a sample of every kind of item the train split has (not its tail, which
    in a pooled corpus is the last corpus). When that would take more than half of the frames
    (a few long items), the last ``fraction`` of the joined frames is held out instead, cutting
    inside an item if needed. Both parts keep the items' order.
    """
    lengths = [int(x.shape[-1]) for x in items]
    total = sum(lengths)
    target = max(min_frames, int(round(total * fraction)))
    if total < 2 * min_frames:
        raise ValueError(f"need at least {2 * min_frames} train frames to hold out a validation slice, got {total}")
    order = np.random.default_rng(seed).permutation(len(items))
    chosen, held = set(), 0
    for i in order:
        if held >= target:
            break
        chosen.add(int(i))
        held += lengths[i]
    if held <= total // 2 and len(chosen) < len(items):
        return [x for i, x in enumerate(items) if i not in chosen], [x for i, x in enumerate(items) if i in chosen]
    return _tail_split(items, total, target, min_frames)


def _tail_split(items: list, total: int, target: int, min_frames: int) -> tuple[list, list]:
    fit, val, seen = [], [], 0
    cut = total - target
    for x in items:
        n = x.shape[-1]
        if seen + n <= cut:
            fit.append(x)
        elif seen >= cut:
            val.append(x)
        else:  # the cut falls inside this item
            k = cut - seen
            if k >= min_frames:
                fit.append(x[..., :k])
            if n - k > 0:
                val.append(x[..., k:] if k >= min_frames else x)
        seen += n
    if not fit:  # one item shorter than 2 x target frames: split it in two
        fit, val = [items[0][..., :cut]], [items[0][..., cut:]] + list(items[1:])
    return fit, val


def _feature(items: list[np.ndarray], codebook: int, name: str, sizes: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """Values of one context feature for every token of ``codebook``, and its radix."""
    out = []
    if name == "f1":
        radix = sizes[codebook - 1]
        for x in items:
            out.append(x[codebook - 1])
        return np.concatenate(out).astype(np.int64), radix
    lag = int(name[1:])
    start = sizes[codebook]  # the start symbol: one past the last code
    for x in items:
        row = x[codebook]
        shifted = np.full(row.shape[-1], start, dtype=np.int64)
        if row.shape[-1] > lag:
            shifted[lag:] = row[:-lag]
        out.append(shifted)
    return np.concatenate(out), start + 1


class _Level:
    """Counts of one context prefix: ``(context, symbol)`` pairs and context totals, sorted keys."""

    def __init__(self, context: np.ndarray, target: np.ndarray, size: int) -> None:
        pair = context * size + target
        self.pair_keys, self.pair_counts = np.unique(pair, return_counts=True)
        ctx_of_pair = self.pair_keys // size
        self.ctx_keys, first = np.unique(ctx_of_pair, return_index=True)
        self.ctx_counts = np.add.reduceat(self.pair_counts, first).astype(np.float64)
        self.ctx_unique = np.diff(np.append(first, len(ctx_of_pair))).astype(np.float64)
        self.size = size

    def lookup(self, context: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per token: ``c(h, x)``, ``c(h)``, ``u(h)`` (zeros where unseen)."""
        return (_find(self.pair_keys, self.pair_counts.astype(np.float64), context * self.size + target),
                _find(self.ctx_keys, self.ctx_counts, context), _find(self.ctx_keys, self.ctx_unique, context))


def _find(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    if len(keys) == 0:
        return np.zeros(len(query))
    i = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    return np.where(keys[i] == query, values[i], 0.0)


def _interpolate(lower: np.ndarray, pair: np.ndarray, ctx: np.ndarray, uniq: np.ndarray, d: float, beta: float) -> np.ndarray:
    seen = ctx > 0
    p = lower.copy()
    denom = ctx[seen] + beta
    p[seen] = (np.maximum(pair[seen] - d, 0.0) + (d * uniq[seen] + beta) * lower[seen]) / denom
    return p


@dataclass
class CodebookNGram:
    """The fitted model of one codebook: its context, smoothing and counts."""

    codebook: int
    size: int
    context: tuple[str, ...]
    params: list[tuple[float, float]] = field(default_factory=list)  # (d_n, beta_n) per level n >= 1
    validation_bits: float | None = None  # bits/token of the chosen model on the held-out slice
    unigram_counts: np.ndarray | None = None
    levels: list = field(default_factory=list, repr=False)

    def _fit(self, items: list[np.ndarray], sizes: tuple[int, ...]) -> None:
        target = np.concatenate([x[self.codebook] for x in items]).astype(np.int64)
        self.unigram_counts = np.bincount(target, minlength=self.size).astype(np.float64)
        self.levels = [_Level(ctx, target, self.size) for ctx in _prefix_contexts(items, self.codebook, self.context, sizes)]

    def log2_probs(self, items: list[np.ndarray], sizes: tuple[int, ...]) -> np.ndarray:
        """log2 P of every token of this codebook in ``items`` (item-major, then time)."""
        target = np.concatenate([x[self.codebook] for x in items]).astype(np.int64)
        p = _unigram(self.unigram_counts)[target]
        for level, ctx, (d, beta) in zip(self.levels, _prefix_contexts(items, self.codebook, self.context, sizes), self.params):
            p = _interpolate(p, *level.lookup(ctx, target), d, beta)
        return np.log2(p)


def _unigram(counts: np.ndarray, alpha: float = UNIGRAM_ALPHA) -> np.ndarray:
    return (counts + alpha) / (counts.sum() + alpha * len(counts))


def _prefix_contexts(items, codebook: int, context: tuple[str, ...], sizes) -> list[np.ndarray]:
    """Mixed-radix ids of the context prefixes ``h_1 .. h_n`` for every token."""
    out, ids = [], None
    for name in context:
        value, radix = _feature(items, codebook, name, sizes)
        ids = value if ids is None else ids * radix + value
        out.append(ids)
    return out


@dataclass
class NGramModel:
    """Per-codebook n-gram models of a ``K``-codebook stream (see the module docstring)."""

    codebook_sizes: tuple[int, ...]
    codebooks: list[CodebookNGram]
    max_order: int

    def bits_per_token(self, items: list[np.ndarray]) -> list[float]:
        """Held-out cross-entropy per codebook, bits per token, pooled over ``items`` ``[K, T]``."""
        items = _as_items(items, self.codebook_sizes)
        return [float(-cb.log2_probs(items, self.codebook_sizes).mean()) for cb in self.codebooks]

    def describe(self) -> list[dict]:
        return [{"codebook": cb.codebook, "context": list(cb.context), "params": [list(p) for p in cb.params],
                 "validation_bits_per_token": cb.validation_bits} for cb in self.codebooks]


def _as_items(items, sizes) -> list[np.ndarray]:
    out = []
    for x in items:
        x = np.asarray(x.cpu().numpy() if hasattr(x, "cpu") else x, dtype=np.int64)
        if x.ndim != 2 or x.shape[0] != len(sizes):
            raise ValueError(f"n-gram items must be [K={len(sizes)}, T] codes, got shape {x.shape}")
        if x.size and (x.min() < 0 or (x.max(axis=1) >= np.asarray(sizes)).any()):
            raise ValueError(f"codes out of range of the codebook sizes {list(sizes)}")
        out.append(x)
    if not out or sum(x.shape[-1] for x in out) == 0:
        raise ValueError("n-gram: need at least one non-empty item")
    return out


def fit_unigram(train_items, codebook_sizes) -> NGramModel:
    """The add-``alpha`` unigram of each codebook, fitted on ``train_items`` (no held-out slice needed)."""
    sizes = tuple(int(s) for s in codebook_sizes)
    items = _as_items(train_items, sizes)
    books = []
    for k, size in enumerate(sizes):
        cb = CodebookNGram(k, size, ())
        cb._fit(items, sizes)
        books.append(cb)
    return NGramModel(sizes, books, 0)


def fit_ngram(train_items, codebook_sizes, max_order: int = 1, cross_codebook: bool = True,
              validation: float = 0.1) -> NGramModel:
    """Choose and fit the per-codebook n-gram of order ``<= max_order`` (see the module docstring).

    Args:
        train_items: list of ``[K, T]`` integer arrays or tensors.
        codebook_sizes: ``V_k`` of each codebook.
        max_order: frames of the same codebook a context may look back (1: bigram, 2: trigram).
        cross_codebook: allow ``f1`` (the codebook before, same frame) in the context.
        validation: fraction of the train frames held out to choose the context and smoothing.
    """
    return fit_ngrams(train_items, codebook_sizes, (max_order,), cross_codebook, validation)[max_order]


def fit_ngrams(train_items, codebook_sizes, orders=(1, 2), cross_codebook: bool = True,
               validation: float = 0.1) -> dict[int, NGramModel]:
    """:func:`fit_ngram` for several ``max_order`` at once (the tuning of shared contexts is done once)."""
    sizes = tuple(int(s) for s in codebook_sizes)
    items = _as_items(train_items, sizes)
    fit_items, val_items = holdout_split(items, validation)
    books: dict[int, list[CodebookNGram]] = {order: [] for order in orders}
    for k, size in enumerate(sizes):
        val_target = np.concatenate([x[k] for x in val_items]).astype(np.int64)
        fit_target = np.concatenate([x[k] for x in fit_items]).astype(np.int64)
        base = _unigram(np.bincount(fit_target, minlength=size).astype(np.float64))[val_target]
        cache: dict[tuple, tuple[np.ndarray, list]] = {(): (base, [])}
        scores: dict[tuple, tuple[float, list]] = {}
        for context in context_candidates(k, max(orders), cross_codebook):
            p, params = _tune(context, cache, fit_items, val_items, fit_target, val_target, k, sizes)
            scores[context] = (float(-np.log2(p).mean()), params)
        fitted: dict[tuple, CodebookNGram] = {}
        for order in orders:
            allowed = context_candidates(k, order, cross_codebook)
            context = min(allowed, key=lambda c: (scores[c][0], len(c)))
            if context not in fitted:
                fitted[context] = CodebookNGram(k, size, context, scores[context][1], scores[context][0])
                fitted[context]._fit(items, sizes)  # refit the chosen model on every train frame
            books[order].append(fitted[context])
    return {order: NGramModel(sizes, books[order], order) for order in orders}


def _tune(context, cache, fit_items, val_items, fit_target, val_target, k, sizes):
    """Validation probabilities of ``context`` with each level's (d, beta) chosen greedily; memoised by prefix."""
    if context in cache:
        return cache[context]
    lower, params = _tune(context[:-1], cache, fit_items, val_items, fit_target, val_target, k, sizes)
    fit_ctx = _prefix_contexts(fit_items, k, context, sizes)[-1]
    val_ctx = _prefix_contexts(val_items, k, context, sizes)[-1]
    level = _Level(fit_ctx, fit_target, sizes[k])
    pair, ctx, uniq = level.lookup(val_ctx, val_target)
    best = None
    for d in DISCOUNTS:
        for beta in STRENGTHS:
            if d == 0.0 and beta == 0.0:  # no mass left for unseen symbols: infinite loss on new data
                continue
            p = _interpolate(lower, pair, ctx, uniq, d, beta)
            nll = -float(np.log(p).sum())
            if math.isfinite(nll) and (best is None or nll < best[0]):
                best = (nll, p, (d, beta))
    cache[context] = (best[1], [*params, best[2]])
    return cache[context]
