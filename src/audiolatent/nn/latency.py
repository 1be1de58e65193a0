"""Lookahead: its definition, how it composes through a stack of layers, and how to measure it.

Definition
----------
Every temporal module maps a *fine* time axis to a *coarse* one (or keeps the rate). With ``hop``
fine steps per coarse step, coarse step ``j`` owns the fine "hop window" ``[j * hop, (j + 1) * hop)``.

* **Downsampling** (encoder side: samples in, frames out). Output frame ``j`` depends on input
  samples up to index ``f(j)``. A causal module has ``f(j) <= (j + 1) * hop - 1`` (nothing past the
  end of the frame's own window). The lookahead, in **input samples**, is

      ``lookahead = max_j [ f(j) + 1 - (j + 1) * hop ]``.

* **Upsampling** (decoder side: frames in, samples out). Output sample ``n`` depends on input
  frames up to index ``J(n)``. A causal module has ``J(n) <= n // hop`` (a sample never needs a
  frame whose window starts after it). The lookahead, in **output samples**, is

      ``lookahead = max_n [ J(n) * hop - n ]``

  i.e. how many output samples before the start of frame ``j``'s window already need frame ``j``.

For ``hop == 1`` both reduce to ``max_i [ f(i) - i ]``. A causal module has lookahead 0 (or
less). The algorithmic latency of an encoder -> decoder chain, in samples, is
``encoder.hop_length + encoder.lookahead + decoder.lookahead``: frame ``j`` exists once input
sample ``(j + 1) * hop - 1 + encoder.lookahead`` has arrived, and the first output sample that
needs it is ``j * hop - decoder.lookahead`` (counting a sample as arrived at the end of its
period, the gap is exactly that sum).

Composition
-----------
For a chain of downsampling layers (each with ``stride`` and ``lookahead`` in its own input
steps), ``f`` composes as an affine map and the total lookahead in input samples of the first
layer is ``sum_k lookahead_k * (product of the strides before layer k)``
(:func:`downsampling_lookahead`). For upsampling chains (``lookahead`` in output steps),
``J(n) = floor((n + A) / hop)`` with ``A = sum_k lookahead_k * (product of the strides after
layer k)``, so the total is ``A`` (:func:`upsampling_lookahead`). Both are exact, which the
probe below confirms in the tests.

Measurement
-----------
:func:`measure_lookahead` probes: it replaces the input from position ``t`` onward with fresh
noise, finds the earliest output index that changes, ``m*(t)``, and returns

* downsampling: ``max_t [ t + 1 - (m*(t) + 1) * hop ]`` over ``hop`` consecutive ``t`` (every
  phase of the hop window), which equals the definition above because ``m*(t)`` is the first
  ``j`` with ``f(j) >= t``;
* upsampling: ``max_t [ t * hop - m*(t) ]`` (one ``t`` suffices: shifting the input by one frame
  shifts the output by ``hop`` samples).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

__all__ = ["downsampling_lookahead", "upsampling_lookahead", "measure_lookahead", "temporal_attributes"]


def temporal_attributes(module: nn.Module) -> tuple[int, int]:
    """``(stride, lookahead)`` of a layer; pointwise layers (no such attributes) give ``(1, 0)``."""
    stride, lookahead = getattr(module, "stride", 1), getattr(module, "lookahead", 0)
    if not isinstance(stride, int) or not isinstance(lookahead, int):
        raise TypeError(f"{type(module).__name__} has no integer stride/lookahead; wrap it in a streaming module")
    return stride, lookahead


def downsampling_lookahead(layers: Iterable[nn.Module]) -> int:
    """Total lookahead (input samples of the first layer) of layers applied in order."""
    total, step = 0, 1
    for layer in layers:
        stride, lookahead = temporal_attributes(layer)
        total += lookahead * step
        step *= stride
    return total


def upsampling_lookahead(layers: Iterable[nn.Module]) -> int:
    """Total lookahead (output samples of the last layer) of layers applied in order."""
    total, step = 0, 1
    for layer in reversed(list(layers)):
        stride, lookahead = temporal_attributes(layer)
        total += lookahead * step
        step *= stride
    return total


@torch.no_grad()
def measure_lookahead(
    fn: Callable[[torch.Tensor], torch.Tensor],
    n_samples: int,
    in_channels: int,
    hop: int,
    *,
    upsample: bool = False,
    positions: Iterable[int] | None = None,
    batch_size: int = 16,
    seed: int = 0,
    atol: float = 0.0,
    skip_unchanged: bool = False,
    base: torch.Tensor | None = None,
) -> int:
    """Measured lookahead of the offline map ``fn`` (see the module docstring for the definition).

    Args:
        fn: offline map ``[B, in_channels, n_samples] -> [B, C_out, M]``, batch items independent.
        n_samples: input length (samples; frames when ``upsample``). It must exceed the probe
            position plus the receptive field, and the probe position must exceed the lookahead:
            a few times the receptive field is safe.
        in_channels: input channels.
        hop: input samples per output frame (downsampling) or output samples per input frame
            (``upsample=True``); 1 for rate-preserving modules.
        upsample: select the upsampling definition (result in output samples).
        positions: probe positions ``t`` (input index); default: ``hop`` consecutive positions
            from the middle of the signal (downsampling) or just the middle (upsampling).
        batch_size: probes per call of ``fn`` (plus one unperturbed reference in each batch, so
            that the comparison is between items of the same call).
        seed: seed of the random input and perturbations.
        atol: an output counts as changed when it moves by more than ``atol``.
        skip_unchanged: a position whose perturbation changes no output is left out of the max
            (a quantiser can absorb a change of the last samples of a frame) instead of raising;
            RuntimeError still when no position changes anything.
        base: the unperturbed input ``[1, in_channels, n_samples]`` (default: seeded white noise);
            the perturbation is still fresh noise from ``t`` on. A map whose reach depends on the
            signal (a segmenting bottleneck holds a steady stretch longer) is probed on the
            signal that makes it reach furthest.

    Returns:
        The lookahead, in input samples (downsampling) or output samples (upsampling).
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, in_channels, n_samples, generator=gen)
    if base is not None:
        if tuple(base.shape) != (1, in_channels, n_samples):
            raise ValueError(f"base must be [1, {in_channels}, {n_samples}], got {tuple(base.shape)}")
        x = base.detach().to(x.dtype).cpu()
    if positions is None:
        middle = n_samples // 2
        positions = range(middle - middle % hop, middle - middle % hop + hop) if not upsample else [middle]
    positions = list(positions)
    if not positions or min(positions) < 1 or max(positions) >= n_samples:
        raise ValueError(f"probe positions must lie in [1, {n_samples}), got {positions}")
    result: int | None = None
    for start in range(0, len(positions), batch_size):
        batch_positions = positions[start : start + batch_size]
        xb = x.repeat(len(batch_positions) + 1, 1, 1)
        for i, t in enumerate(batch_positions, start=1):
            xb[i, :, t:] = torch.randn(in_channels, n_samples - t, generator=gen)
        y = fn(xb)
        changed = ((y[1:] - y[:1]).abs() > atol).flatten(1, -2).any(dim=1)  # [P, M]
        for i, t in enumerate(batch_positions):
            hits = changed[i].nonzero()
            if hits.numel() == 0:
                if skip_unchanged:
                    continue
                raise RuntimeError(f"no output changed when the input changed from position {t}; is n_samples too short?")
            first = int(hits[0])
            if first == 0:
                raise ValueError(f"output 0 changed when the input changed from position {t}: move the probe later")
            value = t * hop - first if upsample else t + 1 - (first + 1) * hop
            result = value if result is None else max(result, value)
    if result is None:
        raise RuntimeError("no output changed for any probe position; is n_samples too short?")
    return result
