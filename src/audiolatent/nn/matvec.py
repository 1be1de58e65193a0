"""Matrix-vector products of a streamed frame: the cost floor of a one-frame step, made cheap.

A 20 ms chunk of a frame-rate codec is one frame, so each of its dense layers is a
matrix-vector product ``W x`` that reads the whole weight for a few hundred multiply-adds per
row. On the CPUs we measured, the BLAS ``sgemv`` behind ``F.linear`` / ``torch.addmv`` reaches a
fraction of the memory bandwidth there (codec-16k-default: 21 products, 5.6 M weights, about 2 ms
per chunk of a 4-5 ms step on this project's 2-core AMD EPYC).

:func:`linear_rows` computes ``x W^T + b`` on a few rows with, in order of preference:

1. **the int8 weights as shipped** (inference only: eval mode, gradients off, float32 on CPU): a
   weight that is exactly ``scale[o] * q[o, i]`` with integers ``|q| <= 127`` (what
   :func:`audiolatent.core.checkpoint.load_checkpoint` restores from an ``int8`` checkpoint, such as
   the shipped ``codec-16k-default``) is multiplied as ``scale * (q x)``: ``q`` is stored in float16
   (integers up to 2048 are exact there) and multiplied with float32 inputs and float32
   accumulation by FBGEMM's fp16-weight GEMM (``torch.fbgemm_linear_fp16_weight``), which reads half
   the bytes and runs about 4x faster than ``sgemv`` on one frame. The only difference to
   ``(scale * q) x`` is where float32 rounding happens (relative ~1e-7); the factorisation is
   checked bit for bit when the weight is first seen and cached while the weight is unchanged
   (:class:`~audiolatent.core.cache.TableCache`), and any weight that is not such a product (a
   float32 checkpoint, a weight being trained) takes path 2;
2. one row: ``torch.addmv`` (about twice as fast as the matrix-matrix kernel ``F.linear`` uses);
3. more rows: ``F.linear``.

Where FBGEMM's fp16 GEMM is missing (a build without FBGEMM, or a PyTorch that has removed this
deprecated operator) path 1 is skipped with no error. It is skipped too while a graph is being
recorded (:func:`~audiolatent.core.cache.is_tracing`: :mod:`audiolatent.tokenizers.export`): the
packed matrix is a handle to memory of this process, which no saved program can carry, so an
exported step multiplies the float32 weights (paths 2-3).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from audiolatent.core.cache import TableCache, is_tracing

__all__ = ["Int8Rows", "int8_rows", "linear_rows"]

#: weights smaller than this (elements) are not worth a packed copy
MIN_PACKED_NUMEL = 4096
_fbgemm_fp16 = hasattr(torch, "fbgemm_pack_gemm_matrix_fp16") and hasattr(torch, "fbgemm_linear_fp16_weight")


@dataclass
class Int8Rows:
    """``weight [out, in] == scale[:, None] * q`` exactly, ``q`` packed for FBGEMM's fp16 GEMM."""

    packed: torch.Tensor  # opaque FBGEMM matrix of q (integers in [-127, 127], exact in float16)
    scale: torch.Tensor  # [out] float32
    zeros: torch.Tensor  # [out]: FBGEMM adds a bias before our scale, so it gets none

    def __call__(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """``x [N, in]`` -> ``[N, out]`` = ``scale * (x q^T) + bias``."""
        y = torch.fbgemm_linear_fp16_weight(x, self.packed, self.zeros)
        return y * self.scale if bias is None else torch.addcmul(bias, y, self.scale)


def int8_rows(weight: torch.Tensor) -> Int8Rows | None:
    """The int8 factorisation of a 2-D float32 CPU ``weight``, or None if it is not exactly one.

    The scale is that of the int8 export (``max |w[o]| / 127`` per output row); the factorisation
    is accepted only if ``scale * q`` reproduces every element bit for bit.
    """
    if not _fbgemm_fp16 or weight.device.type != "cpu" or weight.dtype != torch.float32 or weight.dim() != 2:
        return None
    if weight.numel() < MIN_PACKED_NUMEL:
        return None
    weight = weight.detach()
    scale = weight.abs().amax(dim=1) / 127.0
    if not bool((scale > 0).all()):
        return None
    q = torch.round(weight / scale[:, None])
    if not torch.equal(q * scale[:, None], weight) or float(q.abs().max()) > 127:
        return None
    try:
        with warnings.catch_warnings():  # the operator warns (once) that it is deprecated
            warnings.simplefilter("ignore")
            rows = Int8Rows(torch.fbgemm_pack_gemm_matrix_fp16(q.contiguous()), scale.contiguous(), weight.new_zeros(weight.shape[0]))
            rows(weight.new_zeros(1, weight.shape[1]), None)
    except RuntimeError:  # no FBGEMM in this build, or a CPU it does not support
        return None
    return rows


def linear_rows(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    memo: TableCache | None = None,
    owner: nn.Module | None = None,
    name: str = "weight",
    sources: tuple[torch.Tensor, ...] | None = None,
) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` on rows ``x [N, in]`` (a streamed frame or a few).

    With ``memo`` and its ``owner`` (the module whose weight this is), an int8-exact weight runs as
    shipped at inference (module docstring); ``name`` tells the owner's weights apart in the memo,
    ``sources`` are the parameters ``weight`` is computed from (default: ``weight`` itself, which
    must then be a parameter, not a view or a result made under ``inference_mode``).
    The result equals ``F.linear`` to float32 rounding.
    """
    if memo is not None and not owner.training and not torch.is_grad_enabled() and not is_tracing():
        rows = memo.get(owner, name, sources or (weight,), lambda: int8_rows(weight))
        if rows is not None and x.dtype == torch.float32:
            return rows(x.contiguous(), bias)
    if x.shape[0] != 1:
        return F.linear(x, weight, bias)
    row = x.reshape(-1)
    return (torch.mv(weight, row) if bias is None else torch.addmv(bias, weight, row)).unsqueeze(0)
