"""Combine the generator's losses into one gradient: a weighted sum, or EnCodec's loss balancer.

EnCodec's balancer (Défossez et al. 2022, "High Fidelity Neural Audio Compression", Sec. 3.4)
makes each loss weight mean *a share of the gradient*, independent of the loss's scale.

Setup: the codec decodes ``y = G(x)`` (audio ``[B, C, N]``) and several losses ``l_i(y)``
(mel, STFT, time L1, adversarial, feature matching) depend on the parameters only through
``y``. Then ``dl_i/dtheta = (dl_i/dy) (dy/dtheta)``, so it is enough to combine the
gradients ``g_i = dl_i/dy`` (each ``[B, C, N]``) and backpropagate one tensor through ``y``:

1. ``g_i = autograd.grad(l_i, y)`` for every loss (the decoder graph is kept: ``retain_graph``);
2. ``n_i = ||g_i||_2``: with ``per_batch_item=True`` (EnCodec) the L2 norm of each item's
   ``[C, N]`` slice, averaged over the batch; else the norm of the whole ``[B, C, N]`` tensor;
3. ``e_i`` = bias-corrected exponential moving average of ``n_i`` over training steps
   (``e_i = sum_t beta^(T-t) n_i(t) / sum_t beta^(T-t)``, decay ``beta = ema_decay``), so one
   noisy step cannot blow up a loss's share;
4. ``r_i = w_i / sum_j w_j`` and ``G = total_norm * sum_i r_i g_i / (e_i + eps)``;
5. ``y.backward(G)``.

Each term ``total_norm * r_i g_i / e_i`` has norm ``~ r_i * total_norm``: loss ``i``
contributes its weight's share of a gradient of norm ``total_norm`` whatever the scale of
``l_i``. (Adam is invariant to the overall gradient scale, so ``total_norm`` mostly matters
with SGD or gradient clipping.) Mode ``"sum"`` instead gives ``G = sum_i w_i g_i``, exactly
the gradient of ``sum_i w_i l_i`` — the usual weighted sum.

Losses that do not depend on ``y`` (commitment, codebook, KL) are not handled here: add
them to the parameters' gradients with their own ``backward()`` call.

Distributed training: ``g_i`` is local to each process. Pass ``reduce_norms`` (e.g. a
function that all-reduces a tensor to its mean over processes) to share the norms ``n_i``
so that every process scales its gradients alike; the combiner itself issues no collective.

Example::

    combiner = LossCombiner({"mel": 15.0, "adv": 1.0, "feat": 2.0}, mode="balancer")
    y = codec.decode(codec.encode(x))                       # [B, 1, N]
    losses = {"mel": mel_loss(y, x), "adv": adv(y), "feat": feat(y, x)}
    metrics = combiner.backward(losses, y)                  # y.backward(G); then optimizer.step()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

__all__ = ["LossCombiner"]

_MODES = ("sum", "balancer")


class LossCombiner:
    """Weighted sum or EnCodec gradient balancing of losses that depend on one output tensor.

    Args:
        weights: loss name -> weight (``w_i`` above; non-negative). Losses passed at call time
            must use these names; a loss missing at a step simply does not contribute.
        mode: ``"sum"`` (gradient of ``sum_i w_i l_i``) or ``"balancer"`` (EnCodec).
        total_norm: balancer only; the norm the combined gradient aims at (EnCodec: 1).
        ema_decay: balancer only; decay ``beta`` of the moving average of gradient norms (EnCodec: 0.999).
        per_batch_item: balancer only; norms per batch item, averaged (EnCodec: True).
        eps: balancer only; added to the averaged norm before dividing.
        reduce_norms: balancer only; optional ``f(norms [L]) -> norms [L]`` applied to the
            stacked per-loss norms of a step (e.g. a mean all-reduce across processes).
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        mode: str = "sum",
        total_norm: float = 1.0,
        ema_decay: float = 0.999,
        per_batch_item: bool = True,
        eps: float = 1e-12,
        reduce_norms: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if not weights or any(w < 0 for w in weights.values()):
            raise ValueError(f"weights must be a non-empty mapping of non-negative numbers, got {dict(weights)}")
        self.weights = {name: float(w) for name, w in weights.items()}
        self.mode = mode
        self.total_norm = total_norm
        self.ema_decay = ema_decay
        self.per_batch_item = per_batch_item
        self.eps = eps
        self.reduce_norms = reduce_norms
        # Bias-corrected EMA state per loss: decayed sum of norms and decayed count.
        self._norm_sums: dict[str, float] = {}
        self._counts: dict[str, float] = {}

    def _check(self, losses: Mapping[str, torch.Tensor]) -> None:
        unknown = set(losses) - set(self.weights)
        if unknown:
            raise KeyError(f"losses {sorted(unknown)} have no weight; weights: {sorted(self.weights)}")
        if not losses:
            raise ValueError("no losses given")

    def gradient(self, losses: Mapping[str, torch.Tensor], output: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The combined gradient ``G`` w.r.t. ``output`` (same shape) and per-loss metrics.

        ``losses``: name -> scalar tensor depending on ``output``. The graph is kept, so the
        caller can run ``output.backward(G)`` afterwards (:meth:`backward` does both).
        Metrics: ``loss/<name>`` (value), ``grad_norm/<name>`` (``n_i``) and, for the balancer,
        ``ema_grad_norm/<name>`` (``e_i``) and ``grad_share/<name>`` (``r_i``).
        """
        self._check(losses)
        names = list(losses)
        metrics = {f"loss/{name}": float(losses[name].detach()) for name in names}
        grads = []
        for name in names:
            grad = None
            if losses[name].requires_grad:
                (grad,) = torch.autograd.grad(losses[name], output, retain_graph=True, allow_unused=True)
            grads.append(torch.zeros_like(output) if grad is None else grad)
        norms = torch.stack([self._norm(g) for g in grads])
        if self.reduce_norms is not None and self.mode == "balancer":
            norms = self.reduce_norms(norms)
        for name, norm in zip(names, norms.tolist()):
            metrics[f"grad_norm/{name}"] = norm

        if self.mode == "sum":
            combined = sum(self.weights[name] * g for name, g in zip(names, grads))
            return combined, metrics

        total_weight = sum(self.weights[name] for name in names)
        if total_weight <= 0:
            raise ValueError(f"weights of {names} sum to 0")
        combined = torch.zeros_like(output)
        for name, grad, norm in zip(names, grads, norms.tolist()):
            ema = self._update_ema(name, norm)
            share = self.weights[name] / total_weight
            combined = combined + (self.total_norm * share / (ema + self.eps)) * grad
            metrics[f"ema_grad_norm/{name}"] = ema
            metrics[f"grad_share/{name}"] = share
        return combined, metrics

    def backward(self, losses: Mapping[str, torch.Tensor], output: torch.Tensor) -> dict[str, float]:
        """Compute :meth:`gradient` and backpropagate it: ``output.backward(G)``. Returns the metrics."""
        combined, metrics = self.gradient(losses, output)
        output.backward(combined)
        return metrics

    def _norm(self, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.detach()
        if self.per_batch_item and grad.dim() > 1:
            return torch.linalg.vector_norm(grad.reshape(grad.shape[0], -1), dim=1).mean()
        return torch.linalg.vector_norm(grad)

    def _update_ema(self, name: str, norm: float) -> float:
        self._norm_sums[name] = self.ema_decay * self._norm_sums.get(name, 0.0) + norm
        self._counts[name] = self.ema_decay * self._counts.get(name, 0.0) + 1.0
        return self._norm_sums[name] / self._counts[name]

    def state_dict(self) -> dict[str, dict[str, float]]:
        """The moving-average state, for checkpoints (resume continues the same averages)."""
        return {"norm_sums": dict(self._norm_sums), "counts": dict(self._counts)}

    def load_state_dict(self, state: Mapping[str, Mapping[str, float]]) -> None:
        self._norm_sums = {k: float(v) for k, v in state["norm_sums"].items()}
        self._counts = {k: float(v) for k, v in state["counts"].items()}
