"""Numba CPU kernels for the norm family: batch norm (train / eval) and layer norm, forward and backward.

Same names and signatures as kernels.reference.norm. Outputs (y, dx, dw, db) have the input's dtype; the
saved statistics `mean`, `rstd` (and `var`) are float64.

Numerics. Element-wise work runs in the input dtype (8 float32 lanes per AVX2 op); sums run in the input
dtype inside blocks of _BLK elements and in float64 across blocks. Statistics take two passes: the mean,
then sums of d = x - k with k = mean rounded to the dtype, so var = sum(d^2)/n - (sum(d)/n)^2 has no
cancellation (layer norm forward tries k = x[r, 0] first and keeps it only when it is within 2 std of
the mean). The rounding of k is not lost either: xhat = (x - k) * rstd - (mean - k) * rstd, where the
last term is a per-row/channel constant computed in float64.

Batch norm sees x as (N, C, L) (L = H*W; 1 for 2-D input) and has two schedules:
- per channel (C >= 8, L >= 16): prange over channels; a channel's passes run back to back, so the later
  passes read it from L2. Each iteration owns its outputs (mean[c], dw[c], ...).
- per task (few channels or small L, e.g. (N, C) input): prange over tasks (blocks of rows n, and of L when
  N is small); per-task partial sums (T, C) are added in task order afterwards.
Task splits depend on the shape only, never on the thread count: results are the same bits for any
number of threads. error_model="numpy": eps = 0 on a constant row or channel gives rstd = inf and NaN
outputs, as in PyTorch, never ZeroDivisionError.
"""
import math

import numpy as np
from numba import njit, prange

from ._config import FASTMATH_NORM, PARALLEL_MIN
from .norm_tasks import _affine, _sums

__all__ = ["batch_norm_fwd_train", "batch_norm_fwd_eval", "batch_norm_bwd_train", "batch_norm_bwd_eval",
           "layer_norm_fwd", "layer_norm_bwd"]

_BLK = 256                               # dtype-precision partial sums over at most this many elements
_LN_ROWS = 64                            # layer-norm backward: at most this many rows per dw/db partial
_LN_BLOCK = 4                            # layer-norm forward: rows per parallel task
_CHAN_MIN_C, _CHAN_MIN_L = 8, 16


# ---------------------------------------------------------------------------------------------------
# blockwise sums over contiguous 1-D segments (inlined into the kernels by LLVM)
# ---------------------------------------------------------------------------------------------------
# Inner loops run over 0-based ranges of slices: an index that might be negative (range(j0, j1)) makes
# Numba emit wraparound code that stops LLVM from vectorizing the loop.
@njit(cache=True, fastmath=FASTMATH_NORM, error_model="numpy")
def _sum1(a):
    """sum(a) as float64."""
    n = a.shape[0]
    s = 0.0
    for j0 in range(0, n, _BLK):
        blk = a[j0:min(n, j0 + _BLK)]
        acc = a.dtype.type(0)
        for j in range(blk.shape[0]):
            acc += blk[j]
        s += acc
    return s


@njit(cache=True, fastmath=FASTMATH_NORM, error_model="numpy")
def _sum_dev(a, k):
    """(sum(a - k), sum((a - k)^2)) as float64; k has a's dtype."""
    n = a.shape[0]
    s1 = 0.0
    s2 = 0.0
    for j0 in range(0, n, _BLK):
        blk = a[j0:min(n, j0 + _BLK)]
        acc1 = a.dtype.type(0)
        acc2 = a.dtype.type(0)
        for j in range(blk.shape[0]):
            d = blk[j] - k
            acc1 += d
            acc2 += d * d
        s1 += acc1
        s2 += acc2
    return s1, s2


@njit(cache=True, fastmath=FASTMATH_NORM, error_model="numpy")
def _sum_gx(g, a, k):
    """(sum(g), sum(g * (a - k))) as float64 (batch norm)."""
    n = a.shape[0]
    s1 = 0.0
    s2 = 0.0
    for j0 in range(0, n, _BLK):
        gb = g[j0:min(n, j0 + _BLK)]
        ab = a[j0:min(n, j0 + _BLK)]
        acc1 = a.dtype.type(0)
        acc2 = a.dtype.type(0)
        for j in range(ab.shape[0]):
            acc1 += gb[j]
            acc2 += gb[j] * (ab[j] - k)
        s1 += acc1
        s2 += acc2
    return s1, s2


@njit(cache=True, fastmath=FASTMATH_NORM, error_model="numpy")
def _sum_gwx(g, w, a, k):
    """(sum(g * w), sum(g * w * (a - k))) as float64 (layer norm)."""
    n = a.shape[0]
    s1 = 0.0
    s2 = 0.0
    for j0 in range(0, n, _BLK):
        gb = g[j0:min(n, j0 + _BLK)]
        wb = w[j0:min(n, j0 + _BLK)]
        ab = a[j0:min(n, j0 + _BLK)]
        acc1 = a.dtype.type(0)
        acc2 = a.dtype.type(0)
        for j in range(ab.shape[0]):
            gw = gb[j] * wb[j]
            acc1 += gw
            acc2 += gw * (ab[j] - k)
        s1 += acc1
        s2 += acc2
    return s1, s2


# ---------------------------------------------------------------------------------------------------
# batch norm, per-channel schedule
# ---------------------------------------------------------------------------------------------------
@njit(cache=True, parallel=True, fastmath=FASTMATH_NORM, error_model="numpy")
def _bn_fwd_chan(x, w, b, eps, train, y, mean, rstd, var):
    """x, y (N, C, L); w, b (C,) float64. train: writes mean, rstd, var (C,) float64 from the batch (mean pass,
    then deviation pass); eval: reads mean, rstd. Then y = (x - mean) * rstd * w + b.
    prange over channels c; needs N*L >= 1."""
    N, C, L = x.shape
    for c in prange(C):
        if train:
            s = 0.0
            for n in range(N):
                s += _sum1(x[n, c])
            k = x.dtype.type(s / (N * L))
            s1 = 0.0
            s2 = 0.0
            for n in range(N):
                a1, a2 = _sum_dev(x[n, c], k)
                s1 += a1
                s2 += a2
            m1 = s1 / (N * L)
            v = max(s2 / (N * L) - m1 * m1, 0.0)
            mean[c] = np.float64(k) + m1
            var[c] = v
            rstd[c] = 1.0 / np.sqrt(v + eps)
        mu = mean[c]
        k = x.dtype.type(mu)
        a64 = rstd[c] * w[c]
        a = x.dtype.type(a64)
        dk = mu - np.float64(k)                 # k's rounding; 0 must not meet rstd = inf (eps = 0, var = 0)
        cc = x.dtype.type(b[c] - (dk * a64 if dk != 0 else 0.0))
        for n in range(N):
            for l in range(L):
                y[n, c, l] = (x[n, c, l] - k) * a + cc


@njit(cache=True, parallel=True, fastmath=FASTMATH_NORM, error_model="numpy")
def _bn_bwd_chan(dout, x, w, mean, rstd, train, dx, dw, db):
    """dout, x, dx (N, C, L); w, mean, rstd (C,) float64; writes dw, db (C,) float64.
    Pass 1: db = sum(dout), dw = sum(dout * xhat); pass 2: dx (train: minus the batch-mean terms).
    prange over channels c."""
    N, C, L = x.shape
    inv_n = 1.0 / (N * L)
    for c in prange(C):
        mu = mean[c]
        rs = rstd[c]
        k = x.dtype.type(mu)
        dm = mu - np.float64(k)
        sg = 0.0
        sgx = 0.0
        for n in range(N):
            a1, a2 = _sum_gx(dout[n, c], x[n, c], k)
            sg += a1
            sgx += a2
        sgx = (sgx - dm * sg) * rs
        db[c] = sg
        dw[c] = sgx
        a64 = w[c] * rs
        a = x.dtype.type(a64)
        if train:
            beta64 = -a64 * rs * sgx * inv_n           # dx = a*g + (x - mu)*beta + gamma
            beta = x.dtype.type(beta64)
            gamma = x.dtype.type(-a64 * sg * inv_n - dm * beta64)
            for n in range(N):
                for l in range(L):
                    dx[n, c, l] = dout[n, c, l] * a + (x[n, c, l] - k) * beta + gamma
        else:
            for n in range(N):
                for l in range(L):
                    dx[n, c, l] = dout[n, c, l] * a


# ---------------------------------------------------------------------------------------------------
# batch norm launchers
# ---------------------------------------------------------------------------------------------------
def _bn_view(x, dtype=None):
    x = np.ascontiguousarray(x, dtype=dtype)
    return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))      # N may be 0


def _vec(v, n, fill, dtype=np.dtype(np.float64)):
    if type(v) is np.ndarray and v.dtype is dtype and v.shape == (n,) and v.strides == (v.itemsize,):
        return v                                # the common case: as given (no conversion call)
    return np.full(n, fill, dtype) if v is None else np.ascontiguousarray(v, dtype=dtype).reshape(n)


def _use_chan(N, C, L):
    return C >= _CHAN_MIN_C and L >= _CHAN_MIN_L and N >= 1


def _affine_fwd(x3, mean, rstd, w, b, y):
    k = mean.astype(x3.dtype).astype(np.float64)
    a = rstd * w
    dk = mean - k                                   # k's rounding; 0 must not meet rstd = inf (eps = 0, var = 0)
    with np.errstate(invalid="ignore"):
        _affine(x3, x3, k, a, k, np.zeros_like(a), b - np.where(dk != 0, dk * a, 0.0), y, two=False)


def batch_norm_fwd_train(x, weight, bias, eps):
    """Training forward. x (N, C, *), weight/bias (C,) or None -> (y like x, mean, rstd, var (C,) float64);
    var is the biased batch variance (the engine derives the unbiased one for running stats)."""
    x3 = _bn_view(x)
    N, C, L = x3.shape
    w, b = _vec(weight, C, 1.0), _vec(bias, C, 0.0)
    y = np.empty_like(x3)
    mean, rstd, var = np.empty(C), np.empty(C), np.empty(C)
    if _use_chan(N, C, L):
        _bn_fwd_chan(x3, w, b, float(eps), True, y, mean, rstd, var)
    else:
        k = x3[0, :, 0].astype(np.float64) if N * L else np.zeros(C)
        s1, s2 = _sums(x3, x3, k, k)
        cnt = max(N * L, 1)
        m1 = s1 / cnt
        var[:] = np.maximum(s2 / cnt - m1 * m1, 0.0)
        mean[:] = k + m1
        rstd[:] = 1.0 / np.sqrt(var + eps)
        _affine_fwd(x3, mean, rstd, w, b, y)
    return y.reshape(np.shape(x)), mean, rstd, var


def batch_norm_fwd_eval(x, running_mean, running_var, weight, bias, eps):
    """Eval forward. x (N, C, *), running stats (C,) -> (y like x, mean = running_mean, rstd (C,) float64)."""
    x3 = _bn_view(x)
    N, C, L = x3.shape
    w, b = _vec(weight, C, 1.0), _vec(bias, C, 0.0)
    mean = _vec(running_mean, C, 0.0).copy()
    rstd = 1.0 / np.sqrt(_vec(running_var, C, 1.0) + eps)
    y = np.empty_like(x3)
    if _use_chan(N, C, L):
        _bn_fwd_chan(x3, w, b, float(eps), False, y, mean, rstd, np.empty(C))
    else:
        _affine_fwd(x3, mean, rstd, w, b, y)
    return y.reshape(np.shape(x)), mean, rstd


def _bn_bwd(dout, x, weight, mean, rstd, train):
    x3 = _bn_view(x)
    g3 = _bn_view(dout, x3.dtype)
    N, C, L = x3.shape
    w, mean, rstd = _vec(weight, C, 1.0), _vec(mean, C, 0.0), _vec(rstd, C, 1.0)
    dx = np.empty_like(x3)
    dw, db = np.empty(C), np.empty(C)
    if _use_chan(N, C, L):
        _bn_bwd_chan(g3, x3, w, mean, rstd, train, dx, dw, db)
    else:
        db[:], sgx = _sums(g3, x3, np.zeros(C), mean)
        dw[:] = sgx * rstd
        a = w * rstd
        k = mean.astype(x3.dtype).astype(np.float64)
        if train:
            cnt = max(N * L, 1)
            beta = -a * rstd * dw / cnt
            gamma = -a * db / cnt - (mean - k) * beta
        else:
            beta, gamma = np.zeros(C), np.zeros(C)
        _affine(g3, x3, np.zeros(C), a, k, beta, gamma, dx, two=train)
    return dx.reshape(np.shape(x)), dw.astype(x3.dtype), db.astype(x3.dtype)


def batch_norm_bwd_train(dout, x, weight, mean, rstd):
    """Training backward. dout, x (N, C, *); mean, rstd saved by the forward -> (dx like x, dw (C,), db (C,))."""
    return _bn_bwd(dout, x, weight, mean, rstd, True)


def batch_norm_bwd_eval(dout, x, weight, mean, rstd):
    """Eval backward: dx = dout * weight * rstd; dw, db as in training -> (dx like x, dw (C,), db (C,))."""
    return _bn_bwd(dout, x, weight, mean, rstd, False)


# ---------------------------------------------------------------------------------------------------
# layer norm
# ---------------------------------------------------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH_NORM, error_model="numpy")
def _ln_fwd(x, w, b, eps, y, mean, rstd, lo, hi):
    """x, y (R, D); w, b (D,) of x's dtype; writes mean, rstd (R,) float64, for rows lo..hi. Per row (it sits
    in L1): deviation sums around k = x[r, 0]; if k lies more than 2 std from the mean (m1^2 > 4 var, where
    the cancellation in var = s2/D - m1^2 would cost more than a factor 5 of precision) they are redone
    around k = mean, i.e. the two-pass scheme. Then y."""
    D = x.shape[1]
    for r in range(lo, hi):
        xr = x[r]
        k = xr[0]
        s1, s2 = _sum_dev(xr, k)
        m1 = s1 / D
        v = s2 / D - m1 * m1
        if m1 * m1 > 4.0 * v:
            k = x.dtype.type(np.float64(k) + m1)
            s1, s2 = _sum_dev(xr, k)
            m1 = s1 / D
            v = s2 / D - m1 * m1
        rs = 1.0 / np.sqrt(max(v, 0.0) + eps)
        mu = np.float64(k) + m1
        mean[r] = mu
        rstd[r] = rs
        k = x.dtype.type(mu)
        rst = x.dtype.type(rs)
        e = x.dtype.type((mu - np.float64(k)) * rs)
        yr = y[r]
        for j in range(D):
            yr[j] = ((xr[j] - k) * rst - e) * w[j] + b[j]


@njit(cache=True, parallel=True, error_model="numpy")
def _ln_fwd_par(x, w, b, eps, y, mean, rstd):
    """_ln_fwd over all rows, prange over blocks of _LN_BLOCK rows."""
    R = x.shape[0]
    for c in prange((R + _LN_BLOCK - 1) // _LN_BLOCK):
        _ln_fwd(x, w, b, eps, y, mean, rstd, c * _LN_BLOCK, min(R, (c + 1) * _LN_BLOCK))


@njit(cache=True, fastmath=FASTMATH_NORM, error_model="numpy")
def _ln_bwd(dout, x, w, mean, rstd, nb, dx, pdw, pdb, t0, t1):
    """dout, x, dx (R, D); w (D,) of x's dtype; mean, rstd (R,) float64. Task t in t0..t1 (rows [t*nb,
    t*nb+nb)) writes dx for its rows and accumulates pdw[t] += dout * xhat, pdb[t] += dout (pdw, pdb (T, D) of
    x's dtype, zeroed); each task owns its partial row."""
    R, D = x.shape
    for t in range(t0, t1):
        qw = pdw[t]
        qb = pdb[t]
        for r in range(t * nb, min(R, t * nb + nb)):
            xr = x[r]
            gr = dout[r]
            mu = mean[r]
            rs = rstd[r]
            k = x.dtype.type(mu)
            dm = mu - np.float64(k)
            s1, s2 = _sum_gwx(gr, w, xr, k)
            m1 = s1 / D
            m2 = (s2 - dm * s1) * rs / D
            rst = x.dtype.type(rs)
            e = x.dtype.type(dm * rs)
            c1 = x.dtype.type(rs * m1)
            c2 = x.dtype.type(rs * m2)
            dxr = dx[r]
            for j in range(D):
                g = gr[j]
                xh = (xr[j] - k) * rst - e
                dxr[j] = g * w[j] * rst - c1 - xh * c2
                qw[j] += g * xh
                qb[j] += g


@njit(cache=True, parallel=True, error_model="numpy")
def _ln_bwd_par(dout, x, w, mean, rstd, nb, dx, pdw, pdb):
    """_ln_bwd over all tasks, prange over them."""
    for t in prange(pdw.shape[0]):
        _ln_bwd(dout, x, w, mean, rstd, nb, dx, pdw, pdb, t, t + 1)


def layer_norm_fwd(x, weight, bias, eps):
    """x (rows, D), weight/bias (D,) or None -> (y (rows, D), mean (rows,), rstd (rows,) float64)."""
    x = np.ascontiguousarray(x)
    R, D = x.shape
    y = np.empty_like(x)
    mean, rstd = np.empty(R), np.empty(R)
    w, b = _vec(weight, D, 1.0, x.dtype), _vec(bias, D, 0.0, x.dtype)
    if R * D < PARALLEL_MIN:           # waking the thread pool costs more than a small array's work
        _ln_fwd(x, w, b, float(eps), y, mean, rstd, 0, R)
    else:
        _ln_fwd_par(x, w, b, float(eps), y, mean, rstd)
    return y, mean, rstd


def layer_norm_bwd(dout, x, weight, mean, rstd):
    """dout, x (rows, D); mean, rstd (rows,) -> (dx (rows, D), dw (D,), db (D,))."""
    x = np.ascontiguousarray(x)
    dout = np.ascontiguousarray(dout, dtype=x.dtype)
    R, D = x.shape
    nb = max(1, min(_LN_ROWS, -(-R // 16)))       # >= 16 tasks when R allows, <= _LN_ROWS rows per partial
    T = max(1, -(-R // nb))
    dx = np.empty_like(x)
    pdw, pdb = np.zeros((T, D), x.dtype), np.zeros((T, D), x.dtype)
    args = (dout, x, _vec(weight, D, 1.0, x.dtype), _vec(mean, R, 0.0), _vec(rstd, R, 1.0), nb, dx, pdw, pdb)
    if x.size < PARALLEL_MIN:
        _ln_bwd(*args, 0, T)
    else:
        _ln_bwd_par(*args)
    return dx, pdw.sum(axis=0, dtype=np.float64).astype(x.dtype), pdb.sum(axis=0, dtype=np.float64).astype(x.dtype)
