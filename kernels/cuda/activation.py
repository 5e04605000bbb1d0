"""Elementwise activations and dropout on the GPU: one thread per element over the flattened array.
The same semantics as kernels/cpu/activation.py (sigmoid from exp(-|x|), never overflowing; dropout keeps
where u >= p and scales by 1/(1-p), p = 1 drops everything)."""
import math

from numba import cuda

from ._dev import TPB_FLAT, blocks, contiguous, dev, empty, stream

__all__ = ["relu_fwd", "relu_bwd", "sigmoid_fwd", "sigmoid_bwd", "tanh_fwd", "tanh_bwd", "dropout_fwd", "dropout_bwd"]


@cuda.jit
def _relu_fwd(x, y):
    i = cuda.grid(1)
    if i < x.shape[0]:
        y[i] = x[i] if x[i] > 0 else 0


@cuda.jit
def _relu_bwd(dout, y, dx):
    i = cuda.grid(1)
    if i < y.shape[0]:
        dx[i] = dout[i] if y[i] > 0 else 0


@cuda.jit
def _sigmoid_fwd(x, y):
    i = cuda.grid(1)
    if i < x.shape[0]:
        v = x[i]
        z = math.exp(-abs(v))
        s = 1 / (1 + z)
        y[i] = s if v >= 0 else z * s


@cuda.jit
def _sigmoid_bwd(dout, y, dx):
    i = cuda.grid(1)
    if i < y.shape[0]:
        dx[i] = dout[i] * y[i] * (1 - y[i])


@cuda.jit
def _tanh_fwd(x, y):
    i = cuda.grid(1)
    if i < x.shape[0]:
        y[i] = math.tanh(x[i])


@cuda.jit
def _tanh_bwd(dout, y, dx):
    i = cuda.grid(1)
    if i < y.shape[0]:
        dx[i] = dout[i] * (1 - y[i] * y[i])


@cuda.jit
def _dropout_fwd(x, u, p, scale, y, mask):
    i = cuda.grid(1)
    if i < x.shape[0]:
        keep = u[i] >= p
        mask[i] = keep
        y[i] = x[i] * scale if keep else 0


@cuda.jit
def _dropout_bwd(dout, mask, scale, dx):
    i = cuda.grid(1)
    if i < dout.shape[0]:
        dx[i] = dout[i] * scale if mask[i] else 0


def _unary(kernel, x):
    x = contiguous(x)
    y = empty(x.shape, x.dtype, x)
    if x.size:
        kernel[blocks(x.size), TPB_FLAT, stream(x)](dev(x.reshape(-1)), dev(y.reshape(-1)))
    return y


def _binary(kernel, dout, y):
    y = contiguous(y)
    dout = contiguous(dout, y.dtype)
    dx = empty(y.shape, y.dtype, y)
    if y.size:
        kernel[blocks(y.size), TPB_FLAT, stream(y)](dev(dout.reshape(-1)), dev(y.reshape(-1)), dev(dx.reshape(-1)))
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
    """x and u (uniform draws in [0, 1), same shape, on the device) -> (y, mask bool). Save mask."""
    x = contiguous(x)
    u = contiguous(u, x.dtype)
    y = empty(x.shape, x.dtype, x)
    mask = empty(x.shape, "bool", x)
    if x.size:
        _dropout_fwd[blocks(x.size), TPB_FLAT, stream(x)](dev(x.reshape(-1)), dev(u.reshape(-1)), x.dtype.type(p),
                                                          _scale(p, x.dtype), dev(y.reshape(-1)), dev(mask.reshape(-1)))
    return y, mask


def dropout_bwd(dout, mask, p):
    dout = contiguous(dout)
    mask = contiguous(mask)
    dx = empty(dout.shape, dout.dtype, dout)
    if dout.size:
        _dropout_bwd[blocks(dout.size), TPB_FLAT, stream(dout)](dev(dout.reshape(-1)), dev(mask.reshape(-1)),
                                                                _scale(p, dout.dtype), dev(dx.reshape(-1)))
    return dx
