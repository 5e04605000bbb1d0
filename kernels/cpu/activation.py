"""Numba CPU kernels: relu, sigmoid, tanh, dropout. Elementwise over the flat array.

Same names and signatures as kernels.reference.activation. Inputs of any shape (0-d included); outputs have
the input's shape and dtype. Backward kernels take the forward's output y (or the dropout mask).
relu propagates NaN (relu(NaN) = NaN, and its gradient passes there, as PyTorch's does); a dropped element
is exactly 0 even where x is inf or NaN.
Each op is a serial `_<op>(…, lo, hi)` over a range and `_<op>_par(…)` runs it over prange'd chunks;
`run_chunked` picks the parallel one for large arrays and the serial one for small arrays (waking the
thread pool costs more than a small array's work, and far more on a busy machine). The serial loops run
0-based over slices, load every operand before a choice and choose with a typed zero: LLVM then emits
selects and vectorizes (an index from `lo` brings Numba's wraparound code, and a load inside one arm of
the choice makes it a branch: relu's backward written so ran 10x slower on random signs).
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
    xs, ys = x[lo:hi], y[lo:hi]
    z = y.dtype.type(0)
    for i in range(ys.size):
        v = xs[i]
        ys[i] = z if v < 0 else v               # NaN (and -0.0) pass through, as in PyTorch


@njit(parallel=True, cache=True)
def _relu_fwd_par(x, y):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _relu_fwd(x, y, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FAST)
def _relu_bwd(dout, y, dx, lo, hi):
    ds, ys, xs = dout[lo:hi], y[lo:hi], dx[lo:hi]
    z = dx.dtype.type(0)
    for i in range(xs.size):
        g = ds[i]                               # loaded unconditionally: a select, not a branch
        xs[i] = z if ys[i] <= 0 else g          # the gradient passes where y is NaN, as in PyTorch


@njit(parallel=True, cache=True)
def _relu_bwd_par(dout, y, dx):
    n = dout.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _relu_bwd(dout, y, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FAST)
def _sigmoid_fwd(x, y, lo, hi):
    one = x.dtype.type(1.0)
    xs, ys = x[lo:hi], y[lo:hi]
    for i in range(ys.size):
        v = xs[i]
        z = vexp(-abs(v))                     # in (0, 1]: never overflows
        s = one / (one + z)
        ys[i] = s if v >= 0 else z * s


@njit(parallel=True, cache=True)
def _sigmoid_fwd_par(x, y):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _sigmoid_fwd(x, y, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FAST)
def _sigmoid_bwd(dout, y, dx, lo, hi):
    ds, ys, xs = dout[lo:hi], y[lo:hi], dx[lo:hi]
    one = y.dtype.type(1.0)
    for i in range(xs.size):
        xs[i] = ds[i] * ys[i] * (one - ys[i])


@njit(parallel=True, cache=True)
def _sigmoid_bwd_par(dout, y, dx):
    n = dout.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _sigmoid_bwd(dout, y, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True)
def _tanh_fwd(x, y, lo, hi):
    xs, ys = x[lo:hi], y[lo:hi]
    for i in range(ys.size):
        ys[i] = np.tanh(xs[i])                # libm: exact near 0, where exp-based forms cancel


@njit(parallel=True, cache=True)
def _tanh_fwd_par(x, y):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _tanh_fwd(x, y, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FAST)
def _tanh_bwd(dout, y, dx, lo, hi):
    ds, ys, xs = dout[lo:hi], y[lo:hi], dx[lo:hi]
    one = y.dtype.type(1.0)
    for i in range(xs.size):
        xs[i] = ds[i] * (one - ys[i] * ys[i])


@njit(parallel=True, cache=True)
def _tanh_bwd_par(dout, y, dx):
    n = dout.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _tanh_bwd(dout, y, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FAST)
def _dropout_fwd(x, seed, thr, scale, y, mask, lo, hi):
    xs, ys, ms = x[lo:hi], y[lo:hi], mask[lo:hi]
    z = y.dtype.type(0)
    for i in range(ys.size):
        keep = keep_bits(row_key(seed, lo + i), 0) >= thr
        v = xs[i] * scale
        ms[i] = keep
        ys[i] = v if keep else z


@njit(parallel=True, cache=True)
def _dropout_fwd_par(x, seed, thr, scale, y, mask):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _dropout_fwd(x, seed, thr, scale, y, mask, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FAST)
def _dropout_bwd(dout, mask, scale, dx, lo, hi):
    ds, ms, xs = dout[lo:hi], mask[lo:hi], dx[lo:hi]
    z = dx.dtype.type(0)
    for i in range(xs.size):
        g = ds[i] * scale
        xs[i] = g if ms[i] else z


@njit(parallel=True, cache=True)
def _dropout_bwd_par(dout, mask, scale, dx):
    n = dout.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _dropout_bwd(dout, mask, scale, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


def _flat(a):
    return np.ascontiguousarray(a).reshape(-1)


def _unary(serial, parallel, x):
    y = np.empty(np.shape(x), dtype=x.dtype)          # x's shape: ascontiguousarray makes a 0-d array 1-D
    run_chunked(serial, parallel, y.size, _flat(x), y.reshape(-1))
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
    y = np.empty(np.shape(x), dtype=x.dtype)
    mask = np.empty(y.shape, dtype=np.bool_)
    run_chunked(_dropout_fwd, _dropout_fwd_par, y.size, _flat(x), np.uint64(seed), np.uint64(dropout_threshold(p)),
                _scale(p, y.dtype), y.reshape(-1), mask.reshape(-1))
    return y, mask


def dropout_bwd(dout, mask, p):
    dx = np.empty(np.shape(dout), dtype=dout.dtype)
    run_chunked(_dropout_bwd, _dropout_bwd_par, dx.size, _flat(dout), _flat(mask), _scale(p, dx.dtype), dx.reshape(-1))
    return dx
