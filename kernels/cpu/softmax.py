"""Numba CPU kernels for the softmax family: softmax, log_softmax, masked_softmax.

Every kernel works on a 2-D (R, n) array along its last axis (the engine moves the dim there).
`prange` runs over chunks of rows (inputs under PARALLEL_MIN elements run serially in the calling thread);
each row is a few fused, vectorized serial passes that stay in L1/L2:
  1. row max with `vmax` (llvm.maximum: NaN-propagating, vectorizes without fastmath's nnan),
  2. exp(x - max) with `exp_le0` (a leaner _math.vexp for arguments <= 0), summed in blocks of BLOCK
     lanes of the input dtype, the blocks added in float64,
  3. a scale (or shift) pass.
Rows are independent, so results do not depend on the thread count. An all -inf row (or a masked row of
valid length 0) gives zeros from softmax and -inf from log_softmax. Output dtype = input dtype.
"""
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from ._math import LN2_HI, LN2_LO, LOG2E, _bits_to_f32, _bits_to_f64
from ._parallel import PARALLEL_MIN

__all__ = ["softmax_fwd", "softmax_bwd", "log_softmax_fwd", "log_softmax_bwd",
           "masked_softmax_fwd", "masked_softmax_bwd"]

# reassoc lets the sum loops vectorize; no nnan/ninf: -inf masks and NaN propagation must survive.
FASTMATH = {"contract", "arcp", "reassoc", "afn", "nsz"}
BLOCK = 512          # elements summed in the input dtype's lanes before adding into a float64 total
ROW_CHUNK = 1 << 14  # elements (whole rows) per parallel chunk


@intrinsic
def vmax(typingctx, a, b):
    """max(a, b) for two floats of one type as llvm.maximum: NaN if either is NaN; a max-reduction loop
    written with it vectorizes (Python's max, a compare-and-select, does not without nnan)."""
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.maximum", [ty], ir.FunctionType(ty, [ty, ty]))
        return builder.call(fn, args)
    return a(a, b), codegen


def exp_le0(x):
    """exp(x) for x <= 0 (or NaN), vectorizable: vexp without the overflow branch, and for float32 the
    exponent built in int32 lanes (vexp converts to int64, which halves the vector width): about 1.6x
    faster than vexp here. Valid for x <= 88 (float32) / 709 (float64), which covers every use here:
    x - rowmax, log-probabilities, x - lse. exp(-inf) = 0, exp(NaN) = NaN, results below ~1e-38 (float32)
    or ~1e-308 (float64) flush to 0. Same range reduction and polynomials as _math.vexp."""
    return np.exp(x)


@overload(exp_le0, inline="always")
def _exp_le0_impl(x):
    if x == types.float32:
        def impl(x):
            xc = max(x, np.float32(-87.0))
            kf = np.floor(xc * np.float32(LOG2E) + np.float32(0.5))
            r = xc - kf * np.float32(LN2_HI) - kf * np.float32(LN2_LO)
            p = np.float32(1.0 / 720)
            p = p * r + np.float32(1.0 / 120)
            p = p * r + np.float32(1.0 / 24)
            p = p * r + np.float32(1.0 / 6)
            p = p * r + np.float32(0.5)
            p = p * r + np.float32(1.0)
            p = p * r + np.float32(1.0)
            y = p * _bits_to_f32((np.int64(np.int32(kf)) + 127) << 23)     # LLVM narrows this to int32
            y = np.float32(0.0) if x < np.float32(-87.0) else y             # a select: the loop vectorizes
            return x if x != x else y
        return impl
    if x == types.float64:
        def impl(x):
            xc = max(x, -708.0)
            kf = np.floor(xc * LOG2E + 0.5)
            r = xc - kf * LN2_HI - kf * LN2_LO
            p = 1.0 / 39916800
            p = p * r + 1.0 / 3628800
            p = p * r + 1.0 / 362880
            p = p * r + 1.0 / 40320
            p = p * r + 1.0 / 5040
            p = p * r + 1.0 / 720
            p = p * r + 1.0 / 120
            p = p * r + 1.0 / 24
            p = p * r + 1.0 / 6
            p = p * r + 0.5
            p = p * r + 1.0
            p = p * r + 1.0
            y = p * _bits_to_f64((np.int64(kf) + 1023) << 52)
            y = 0.0 if x < -708.0 else y
            return x if x != x else y
        return impl


@njit(cache=True, fastmath=FASTMATH, inline="always")
def row_max(xr, n):
    """max(xr[:n]) in xr's dtype (-inf for n == 0, NaN if any entry is NaN)."""
    m = xr.dtype.type(-np.inf)
    for i in range(n):
        m = vmax(m, xr[i])
    return m


@njit(cache=True, fastmath=FASTMATH, inline="always")
def row_exp_sum(xr, yr, n, m, write):
    """sum(exp(xr[:n] - m)) in float64 (blockwise); writes the exps into yr[:n] when `write`."""
    dt = xr.dtype.type
    s = 0.0
    for k in range((n + BLOCK - 1) // BLOCK):      # base = k * BLOCK: LLVM sees i >= 0, no wraparound code
        base = k * BLOCK
        e_sum = dt(0.0)
        if write:
            for j in range(min(BLOCK, n - base)):
                e = exp_le0(xr[base + j] - m)
                yr[base + j] = e
                e_sum += e
        else:
            for j in range(min(BLOCK, n - base)):
                e_sum += exp_le0(xr[base + j] - m)
        s += e_sum
    return s


@njit(cache=True, fastmath=FASTMATH, inline="always")
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


@njit(cache=True, fastmath={"contract"})
def _shift_row(xr, yr, n, m, shift):
    """yr = (xr - m) - shift, in that order: no reassoc, so m + shift is never rounded first."""
    for i in range(n):
        yr[i] = (xr[i] - m) - shift


@njit(cache=True, fastmath=FASTMATH)
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

@njit(cache=True, fastmath=FASTMATH)
def _softmax_fwd(x, y, lo, hi):
    """x, y (R, n): y[lo:hi] = softmax(x[lo:hi]) along rows."""
    for r in range(lo, hi):
        _softmax_row(x[r], y[r], x.shape[1])


@njit(cache=True, parallel=True)
def _softmax_fwd_par(x, y, step):
    for c in prange((x.shape[0] + step - 1) // step):
        _softmax_fwd(x, y, c * step, min(x.shape[0], (c + 1) * step))


@njit(cache=True, fastmath=FASTMATH)
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


@njit(cache=True, parallel=True)
def _softmax_bwd_par(dout, y, lens, dx, step):
    for c in prange((y.shape[0] + step - 1) // step):
        _softmax_bwd(dout, y, lens, dx, c * step, min(y.shape[0], (c + 1) * step))


@njit(cache=True, fastmath=FASTMATH)
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


@njit(cache=True, parallel=True)
def _log_softmax_fwd_par(x, y, step):
    for c in prange((x.shape[0] + step - 1) // step):
        _log_softmax_fwd(x, y, c * step, min(x.shape[0], (c + 1) * step))


@njit(cache=True, fastmath=FASTMATH)
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
            xr[i] = dr[i] - exp_le0(yr[i]) * g


@njit(cache=True, parallel=True)
def _log_softmax_bwd_par(dout, y, dx, step):
    for c in prange((y.shape[0] + step - 1) // step):
        _log_softmax_bwd(dout, y, dx, c * step, min(y.shape[0], (c + 1) * step))


@njit(cache=True, fastmath=FASTMATH)
def _masked_softmax_fwd(x, lens, y, lo, hi):
    """x, y (R, K), lens (R,) int64 in [0, K]: softmax over x[r, :lens[r]], zeros after, rows [lo, hi)."""
    for r in range(lo, hi):
        L = lens[r]
        _softmax_row(x[r], y[r], L)
        y[r, L:] = 0.0


@njit(cache=True, parallel=True)
def _masked_softmax_fwd_par(x, lens, y, step):
    for c in prange((x.shape[0] + step - 1) // step):
        _masked_softmax_fwd(x, lens, y, c * step, min(x.shape[0], (c + 1) * step))


def _launch(serial, parallel, shape, *args):
    """Run `serial(*args, 0, R)` for small inputs, else `parallel(*args, step)` with chunks of ~ROW_CHUNK
    elements. The split into rows never changes a result: each row is computed alone."""
    R, n = shape
    if R * n < PARALLEL_MIN or R < 2:
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
