"""Numba CPU kernels: relu, sigmoid, tanh, dropout. Elementwise over the flat array.

Same names and signatures as kernels.reference.activation. Inputs of any shape; outputs have the
input's shape and dtype. Backward kernels take the forward's output y (or the dropout mask).
Each op is a serial `_<op>(…, lo, hi)` over a range and `_<op>_par(…)` runs it over prange'd chunks;
`run_chunked` picks the parallel one for large arrays and the serial one for small arrays (waking the
thread pool costs more than a small array's work, and far more on a busy machine).
"""
import numpy as np
from numba import njit, prange

from ._math import vexp
from ..reference.attention import dropout_threshold
from .attention_tiles import keep_bits, row_key
from ._parallel import CHUNK, FAST, run_chunked

__all__ = ["relu_fwd", "relu_bwd", "sigmoid_fwd", "sigmoid_bwd", "tanh_fwd", "tanh_bwd", "dropout_fwd", "dropout_bwd"]


@njit(cache=True, fastmath=FAST)
def _relu_fwd(x, y, lo, hi):
    for i in range(lo, hi):
        y[i] = x[i] if x[i] > 0 else 0


@njit(parallel=True, cache=True)
def _relu_fwd_par(x, y):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _relu_fwd(x, y, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FAST)
def _relu_bwd(dout, y, dx, lo, hi):
    for i in range(lo, hi):
        dx[i] = dout[i] if y[i] > 0 else 0


@njit(parallel=True, cache=True)
def _relu_bwd_par(dout, y, dx):
    n = dout.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _relu_bwd(dout, y, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FAST)
def _sigmoid_fwd(x, y, lo, hi):
    one = x.dtype.type(1.0)
    for i in range(lo, hi):
        z = vexp(-abs(x[i]))                  # in (0, 1]: never overflows
        s = one / (one + z)
        y[i] = s if x[i] >= 0 else z * s


@njit(parallel=True, cache=True)
def _sigmoid_fwd_par(x, y):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _sigmoid_fwd(x, y, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FAST)
def _sigmoid_bwd(dout, y, dx, lo, hi):
    for i in range(lo, hi):
        dx[i] = dout[i] * y[i] * (1 - y[i])


@njit(parallel=True, cache=True)
def _sigmoid_bwd_par(dout, y, dx):
    n = dout.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _sigmoid_bwd(dout, y, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True)
def _tanh_fwd(x, y, lo, hi):
    for i in range(lo, hi):
        y[i] = np.tanh(x[i])                  # libm: exact near 0, where exp-based forms cancel


@njit(parallel=True, cache=True)
def _tanh_fwd_par(x, y):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _tanh_fwd(x, y, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FAST)
def _tanh_bwd(dout, y, dx, lo, hi):
    for i in range(lo, hi):
        dx[i] = dout[i] * (1 - y[i] * y[i])


@njit(parallel=True, cache=True)
def _tanh_bwd_par(dout, y, dx):
    n = dout.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _tanh_bwd(dout, y, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FAST)
def _dropout_fwd(x, seed, thr, scale, y, mask, lo, hi):
    for i in range(lo, hi):
        keep = keep_bits(row_key(seed, i), 0) >= thr
        mask[i] = keep
        y[i] = x[i] * scale if keep else 0


@njit(parallel=True, cache=True)
def _dropout_fwd_par(x, seed, thr, scale, y, mask):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _dropout_fwd(x, seed, thr, scale, y, mask, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FAST)
def _dropout_bwd(dout, mask, scale, dx, lo, hi):
    for i in range(lo, hi):
        dx[i] = dout[i] * scale if mask[i] else 0


@njit(parallel=True, cache=True)
def _dropout_bwd_par(dout, mask, scale, dx):
    n = dout.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _dropout_bwd(dout, mask, scale, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


def _flat(a):
    return np.ascontiguousarray(a).reshape(-1)


def _unary(serial, parallel, x):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    run_chunked(serial, parallel, x.size, x.reshape(-1), y.reshape(-1))
    return y


def _binary(serial, parallel, dout, y):
    dx = np.empty(y.shape, dtype=y.dtype)
    run_chunked(serial, parallel, y.size, _flat(dout), _flat(y), dx.reshape(-1))
    return dx


def relu_fwd(x):
    return _unary(_relu_fwd, _relu_fwd_par, x)


def relu_bwd(dout, y):
    return _binary(_relu_bwd, _relu_bwd_par, dout, y)


def sigmoid_fwd(x):
    return _unary(_sigmoid_fwd, _sigmoid_fwd_par, x)


def sigmoid_bwd(dout, y):
    return _binary(_sigmoid_bwd, _sigmoid_bwd_par, dout, y)


def tanh_fwd(x):
    return _unary(_tanh_fwd, _tanh_fwd_par, x)


def tanh_bwd(dout, y):
    return _binary(_tanh_bwd, _tanh_bwd_par, dout, y)


def _scale(p, dtype):
    return dtype.type(0.0 if p >= 1.0 else 1.0 / (1.0 - p))


def dropout_fwd(x, seed, p):
    """x, an integer seed, p -> (y, mask bool), the reference's counter-hash mask. Saves mask for backward."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    mask = np.empty(x.shape, dtype=np.bool_)
    run_chunked(_dropout_fwd, _dropout_fwd_par, x.size, x.reshape(-1), np.uint64(seed), np.uint64(dropout_threshold(p)),
                _scale(p, x.dtype), y.reshape(-1), mask.reshape(-1))
    return y, mask


def dropout_bwd(dout, mask, p):
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    run_chunked(_dropout_bwd, _dropout_bwd_par, dout.size, dout.reshape(-1), _flat(mask), _scale(p, dout.dtype), dx.reshape(-1))
    return dx
