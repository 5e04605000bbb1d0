"""Numba CPU kernels: relu, sigmoid, tanh, dropout. Elementwise over the flat array, prange over chunks.

Same names and signatures as kernels.reference.activation. Inputs of any shape; outputs have the
input's shape and dtype. Backward kernels take the forward's output y (or the dropout mask).
"""
import numpy as np
from numba import njit, prange

from ._math import vexp

__all__ = ["relu_fwd", "relu_bwd", "sigmoid_fwd", "sigmoid_bwd", "tanh_fwd", "tanh_bwd", "dropout_fwd", "dropout_bwd"]

FAST = {"contract", "arcp", "reassoc", "afn"}      # no nnan/ninf: NaN and inf stay honest
CHUNK = 1 << 14                                    # elements per prange iteration


@njit(parallel=True, cache=True, fastmath=FAST)
def _relu_fwd(x, y):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            y[i] = x[i] if x[i] > 0 else 0


@njit(parallel=True, cache=True, fastmath=FAST)
def _relu_bwd(dout, y, dx):
    n = y.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            dx[i] = dout[i] if y[i] > 0 else 0


@njit(parallel=True, cache=True, fastmath=FAST)
def _sigmoid_fwd(x, y):
    n = x.size
    one = x.dtype.type(1.0)
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            z = vexp(-abs(x[i]))                  # in (0, 1]: never overflows
            s = one / (one + z)
            y[i] = s if x[i] >= 0 else z * s


@njit(parallel=True, cache=True, fastmath=FAST)
def _sigmoid_bwd(dout, y, dx):
    n = y.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            dx[i] = dout[i] * y[i] * (1 - y[i])


@njit(parallel=True, cache=True)
def _tanh_fwd(x, y):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            y[i] = np.tanh(x[i])                  # libm: exact near 0, where exp-based forms cancel


@njit(parallel=True, cache=True, fastmath=FAST)
def _tanh_bwd(dout, y, dx):
    n = y.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            dx[i] = dout[i] * (1 - y[i] * y[i])


@njit(parallel=True, cache=True, fastmath=FAST)
def _dropout_fwd(x, u, p, scale, y, mask):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            keep = u[i] >= p
            mask[i] = keep
            y[i] = x[i] * scale if keep else 0


@njit(parallel=True, cache=True, fastmath=FAST)
def _dropout_bwd(dout, mask, scale, dx):
    n = dout.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            dx[i] = dout[i] * scale if mask[i] else 0


def _flat(a):
    return np.ascontiguousarray(a).reshape(-1)


def _unary(kernel, x):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    kernel(x.reshape(-1), y.reshape(-1))
    return y


def _binary(kernel, dout, y):
    dx = np.empty(y.shape, dtype=y.dtype)
    kernel(_flat(dout), _flat(y), dx.reshape(-1))
    return dx


def relu_fwd(x):
    return _unary(_relu_fwd, x)


def relu_bwd(dout, y):
    return _binary(_relu_bwd, dout, y)


def sigmoid_fwd(x):
    return _unary(_sigmoid_fwd, x)


def sigmoid_bwd(dout, y):
    return _binary(_sigmoid_bwd, dout, y)


def tanh_fwd(x):
    return _unary(_tanh_fwd, x)


def tanh_bwd(dout, y):
    return _binary(_tanh_bwd, dout, y)


def _scale(p, dtype):
    return dtype.type(0.0 if p >= 1.0 else 1.0 / (1.0 - p))


def dropout_fwd(x, u, p):
    """x and u (uniform draws in [0, 1), same shape) -> (y, mask). Saves mask (bool) for backward."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    mask = np.empty(x.shape, dtype=np.bool_)
    _dropout_fwd(x.reshape(-1), _flat(u).astype(x.dtype, copy=False), x.dtype.type(p), _scale(p, x.dtype),
                 y.reshape(-1), mask.reshape(-1))
    return y, mask


def dropout_bwd(dout, mask, p):
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    _dropout_bwd(dout.reshape(-1), _flat(mask), _scale(p, dout.dtype), dx.reshape(-1))
    return dx
