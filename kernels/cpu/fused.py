"""Fused layers: conv2d + bias + activation and linear + bias + activation (relu, sigmoid or tanh).

Forward, the activation runs where the output is written: in the conv kernels' epilogue, row by row as each
task writes its rows (conv2d_fwd's `act`), and for linear in one pass over the GEMM's output that adds the
bias and applies the activation in place (where the unfused layer makes two passes and two arrays: y + b, then
act). The loops are the activations' own (act_inplace), so the output is bit for bit the unfused one's.
Backward, one pass makes dz = dout * act'(y) from the saved output y and, for linear, sums db from the same
rows (float64 partials, in an order fixed by the shape); then the layer's own backward runs on dz.
Activation codes: kernels.common.ACTIVATIONS.
"""
import math

import numpy as np
from numba import njit, prange

from ._config import PARALLEL_MIN, ROW_CHUNK
from .activation import act_bwd_inplace, act_inplace
from .conv import conv2d_bwd, conv2d_fwd
from .linear import _small, linear_bwd, linear_fwd

__all__ = ["conv2d_act_fwd", "conv2d_act_bwd", "linear_act_fwd", "linear_act_bwd"]


@njit(cache=True, error_model="numpy")
def _bias_act_rows(y, b, has_b, act, r0, r1):
    """y[r] = act(y[r] + b) in place for rows r0 <= r < r1 of y (R, n)."""
    n = y.shape[1]
    for r in range(r0, r1):
        row = y[r]
        if has_b:
            for j in range(n):
                row[j] += b[j]
        act_inplace(row, act)


@njit(cache=True, parallel=True, error_model="numpy")
def _bias_act_par(y, b, has_b, act, rows):
    R = y.shape[0]
    for c in prange((R + rows - 1) // rows):
        _bias_act_rows(y, b, has_b, act, c * rows, min(R, (c + 1) * rows))


@njit(cache=True, error_model="numpy")
def _act_db_rows(d, y, dz, act, need_db, part, r0, r1):
    """dz[r] = d[r] * act'(y[r]) for rows r0 <= r < r1, and part (n,) float64 = the sum of those dz rows."""
    part[:] = 0
    for r in range(r0, r1):
        act_bwd_inplace(d[r], y[r], dz[r], act)
        if need_db:
            zr = dz[r]
            for j in range(zr.size):
                part[j] += zr[j]


@njit(cache=True, parallel=True, error_model="numpy")
def _act_db_par(d, y, dz, act, need_db, parts, rows):
    R = y.shape[0]
    for c in prange(parts.shape[0]):
        _act_db_rows(d, y, dz, act, need_db, parts[c], c * rows, min(R, (c + 1) * rows))


def _row_block(R, n):
    """Rows per task: ~ROW_CHUNK elements, and all rows in one task below PARALLEL_MIN elements."""
    return max(R, 1) if R * n < PARALLEL_MIN else max(1, ROW_CHUNK // max(n, 1))


def _bias_act(y2, b, act):
    """y2 (R, n) C-contiguous, in place: act(y2 + b)."""
    R, n = y2.shape
    has_b = b is not None
    bb = np.ascontiguousarray(b, dtype=y2.dtype) if has_b else y2[:1].reshape(-1)
    rows = _row_block(R, n)
    if rows >= R:
        _bias_act_rows(y2, bb, has_b, act, 0, R)
    else:
        _bias_act_par(y2, bb, has_b, act, rows)


def _act_db(d2, y2, act, need_db):
    """dz (R, n) = d2 * act'(y2) and, if need_db, db (n,) = dz summed over rows (float64 partials per block
    of rows, added in block order: the same sum for any thread count)."""
    R, n = y2.shape
    dz = np.empty_like(y2)
    rows = _row_block(R, n)
    parts = np.empty((max(1, -(-R // rows)), n))
    if parts.shape[0] == 1:
        _act_db_rows(d2, y2, dz, act, need_db, parts[0], 0, R)
    else:
        _act_db_par(d2, y2, dz, act, need_db, parts, rows)
    return dz, (parts.sum(axis=0).astype(y2.dtype) if need_db else None)


def linear_act_fwd(x, w, b, act):
    """act(x @ w^T + b): x (..., in), w (out, in), b (out,) or None -> (..., out)."""
    if _small(x, w):                              # the one-call small kernel, then the activation in place
        y = linear_fwd(x, w, b)
        act_inplace(y.reshape(-1), act)
        return y
    y = linear_fwd(x, w, None)                    # the GEMM's fresh output: bias and activation in one pass
    _bias_act(y.reshape(math.prod(y.shape[:-1]), y.shape[-1]), b, act)
    return y


def linear_act_bwd(dout, y, x, w, act, need_dx=True, need_dw=True, need_db=True):
    """Gradients of linear_act_fwd from its output y: (dx, dw, db), each None when not needed."""
    shape2 = (math.prod(y.shape[:-1]), y.shape[-1])
    y2 = np.ascontiguousarray(y).reshape(shape2)
    d2 = np.ascontiguousarray(dout, dtype=y.dtype).reshape(shape2)
    dz, db = _act_db(d2, y2, act, need_db)
    dx, dw, _ = linear_bwd(dz.reshape(y.shape), x, w, need_dx, need_dw, False) if (need_dx or need_dw) \
        else (None, None, None)
    return dx, dw, db


def conv2d_act_fwd(x, w, b, stride, padding, dilation, groups, act):
    """act(conv2d(x, w) + b), the activation applied by the conv kernels as they write each row."""
    return conv2d_fwd(x, w, b, stride, padding, dilation, groups, act)


def conv2d_act_bwd(dout, y, x, w, stride, padding, dilation, groups, act, need_dx=True, need_dw=True,
                   need_db=True):
    """Gradients of conv2d_act_fwd from its output y: dz = dout * act'(y) in one pass, then conv2d_bwd."""
    N, K, Ho, Wo = y.shape
    y2 = np.ascontiguousarray(y).reshape(N * K, Ho * Wo)
    dz, _ = _act_db(np.ascontiguousarray(dout, dtype=y.dtype).reshape(y2.shape), y2, act, False)
    return conv2d_bwd(dz.reshape(y.shape), x, w, stride, padding, dilation, groups, need_dx, need_dw, need_db)
