"""Winograd (Toom-Cook) 1-D convolution for offline time-major inference.

A stride-1 convolution with a ``r``-tap kernel computes ``m`` outputs of a tile from ``n = m + r - 1``
inputs. Direct convolution spends ``m * r`` multiply-adds per channel pair on them; Winograd's
minimal filtering algorithm F(m, r) spends ``n``: it evaluates the tile's input and the kernel as
polynomials at ``n`` points (one of them infinity), multiplies pointwise, and interpolates back,

    y = A^T [(G g) * (B^T d)]

with ``A^T`` (m x n), ``G`` (n x r) and ``B^T`` (n x n) fixed matrices. Over channels the pointwise
products become ``n`` independent GEMMs ``[tiles, C_in] x [C_in, C_out]``, so F(6, 7) runs the
convolution in 12 / 42 of the direct method's multiply-adds; the transforms are small GEMMs over the
tiles. On the DAC-shaped stacks (kernel 7, dilations 1 / 3 / 9, 64-1536 channels) this is 1.4-3x
faster than oneDNN's direct convolution on the same time-major activations.

The price is rounding: the points' powers spread the magnitudes the transforms add, so a float32
F(6, 7) output is within about 3e-5 of the largest output of a layer (direct convolution: 1e-6).
That is far below what a codec's output is judged on, but it is not the training path to float
rounding, so it is a switch (``prepare_for_inference(winograd=...)``), and
``tests/nn/test_winograd.py`` measures the error bound it is allowed.

Dilation ``d`` splits time into ``d`` interleaved phases, each an undilated convolution: with the
time-major layout ``[T, C]`` the phases of ``d`` consecutive time steps are one row of ``d * C``
values, so one tile of rows serves every phase at once.

The matrices are built exactly (rational arithmetic) from the points of :data:`POINTS`, chosen by
measuring the float32 error of candidate sets (``{0, +-1, +-2, +-1/2, +-3/4, +-4/3, inf}`` beat
``{..., +-3, +-1/3}`` and ``{..., +-3/2, +-2/3}`` for F(6, 7)).
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import torch

#: finite evaluation points for F(m, r) with ``m + r - 2`` of them (infinity is always the last point)
POINTS: dict[tuple[int, int], tuple[Fraction, ...]] = {
    (6, 7): tuple(Fraction(p) for p in ("0", "1", "-1", "2", "-2", "1/2", "-1/2", "3/4", "-3/4", "4/3", "-4/3")),
    (6, 3): tuple(Fraction(p) for p in ("0", "1", "-1", "2", "-2", "1/2", "-1/2")),
}

#: the tile size used for each kernel size
TILE: dict[int, int] = {7: 6, 3: 6}

#: rows (tiles x dilation phases) transformed per block: the block's buffers stay in cache
BLOCK_ROWS = 512

#: the smallest ``C_in * C_out`` for which Winograd beat oneDNN's direct convolution on this
#: project's 2-core CPU (time-major, float32, single layers; kernel 7: 1.1-1.2x at 64 x 64, 1.4x
#: at 96 x 96, 3x at 768 x 768, slower at 64 x 32; kernel 3: 1.3x at 384 x 384, 1.0x at
#: 192 x 192, slower below)
MIN_CHANNEL_PRODUCT: dict[int, int] = {7: 64 * 64, 3: 256 * 256}


def worthwhile(kernel_size: int, c_in: int, c_out: int, length: int) -> bool:
    """Whether F(m, kernel_size) should replace direct convolution of ``length`` frames.

    Besides the channel product of :data:`MIN_CHANNEL_PRODUCT`, a signal of fewer frames than
    half the output channels stays direct: its convolution is short, and the transformed weight
    (``n / r`` times the weight, memoised for short signals) would cost more than it saves.
    """
    return kernel_size in TILE and c_in * c_out >= MIN_CHANNEL_PRODUCT[kernel_size] and 2 * length >= c_out


def _solve_inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    """Exact inverse by Gauss-Jordan elimination."""
    n = len(matrix)
    work = [row[:] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if work[r][col] != 0)
        work[col], work[pivot] = work[pivot], work[col]
        scale = work[col][col]
        work[col] = [v / scale for v in work[col]]
        for r in range(n):
            if r != col and work[r][col] != 0:
                factor = work[r][col]
                work[r] = [a - factor * b for a, b in zip(work[r], work[col])]
    return [row[n:] for row in work]


def _evaluation(points: tuple[Fraction, ...], k: int) -> list[list[Fraction]]:
    """Rows ``[1, a, ..., a^(k-1)]`` for each finite point, then ``[0, ..., 0, 1]`` for infinity."""
    return [[a**i for i in range(k)] for a in points] + [[Fraction(0)] * (k - 1) + [Fraction(1)]]


@lru_cache(maxsize=None)
def toom_cook(m: int, r: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(A^T [m, n], G [n, r], B^T [n, n])`` in float64 for the correlation F(m, r).

    Built as the transpose of the linear convolution of an ``m``-tap and an ``r``-tap signal by
    evaluation at the points and interpolation: ``conv = V^-1 diag(E_r g) E_m``, so the correlation
    ``y_i = sum_k g_k d_(i+k)`` is ``E_m^T diag(E_r g) V^-T d``.
    """
    points = POINTS.get((m, r))
    if points is None:
        raise ValueError(f"no Winograd points for F({m}, {r}); known: {sorted(POINTS)}")
    n = m + r - 1
    if len(points) != n - 1:
        raise ValueError(f"F({m}, {r}) needs {n - 1} finite points, got {len(points)}")
    inverse = _solve_inverse(_evaluation(points, n))
    a_t = [list(col) for col in zip(*_evaluation(points, m))]
    g = _evaluation(points, r)
    b_t = [list(col) for col in zip(*inverse)]
    as_tensor = lambda rows: torch.tensor([[float(v) for v in row] for row in rows], dtype=torch.float64)  # noqa: E731
    return as_tensor(a_t), as_tensor(g), as_tensor(b_t)


def transform_weight(weight: torch.Tensor, exact: bool = True) -> torch.Tensor:
    """``weight [C_out, C_in, r]`` -> ``G g`` laid out ``[n, C_in, C_out]`` for the point GEMMs.

    ``exact``: computed in float64 and rounded once (for a memoised weight); else one GEMM in the
    weight's dtype (relative error about 1e-7; 4 ms for 768 x 768 x 7 here, against 43 ms).
    """
    r = weight.shape[-1]
    _, g, _ = toom_cook(TILE[r], r)
    weight = weight.detach()
    if exact:
        return torch.einsum("pk,oik->pio", g, weight.double()).to(weight.dtype).contiguous()
    n, (c_out, c_in) = g.shape[0], weight.shape[:2]
    return torch.mm(g.to(weight.dtype), weight.permute(2, 1, 0).reshape(r, -1)).view(n, c_in, c_out)


def conv1d_time_major(x: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor | None, kernel_size: int,
                      padding_left: int, dilation: int) -> torch.Tensor:
    """Stride-1 convolution of a time-major ``x [B, C_in, T]`` with zero padding: output frame ``t``
    reads ``x[t - padding_left + k * dilation]`` for ``k < kernel_size`` (zeros outside).

    ``weight_t`` is :func:`transform_weight` of the weight. Returns ``[B, C_out, T]`` time-major.
    """
    batch, c_in, length = x.shape
    n, _, c_out = weight_t.shape
    r, d = kernel_size, dilation
    m = n - r + 1
    a_t, _, b_t = (t.to(x.dtype) for t in toom_cook(m, r))
    per_phase = -(-length // d)
    n_tiles = -(-per_phase // m)
    tile_block = max(1, BLOCK_ROWS // d)
    out = x.new_empty(batch, length, c_out)
    bias_rows = None if bias is None else bias.repeat(d)
    for b in range(batch):
        signal = x[b].t().contiguous()  # [T, C_in] (time-major: a view; as_strided below needs it dense)
        for j0 in range(0, n_tiles, tile_block):
            j1 = min(n_tiles, j0 + tile_block)
            tiles = j1 - j0
            lo = j0 * m * d - padding_left
            hi = (j1 * m + r - 1) * d - padding_left
            if lo >= 0 and hi <= length:
                source = signal[lo:hi]
            else:  # an edge block: a zero-padded copy of the rows it reads
                source = x.new_zeros(hi - lo, c_in)
                a, z = max(lo, 0), min(hi, length)
                if z > a:
                    source[a - lo : z - lo] = signal[a:z]
            # tile j of the block, point row k: source rows (j * m + k) * d ... + d, i.e. d * C_in values
            view = source.as_strided((n, tiles, d * c_in), (d * c_in, m * d * c_in, 1))
            u = torch.mm(b_t, view.reshape(n, -1)).view(n, tiles * d, c_in)
            products = torch.bmm(u, weight_t)  # [n, tiles * d, C_out]
            y = torch.mm(a_t, products.view(n, -1)).view(m, tiles, d * c_out).transpose(0, 1)
            t0, t1 = j0 * m * d, min(length, j1 * m * d)
            if t1 == j1 * m * d:
                dest = out[b, t0:t1].view(tiles, m, d * c_out)
                torch.add(y, bias_rows, out=dest) if bias_rows is not None else dest.copy_(y)
            else:  # the last tile runs past the end of the signal
                full = y + bias_rows if bias_rows is not None else y.contiguous()
                out[b, t0:t1] = full.reshape(-1, c_out)[: t1 - t0]
    return out.transpose(1, 2)
