"""Numba CPU kernels for the losses: fused cross_entropy (log-sum-exp + loss, one pass back), mse_loss.

cross_entropy: logits (N, C), int targets (N,), `prange` over chunks of rows; per row a vectorized max
pass, then one exp-sum pass (vexp_neg, summed in blocks of the input dtype, blocks added in float64).
Forward saves the per-row log-sum-exp in two parts, lse[r] = (m, log s) (row max, log sum exp(x - m)),
never the probabilities; every difference is formed as (x - m) - log s, never x - (m + log s): the sum
loses log s once |m| passes ~1e16 (logits near 3e38 would give loss 0 and tied maxima twice their
gradient). Backward recomputes exp((x - m) - log s) and writes dx in one pass. Rows are independent:
results do not depend on the thread count.
mse_loss: flat arrays cut into fixed chunks; `prange` over chunks; per-chunk float64 partial sums are
added in chunk order, so the reduction too is the same for any thread count.
Each kernel is a serial loop over [lo, hi) plus a `_par` driver; inputs under PARALLEL_MIN elements run
serially in the calling thread (waking the thread pool costs more than their work).
"""
import numpy as np
from numba import njit, prange

from ._config import FASTMATH, FASTMATH_CONTRACT, PARALLEL_MIN, SUM_CHUNK
from ._math import vexp_neg
from .softmax import BLOCK, _launch, row_max

__all__ = ["cross_entropy_fwd", "cross_entropy_bwd", "mse_loss_fwd", "mse_loss_bwd"]


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _lse_and_dev(xr, C):
    """(max, sum(exp(x - max)), sum(max - x)) of one row (the last is for label smoothing: nearly free)."""
    dt = xr.dtype.type
    m = row_max(xr, C)
    s = 0.0
    dev = 0.0
    for k in range((C + BLOCK - 1) // BLOCK):
        base = k * BLOCK
        e_sum = dt(0.0)
        d_sum = dt(0.0)
        for j in range(min(BLOCK, C - base)):
            d = xr[base + j] - m
            e_sum += vexp_neg(d)
            d_sum -= d
        s += e_sum
        dev += d_sum
    return m, s, dev


@njit(cache=True, fastmath=FASTMATH_CONTRACT, error_model="numpy")     # no reassoc: (m - x[t]) + log s must not become (m + log s) - x[t]
def _cross_entropy_fwd(x, target, eps, ignore_index, loss, lse, lo, hi):
    """x (N, C), target (N,) int64 -> loss (N,), lse (N, 2) float64, on rows [lo, hi).

    loss = (1 - eps) * ((m - x[t]) + log s) + eps / C * (C * log s + sum(m - x)), with m the row max and
    s = sum(exp(x - m)); lse[r] = (m, log s). Ignored rows get loss 0 and lse (0, 0).
    """
    C = x.shape[1]
    for r in range(lo, hi):
        t = target[r]
        if t == ignore_index:
            loss[r] = 0.0
            lse[r, 0] = 0.0
            lse[r, 1] = 0.0
        else:
            m, s, dev = _lse_and_dev(x[r], C)
            log_s = np.log(s)
            m64 = np.float64(m)
            out = (1.0 - eps) * ((m64 - np.float64(x[r, t])) + log_s)
            if eps > 0.0:
                out += eps / C * (C * log_s + dev)
            loss[r] = out
            lse[r, 0] = m64
            lse[r, 1] = log_s


@njit(cache=True, parallel=True, error_model="numpy")
def _cross_entropy_fwd_par(x, target, eps, ignore_index, loss, lse, step):
    for c in prange((x.shape[0] + step - 1) // step):
        _cross_entropy_fwd(x, target, eps, ignore_index, loss, lse, c * step, min(x.shape[0], (c + 1) * step))


@njit(cache=True, fastmath=FASTMATH_CONTRACT, error_model="numpy")
def _cross_entropy_bwd(dloss, x, target, lse, eps, ignore_index, dx, lo, hi):
    """dloss (N,) float64, x (N, C), target (N,), lse (N, 2) float64 -> dx (N, C), on rows [lo, hi).

    dx = dloss * (exp((x - m) - log s) - eps / C - (1 - eps) * onehot(t)); ignored rows get 0. m is x's own
    value (exact in x's dtype) and (x - m) - log s is formed in that order (no reassoc here): x - m is exact
    where x is near m, so float32 keeps its accuracy for logits of 1e4 and past 1e16 alike.
    """
    C = x.shape[1]
    for r in range(lo, hi):
        t = target[r]
        dr = dx[r]
        if t == ignore_index:
            dr[:] = 0.0
            continue
        xr = x[r]
        dt = xr.dtype.type
        m = dt(lse[r, 0])
        log_s = dt(lse[r, 1])
        g = dt(dloss[r])
        off = dt(eps / C * dloss[r])
        for j in range(C):
            dr[j] = vexp_neg((xr[j] - m) - log_s) * g - off
        dr[t] -= dt((1.0 - eps) * dloss[r])


@njit(cache=True, parallel=True, error_model="numpy")
def _cross_entropy_bwd_par(dloss, x, target, lse, eps, ignore_index, dx, step):
    for c in prange((x.shape[0] + step - 1) // step):
        _cross_entropy_bwd(dloss, x, target, lse, eps, ignore_index, dx, c * step, min(x.shape[0], (c + 1) * step))


def cross_entropy_fwd(x, target, label_smoothing, ignore_index):
    """x (N, C) float32/float64, target (N,) ints in [0, C) or == ignore_index (validated by the engine)
    -> (loss (N,), lse (N, 2): row max and log sum exp(x - max)), both float64. Save lse for backward."""
    x = np.ascontiguousarray(x)
    target = np.ascontiguousarray(target, dtype=np.int64)
    loss = np.empty(x.shape[0], np.float64)
    lse = np.empty((x.shape[0], 2), np.float64)
    _launch(_cross_entropy_fwd, _cross_entropy_fwd_par, x.shape, x, target, float(label_smoothing),
            int(ignore_index), loss, lse)
    return loss, lse


def cross_entropy_bwd(dloss, x, target, lse, label_smoothing, ignore_index):
    """dloss (N,) (gradient of each row's loss), x (N, C), target (N,), lse (N, 2) -> dx (N, C), x's dtype."""
    x = np.ascontiguousarray(x)
    target = np.ascontiguousarray(target, dtype=np.int64)
    dloss = np.ascontiguousarray(dloss, dtype=np.float64)
    lse = np.ascontiguousarray(lse, dtype=np.float64).reshape(x.shape[0], 2)
    dx = np.empty_like(x)
    _launch(_cross_entropy_bwd, _cross_entropy_bwd_par, x.shape, dloss, x, target, lse, float(label_smoothing),
            int(ignore_index), dx)
    return dx


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _sq_diff(x, t, out, lo, hi):
    """out = (x - t)**2 on chunks [lo, hi) (chunk c covers elements [c * SUM_CHUNK, (c + 1) * SUM_CHUNK))."""
    n = x.size
    for c in range(lo, hi):
        base = c * SUM_CHUNK
        for j in range(min(SUM_CHUNK, n - base)):
            d = x[base + j] - t[base + j]
            out[base + j] = d * d


@njit(cache=True, parallel=True, error_model="numpy")
def _sq_diff_par(x, t, out):
    for c in prange((x.size + SUM_CHUNK - 1) // SUM_CHUNK):
        _sq_diff(x, t, out, c, c + 1)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _sq_diff_partials(x, t, partial, lo, hi):
    """partial[c] = sum over chunk c in [lo, hi) of (x - t)**2 in float64 (blocks of BLOCK in x's dtype)."""
    n = x.size
    dt = x.dtype.type
    for c in range(lo, hi):
        s = 0.0
        for k in range((min(SUM_CHUNK, n - c * SUM_CHUNK) + BLOCK - 1) // BLOCK):
            base = c * SUM_CHUNK + k * BLOCK
            p = dt(0.0)
            for j in range(min(BLOCK, n - base)):
                d = x[base + j] - t[base + j]
                p += d * d
            s += p
        partial[c] = s


@njit(cache=True, parallel=True, error_model="numpy")
def _sq_diff_partials_par(x, t, partial):
    for c in prange(partial.size):
        _sq_diff_partials(x, t, partial, c, c + 1)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _scaled_diff(g, x, t, dx, lo, hi):
    """dx = g * (x - t) on chunks [lo, hi); g has x's length or length 1 (a broadcast scalar)."""
    n = x.size
    for c in range(lo, hi):
        base = c * SUM_CHUNK
        if g.size == 1:
            s = g[0]
            for j in range(min(SUM_CHUNK, n - base)):
                dx[base + j] = s * (x[base + j] - t[base + j])
        else:
            for j in range(min(SUM_CHUNK, n - base)):
                dx[base + j] = g[base + j] * (x[base + j] - t[base + j])


@njit(cache=True, parallel=True, error_model="numpy")
def _scaled_diff_par(g, x, t, dx):
    for c in prange((x.size + SUM_CHUNK - 1) // SUM_CHUNK):
        _scaled_diff(g, x, t, dx, c, c + 1)


def _launch_flat(serial, parallel, n, *args):
    """Chunks [0, nchunks) serially for small inputs, else in parallel: the same chunks either way."""
    if n < PARALLEL_MIN:
        serial(*args, 0, (n + SUM_CHUNK - 1) // SUM_CHUNK)
    else:
        parallel(*args)


def mse_loss_fwd(x, target, reduction):
    """x, target of one shape, one float dtype -> (x - target)**2 ('none', x's shape) or its sum / mean
    ('sum' / 'mean', 0-d of x's dtype; the mean of nothing is NaN, as in PyTorch). Save x and target."""
    xf = np.ascontiguousarray(x).reshape(-1)
    tf = np.ascontiguousarray(target, dtype=xf.dtype).reshape(-1)
    if reduction == "none":
        out = np.empty_like(xf)
        _launch_flat(_sq_diff, _sq_diff_par, xf.size, xf, tf, out)
        return out.reshape(np.shape(x))
    partial = np.empty((xf.size + SUM_CHUNK - 1) // SUM_CHUNK, np.float64)
    _launch_flat(_sq_diff_partials, _sq_diff_partials_par, xf.size, xf, tf, partial)
    total = float(partial.sum())
    if reduction == "mean":
        total = total / xf.size if xf.size else float("nan")
    return np.asarray(total, dtype=xf.dtype)


def mse_loss_bwd(dout, x, target, reduction):
    """dout (x's shape for 'none', else 0-d) -> dx = 2 (x - target) dout [/ numel for 'mean'], x's dtype.
    The gradient for target is -dx."""
    xf = np.ascontiguousarray(x).reshape(-1)
    tf = np.ascontiguousarray(target, dtype=xf.dtype).reshape(-1)
    if reduction == "none":
        g = 2.0 * np.ascontiguousarray(dout, dtype=xf.dtype).reshape(-1)
    else:
        scale = 2.0 * float(np.asarray(dout)) / (max(xf.size, 1) if reduction == "mean" else 1)
        g = np.full(1, scale, dtype=xf.dtype)
    dx = np.empty_like(xf)
    _launch_flat(_scaled_diff, _scaled_diff_par, xf.size, g, xf, tf, dx)
    return dx.reshape(np.shape(x))
