"""Numba CPU kernels for the softmax family: softmax, log_softmax, masked_softmax.

Every kernel works on a 2-D (R, n) array along its last axis (the engine moves the dim there).
`prange` runs over chunks of rows (inputs under PARALLEL_MIN elements run serially in the calling thread);
each row is a few fused, vectorized serial passes that stay in L1/L2:
  1. row max with `vmax` (llvm.maximum: NaN-propagating, vectorizes without fastmath's nnan),
  2. exp(x - max) with `_math.vexp_neg` (vexp for arguments <= 0), summed in blocks of BLOCK
     lanes of the input dtype, the blocks added in float64,
  3. a scale (or shift) pass.
Rows are independent, so results do not depend on the thread count. An all -inf row (or a masked row of
valid length 0) gives zeros from softmax and -inf from log_softmax. Output dtype = input dtype.
"""
import numpy as np
from numba import njit, prange

from ._config import FASTMATH, FASTMATH_CONTRACT, PARALLEL_MIN, ROW_CHUNK
from ._math import vexp_neg, vmax

__all__ = ["softmax_fwd", "softmax_bwd", "log_softmax_fwd", "log_softmax_bwd",
           "masked_softmax_fwd", "masked_softmax_bwd"]

# FASTMATH (_config.py): reassoc lets the sum loops vectorize; no nnan/ninf: -inf masks and NaN propagation
# must survive.
BLOCK = 512          # elements summed in the input dtype's lanes before adding into a float64 total


@njit(cache=True, fastmath=FASTMATH, inline="always", error_model="numpy")
def row_max(xr, n):
    """max(xr[:n]) in xr's dtype (-inf for n == 0, NaN if any entry is NaN)."""
    m = xr.dtype.type(-np.inf)
    for i in range(n):
        m = vmax(m, xr[i])
    return m


@njit(cache=True, fastmath=FASTMATH, inline="always", error_model="numpy")
def row_exp_sum(xr, yr, n, m, write):
    """sum(exp(xr[:n] - m)) in float64 (blockwise); writes the exps into yr[:n] when `write`."""
    dt = xr.dtype.type
    s = 0.0
    for k in range((n + BLOCK - 1) // BLOCK):      # base = k * BLOCK: LLVM sees i >= 0, no wraparound code
        base = k * BLOCK
        e_sum = dt(0.0)
        if write:
            for j in range(min(BLOCK, n - base)):
                e = vexp_neg(xr[base + j] - m)
                yr[base + j] = e
                e_sum += e
        else:
            for j in range(min(BLOCK, n - base)):
                e_sum += vexp_neg(xr[base + j] - m)
        s += e_sum
    return s


@njit(cache=True, fastmath=FASTMATH, inline="always", error_model="numpy")
def row_dot(ar, br, n):
    """sum(ar[:n] * br[:n]) in float64 (blockwise)."""
    dt = ar.dtype.type
    s = 0.0
    for k in range((n + BLOCK - 1) // BLOCK):
        base = k * BLOCK
        p = dt(0.0)
        for j in range(min(BLOCK, n - base)):
            p += ar[base + j] * br[base + j]
        s += p
    return s


@njit(cache=True, fastmath=FASTMATH_CONTRACT, error_model="numpy")
def _shift_row(xr, yr, n, m, shift):
    """yr = (xr - m) - shift, in that order: no reassoc, so m + shift is never rounded first."""
    for i in range(n):
        yr[i] = (xr[i] - m) - shift


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _softmax_row(xr, yr, n):
    """yr[:n] = softmax(xr[:n]); an all -inf row gives zeros."""
    dt = xr.dtype.type
    m = row_max(xr, n)
    if m == -np.inf:
        m = dt(0.0)                                 # all -inf: every exp is 0, the sum is 0
    s = row_exp_sum(xr, yr, n, m, True)
    inv = dt(1.0 / s) if s != 0.0 else dt(0.0)
    for i in range(n):
        yr[i] = yr[i] * inv


# Each op: a serial kernel over rows [lo, hi) and a parallel driver (prange over chunks of `step` rows) that
# calls it; `_launch` runs small inputs serially in the calling thread (waking the pool costs more).

@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _softmax_fwd(x, y, lo, hi):
    """x, y (R, n): y[lo:hi] = softmax(x[lo:hi]) along rows."""
    for r in range(lo, hi):
        _softmax_row(x[r], y[r], x.shape[1])


@njit(cache=True, parallel=True, error_model="numpy")
def _softmax_fwd_par(x, y, step):
    for c in prange((x.shape[0] + step - 1) // step):
        _softmax_fwd(x, y, c * step, min(x.shape[0], (c + 1) * step))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _softmax_bwd(dout, y, lens, dx, lo, hi):
    """dx[r, :L] = y * (dout - sum(dout * y)) on rows [lo, hi), L = lens[r] (n when lens is empty);
    dx[r, L:] = 0."""
    n = y.shape[1]
    for r in range(lo, hi):
        L = lens[r] if lens.size else n
        yr, dr, xr = y[r], dout[r], dx[r]
        d = yr.dtype.type(row_dot(dr, yr, L))
        for i in range(L):
            xr[i] = yr[i] * (dr[i] - d)
        xr[L:] = 0.0


@njit(cache=True, parallel=True, error_model="numpy")
def _softmax_bwd_par(dout, y, lens, dx, step):
    for c in prange((y.shape[0] + step - 1) // step):
        _softmax_bwd(dout, y, lens, dx, c * step, min(y.shape[0], (c + 1) * step))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _log_softmax_fwd(x, y, lo, hi):
    """x, y (R, n): y = x - max - log(sum(exp(x - max))) on rows [lo, hi); an all -inf row gives -inf."""
    n = x.shape[1]
    for r in range(lo, hi):
        xr, yr = x[r], y[r]
        m = row_max(xr, n)
        if m == -np.inf:
            yr[:] = -np.inf
        else:
            s = row_exp_sum(xr, yr, n, m, False)
            _shift_row(xr, yr, n, m, xr.dtype.type(np.log(s)))


@njit(cache=True, parallel=True, error_model="numpy")
def _log_softmax_fwd_par(x, y, step):
    for c in prange((x.shape[0] + step - 1) // step):
        _log_softmax_fwd(x, y, c * step, min(x.shape[0], (c + 1) * step))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _log_softmax_bwd(dout, y, dx, lo, hi):
    """dx = dout - exp(y) * sum(dout) on rows [lo, hi)."""
    n = y.shape[1]
    for r in range(lo, hi):
        yr, dr, xr = y[r], dout[r], dx[r]
        dt = yr.dtype.type
        s = 0.0
        for k in range((n + BLOCK - 1) // BLOCK):
            base = k * BLOCK
            p = dt(0.0)
            for j in range(min(BLOCK, n - base)):
                p += dr[base + j]
            s += p
        g = dt(s)
        for i in range(n):
            xr[i] = dr[i] - vexp_neg(yr[i]) * g


@njit(cache=True, parallel=True, error_model="numpy")
def _log_softmax_bwd_par(dout, y, dx, step):
    for c in prange((y.shape[0] + step - 1) // step):
        _log_softmax_bwd(dout, y, dx, c * step, min(y.shape[0], (c + 1) * step))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _masked_softmax_fwd(x, lens, y, lo, hi):
    """x, y (R, K), lens (R,) int64 in [0, K]: softmax over x[r, :lens[r]], zeros after, rows [lo, hi)."""
    for r in range(lo, hi):
        L = lens[r]
        _softmax_row(x[r], y[r], L)
        y[r, L:] = 0.0


@njit(cache=True, parallel=True, error_model="numpy")
def _masked_softmax_fwd_par(x, lens, y, step):
    for c in prange((x.shape[0] + step - 1) // step):
        _masked_softmax_fwd(x, lens, y, c * step, min(x.shape[0], (c + 1) * step))


def _launch(serial, parallel, shape, *args):
    """Run `serial(*args, 0, R)` for small inputs, else `parallel(*args, step)` with chunks of ~ROW_CHUNK
    elements. The split into rows never changes a result: each row is computed alone."""
    R, n = shape
    if R < 2 or R * n < PARALLEL_MIN:
        serial(*args, 0, R)
    else:
        parallel(*args, max(1, ROW_CHUNK // max(n, 1)))


_NO_LENS = np.zeros(0, np.int64)


def softmax_fwd(x):
    """x (R, n) float32/float64 -> y (R, n), softmax along rows. Save y for backward."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _launch(_softmax_fwd, _softmax_fwd_par, x.shape, x, y)
    return y


def softmax_bwd(dout, y):
    """dout, y (R, n) -> dx = y * (dout - sum(dout * y)) per row."""
    dout, y = np.ascontiguousarray(dout, dtype=y.dtype), np.ascontiguousarray(y)
    dx = np.empty_like(y)
    _launch(_softmax_bwd, _softmax_bwd_par, y.shape, dout, y, _NO_LENS, dx)
    return dx


def log_softmax_fwd(x):
    """x (R, n) -> y (R, n) = log_softmax along rows. Save y for backward."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _launch(_log_softmax_fwd, _log_softmax_fwd_par, x.shape, x, y)
    return y


def log_softmax_bwd(dout, y):
    """dout, y (R, n) -> dx = dout - exp(y) * sum(dout) per row."""
    dout, y = np.ascontiguousarray(dout, dtype=y.dtype), np.ascontiguousarray(y)
    dx = np.empty_like(y)
    _launch(_log_softmax_bwd, _log_softmax_bwd_par, y.shape, dout, y, dx)
    return dx


def masked_softmax_fwd(x, valid_lens):
    """x (R, K), valid_lens (R,) ints in [0, K] -> y (R, K). Save y (and valid_lens) for backward."""
    x = np.ascontiguousarray(x)
    lens = np.ascontiguousarray(valid_lens, dtype=np.int64)
    y = np.empty_like(x)
    _launch(_masked_softmax_fwd, _masked_softmax_fwd_par, x.shape, x, lens, y)
    return y


def masked_softmax_bwd(dout, y, valid_lens):
    """dout, y (R, K), valid_lens (R,) -> dx: softmax backward on the valid keys, exactly 0 on masked ones."""
    dout, y = np.ascontiguousarray(dout, dtype=y.dtype), np.ascontiguousarray(y)
    lens = np.ascontiguousarray(valid_lens, dtype=np.int64)
    dx = np.empty_like(y)
    _launch(_softmax_bwd, _softmax_bwd_par, y.shape, dout, y, lens, dx)    # R == 0: lens is empty, no rows
    return dx
