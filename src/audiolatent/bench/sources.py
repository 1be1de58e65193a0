"""Synthetic latents whose entropy rate is known exactly: the known answers of the modelability axis.

A modelability figure is an upper bound on the entropy rate of a latent, and a bound is only as
good as the estimator behind it. These sources let a test (or a user trying another budget)
check that the bench's figure comes out right: each draws train and test items from a process
whose true conditional distributions are known, and reports the **oracle code length** of the
test items — the cross-entropy of the test codes under the true process, item by item from an
empty past, which no estimator can beat on average — beside the analytic stationary rate.

Discrete sources (codes ``[K, T]`` per item, in bits):

==============  =====================================================================================
``iid``         every code uniform over ``V``: ``log2 V`` bits per token
``markov``      one codebook, a first-order Markov chain with ``successors`` equally likely next
                codes per state (a random sparse transition table): ``log2 successors`` per token
                after the first
``markov2``     one codebook, second order: ``successors`` equally likely next codes per pair of the
                last two codes: ``log2 successors`` per token after the first two (a bigram cannot
                see it, a trigram can)
``cross``       codebook 0 as ``markov``; codebook k > 0 is a fixed permutation of codebook k - 1
                of the same frame with probability ``1 - eps``, else uniform
``lag``         one codebook: ``x_t = x_{t-lag}`` with probability ``1 - eps``, else uniform (the
                first ``lag`` codes uniform): a dependence an n-gram cannot see
``periodic``    one codebook: a fixed cycle of ``period`` distinct codes at a random phase per item,
                each code replaced by a uniform one with probability ``eps``; the oracle tracks the
                posterior over the phase
==============  =====================================================================================

With ``q = 1 - eps + eps / V`` the per-token entropy of a "copy with probability 1 - eps, else
uniform" code is ``h(eps, V) = -q log2 q - (V - 1) (eps / V) log2 (eps / V)``.

Continuous source (``[D, T]`` per item, in nats): :func:`gaussian_ar`, ``x_t = A x_{t-1} + e_t``
with ``e_t ~ N(0, diag(sigma^2))``, started from its stationary law ``N(0, P)``,
``P = A P A^T + diag(sigma^2)``. Its conditional entropy is ``sum_d 0.5 ln(2 pi e sigma_d^2)``
nats per frame, the diagonal Gaussian marginal's is ``sum_d 0.5 ln(2 pi e P_dd)``, and the best
next-frame predictor has (standardised, pooled) ``R^2 = 1 - mean_d sigma_d^2 / P_dd``.

Example::

    src = cross_codebook_source(n_train=40, n_test=8, frames=1000, seed=0)
    src.train[0].shape, src.oracle_bits_per_token   # (4, 1000), ~1.45
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["DiscreteSource", "ContinuousSource", "copy_entropy", "iid_source", "markov_source", "second_order_source",
           "cross_codebook_source", "lag_source", "periodic_source", "gaussian_ar"]


@dataclass
class DiscreteSource:
    """Train and test codes of a source and what is known of it."""

    name: str
    train: list[torch.Tensor]  # [K, T] long per item
    test: list[torch.Tensor]
    codebook_sizes: tuple[int, ...]
    oracle_bits_per_frame: float  # cross-entropy of the test items under the true process, per frame
    rate_bits_per_frame: float  # the analytic stationary entropy rate, per frame

    @property
    def oracle_bits_per_token(self) -> float:
        return self.oracle_bits_per_frame / len(self.codebook_sizes)


@dataclass
class ContinuousSource:
    name: str
    train: list[torch.Tensor]  # [D, T] float per item
    test: list[torch.Tensor]
    conditional_nats_per_frame: float
    marginal_nats_per_frame: float  # diagonal Gaussian with the stationary variances
    r2: float

    @property
    def predictive_nats_per_frame(self) -> float:
        return self.marginal_nats_per_frame - self.conditional_nats_per_frame

    def rescaled(self, scale, offset) -> "ContinuousSource":
        """The same process under ``x -> scale * x + offset`` per dimension (the same entropies up to a shift)."""
        s = torch.as_tensor(scale, dtype=torch.float32)[:, None]
        o = torch.as_tensor(offset, dtype=torch.float32)[:, None]
        shift = float(torch.log(s.abs()).sum())
        return ContinuousSource(f"{self.name}-rescaled", [x * s + o for x in self.train], [x * s + o for x in self.test],
                                self.conditional_nats_per_frame + shift, self.marginal_nats_per_frame + shift, self.r2)


def copy_entropy(eps: float, size: int) -> float:
    """``h(eps, V)``: bits of a code that copies a known value w.p. ``1 - eps``, else is uniform."""
    q = 1 - eps + eps / size
    rest = eps / size
    return -(q * math.log2(q)) - ((size - 1) * rest * math.log2(rest) if rest > 0 else 0.0)


def _split(items: list[np.ndarray], n_train: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    tensors = [torch.from_numpy(np.ascontiguousarray(x)).long() for x in items]
    return tensors[:n_train], tensors[n_train:]


def iid_source(n_train: int = 40, n_test: int = 8, frames: int = 1000, size: int = 256, codebooks: int = 2,
               seed: int = 0) -> DiscreteSource:
    rng = np.random.default_rng(seed)
    items = [rng.integers(0, size, (codebooks, frames)) for _ in range(n_train + n_test)]
    train, test = _split(items, n_train)
    bits = codebooks * math.log2(size)
    return DiscreteSource("iid", train, test, (size,) * codebooks, bits, bits)


def _sparse_chain(rng, size: int, successors: int) -> np.ndarray:
    """``[V, successors]`` successors of each state, distinct; all equally likely."""
    return np.stack([rng.choice(size, successors, replace=False) for _ in range(size)])


def _walk(rng, table: np.ndarray, frames: int) -> np.ndarray:
    x = np.empty(frames, dtype=np.int64)
    x[0] = rng.integers(0, table.shape[0])
    picks = rng.integers(0, table.shape[1], frames)
    for t in range(1, frames):
        x[t] = table[x[t - 1], picks[t]]
    return x


def markov_source(n_train: int = 40, n_test: int = 8, frames: int = 1000, size: int = 64, successors: int = 4,
                  seed: int = 0) -> DiscreteSource:
    rng = np.random.default_rng(seed)
    table = _sparse_chain(rng, size, successors)
    items = [_walk(rng, table, frames)[None] for _ in range(n_train + n_test)]
    train, test = _split(items, n_train)
    rate = math.log2(successors)
    oracle = (math.log2(size) + (frames - 1) * rate) / frames  # the first code of an item is uniform
    return DiscreteSource("markov", train, test, (size,), oracle, rate)


def second_order_source(n_train: int = 40, n_test: int = 8, frames: int = 1000, size: int = 32, successors: int = 2,
                        seed: int = 0) -> DiscreteSource:
    rng = np.random.default_rng(seed)
    table = np.stack([rng.choice(size, successors, replace=False) for _ in range(size * size)]).reshape(size, size, -1)
    items = []
    for _ in range(n_train + n_test):
        x = np.empty(frames, dtype=np.int64)
        x[:2] = rng.integers(0, size, 2)
        picks = rng.integers(0, successors, frames)
        for t in range(2, frames):
            x[t] = table[x[t - 2], x[t - 1], picks[t]]
        items.append(x[None])
    train, test = _split(items, n_train)
    rate = math.log2(successors)
    oracle = (2 * math.log2(size) + (frames - 2) * rate) / frames  # the first two codes are uniform
    return DiscreteSource("markov2", train, test, (size,), oracle, rate)


def cross_codebook_source(n_train: int = 40, n_test: int = 8, frames: int = 1000, size: int = 256, codebooks: int = 4,
                          successors: int = 4, eps: float = 0.1, seed: int = 0) -> DiscreteSource:
    rng = np.random.default_rng(seed)
    table = _sparse_chain(rng, size, successors)
    perms = [rng.permutation(size) for _ in range(codebooks)]
    items = []
    for _ in range(n_train + n_test):
        x = np.empty((codebooks, frames), dtype=np.int64)
        x[0] = _walk(rng, table, frames)
        for k in range(1, codebooks):
            keep = rng.random(frames) >= eps
            x[k] = np.where(keep, perms[k][x[k - 1]], rng.integers(0, size, frames))
        items.append(x)
    train, test = _split(items, n_train)
    first = (math.log2(size) + (frames - 1) * math.log2(successors)) / frames
    rest = (codebooks - 1) * copy_entropy(eps, size)
    return DiscreteSource("cross", train, test, (size,) * codebooks, first + rest, math.log2(successors) + rest)


def lag_source(n_train: int = 40, n_test: int = 8, frames: int = 1000, size: int = 16, lag: int = 16, eps: float = 0.1,
               seed: int = 0) -> DiscreteSource:
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(n_train + n_test):
        x = rng.integers(0, size, frames)
        keep = rng.random(frames) >= eps
        for t in range(lag, frames):
            if keep[t]:
                x[t] = x[t - lag]
        items.append(x[None])
    train, test = _split(items, n_train)
    rate = copy_entropy(eps, size)
    oracle = (lag * math.log2(size) + (frames - lag) * rate) / frames
    return DiscreteSource("lag", train, test, (size,), oracle, rate)


def periodic_source(n_train: int = 40, n_test: int = 8, frames: int = 1000, size: int = 64, period: int = 12,
                    eps: float = 0.1, seed: int = 0) -> DiscreteSource:
    rng = np.random.default_rng(seed)
    cycle = rng.choice(size, period, replace=False)
    items = []
    for _ in range(n_train + n_test):
        phase = rng.integers(0, period)
        clean = cycle[(phase + np.arange(frames)) % period]
        keep = rng.random(frames) >= eps
        items.append(np.where(keep, clean, rng.integers(0, size, frames))[None])
    train, test = _split(items, n_train)
    # oracle: posterior over the phase, exact (the phase is the only hidden state)
    bits = 0.0
    for item in test:
        x = item[0].numpy()
        log_w = np.full(period, -math.log(period))
        for t in range(frames):
            expected = cycle[(np.arange(period) + t) % period]
            like = (1 - eps) * (expected == x[t]) + eps / size
            p = float(np.exp(log_w - log_w.max()) @ like / np.exp(log_w - log_w.max()).sum())
            bits -= math.log2(p)
            log_w = log_w + np.log(like)
    oracle = bits / (frames * len(test))
    return DiscreteSource("periodic", train, test, (size,), oracle, copy_entropy(eps, size))


def gaussian_ar(n_train: int = 40, n_test: int = 8, frames: int = 500, dims: int = 4, seed: int = 0) -> ContinuousSource:
    """A stable linear-Gaussian AR(1) process in ``dims`` dimensions (module docstring)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dims, dims)))
    a = q @ np.diag(np.linspace(0.95, 0.5, dims)) @ q.T  # coupled dimensions, spectral radius 0.95
    sigma = np.linspace(0.2, 0.6, dims)
    noise_cov = np.diag(sigma**2)
    p = noise_cov.copy()
    for _ in range(2000):  # P = A P A^T + Sigma, iterated to its fixed point
        p = a @ p @ a.T + noise_cov
    chol = np.linalg.cholesky(p)
    items = []
    for _ in range(n_train + n_test):
        x = np.empty((dims, frames))
        x[:, 0] = chol @ rng.standard_normal(dims)
        e = sigma[:, None] * rng.standard_normal((dims, frames))
        for t in range(1, frames):
            x[:, t] = a @ x[:, t - 1] + e[:, t]
        items.append(torch.from_numpy(x).float())
    conditional = float(0.5 * np.log(2 * math.pi * math.e * sigma**2).sum())
    marginal = float(0.5 * np.log(2 * math.pi * math.e * np.diag(p)).sum())
    r2 = float(1 - np.mean(sigma**2 / np.diag(p)))
    return ContinuousSource("gaussian_ar", items[:n_train], items[n_train:], conditional, marginal, r2)
