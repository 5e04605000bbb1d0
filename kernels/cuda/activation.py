"""Elementwise activations and dropout on the GPU: one thread per element over the flattened array.
The same semantics as kernels/cpu/activation.py (relu propagates NaN; sigmoid from exp(-|x|), never
overflowing; gelu's two forms as the reference writes them, backward from the input x; dropout keeps where
the counter hash of (seed, element) clears p and scales by 1/(1-p), p = 1 drops everything, a dropped
element is 0 even where x is inf or NaN)."""
import math

from numba import cuda

from ..common import GELU_C, GELU_K, GELU_X2_MAX, dropout_scale, dropout_threshold
from ._dev import TPB_FLAT, blocks, contiguous, empty
from ._launch import kernel
from ._rng import keep

__all__ = ["relu_fwd", "relu_bwd", "sigmoid_fwd", "sigmoid_bwd", "tanh_fwd", "tanh_bwd", "gelu_fwd", "gelu_bwd",
           "dropout_fwd", "dropout_bwd"]

_RSQRT2 = 1.0 / math.sqrt(2.0)
_RSQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


@kernel
def _relu_fwd(x, y):
    i = cuda.grid(1)
    if i < x.shape[0]:
        y[i] = 0 if x[i] < 0 else x[i]          # NaN passes through, as in PyTorch


@kernel
def _relu_bwd(dout, y, dx):
    i = cuda.grid(1)
    if i < y.shape[0]:
        dx[i] = 0 if y[i] <= 0 else dout[i]     # the gradient passes where y is NaN, as in PyTorch


@kernel
def _sigmoid_fwd(x, y):
    i = cuda.grid(1)
    if i < x.shape[0]:
        v = x[i]
        z = math.exp(-abs(v))
        s = 1 / (1 + z)
        y[i] = s if v >= 0 else z * s


@kernel
def _sigmoid_bwd(dout, y, dx):
    i = cuda.grid(1)
    if i < y.shape[0]:
        dx[i] = dout[i] * y[i] * (1 - y[i])


@kernel
def _tanh_fwd(x, y):
    i = cuda.grid(1)
    if i < x.shape[0]:
        y[i] = math.tanh(x[i])


@kernel
def _tanh_bwd(dout, y, dx):
    i = cuda.grid(1)
    if i < y.shape[0]:
        dx[i] = dout[i] * (1 - y[i] * y[i])


@kernel
def _gelu_fwd(x, y):
    i = cuda.grid(1)
    if i < x.shape[0]:
        v = x[i]
        y[i] = 0.5 * v * math.erfc(v * -_RSQRT2)


@kernel
def _gelu_bwd(dout, x, dx):
    i = cuda.grid(1)
    if i < x.shape[0]:
        v = x[i]
        dx[i] = dout[i] * (0.5 * math.erfc(v * -_RSQRT2) + v * (_RSQRT2PI * math.exp(-0.5 * v * v)))


@cuda.jit(device=True)
def _sigma2u(v):
    """(e, s, sigma(2u)) for u = K (v + C v^3): e = exp(-2|u|), s = 1 / (1 + e)."""
    u = GELU_K * (v + GELU_C * v * v * v)
    e = math.exp(-2.0 * abs(u))
    s = 1.0 / (1.0 + e)
    return e, s, (s if u >= 0 else e * s)


@kernel
def _gelu_tanh_fwd(x, y):
    i = cuda.grid(1)
    if i < x.shape[0]:
        v = x[i]
        y[i] = v * _sigma2u(v)[2]


@kernel
def _gelu_tanh_bwd(dout, x, dx):
    i = cuda.grid(1)
    if i < x.shape[0]:
        v = x[i]
        e, s, sig = _sigma2u(v)
        du2 = 2.0 * GELU_K * (1.0 + 3.0 * GELU_C * min(v * v, GELU_X2_MAX))
        dx[i] = dout[i] * (sig + v * e * s * s * du2)      # v * e first: 0 for a huge finite v


@kernel
def _dropout_fwd(x, seed, thr, scale, y, mask):
    i = cuda.grid(1)
    if i < x.shape[0]:
        k = keep(seed, i, 0, thr)
        mask[i] = k
        y[i] = x[i] * scale if k else 0


@kernel
def _dropout_bwd(dout, mask, scale, dx):
    i = cuda.grid(1)
    if i < dout.shape[0]:
        dx[i] = dout[i] * scale if mask[i] else 0


def _unary(kernel, x):
    x = contiguous(x)
    y = empty(x.shape, x.dtype, x)
    if x.size:
        kernel[blocks(x.size), TPB_FLAT](x.reshape(-1), y.reshape(-1))
    return y


def _binary(kernel, dout, y):
    y = contiguous(y)
    dout = contiguous(dout, y.dtype)
    dx = empty(y.shape, y.dtype, y)
    if y.size:
        kernel[blocks(y.size), TPB_FLAT](dout.reshape(-1), y.reshape(-1), dx.reshape(-1))
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


def gelu_fwd(x, approximate="none"):
    return _unary(_gelu_tanh_fwd if approximate == "tanh" else _gelu_fwd, x)


def gelu_bwd(dout, x, approximate="none"):
    """dout, the forward's input x -> dx."""
    return _binary(_gelu_tanh_bwd if approximate == "tanh" else _gelu_bwd, dout, x)


def _scale(p, dtype):
    return dtype.type(dropout_scale(p))


def dropout_fwd(x, seed, p):
    """x on the device, an integer seed, p -> (y, mask bool): the reference's counter-hash mask, drawn on the
    device (nothing is copied there). Save mask for backward."""
    x = contiguous(x)
    y = empty(x.shape, x.dtype, x)
    mask = empty(x.shape, "bool", x)
    if x.size:
        _dropout_fwd[blocks(x.size), TPB_FLAT](x.reshape(-1), int(seed), dropout_threshold(p), _scale(p, x.dtype),
                                               y.reshape(-1), mask.reshape(-1))
    return y, mask


def dropout_bwd(dout, mask, p):
    dout = contiguous(dout)
    mask = contiguous(mask)
    dx = empty(dout.shape, dout.dtype, dout)
    if dout.size:
        _dropout_bwd[blocks(dout.size), TPB_FLAT](dout.reshape(-1), mask.reshape(-1),
                                                                _scale(p, dout.dtype), dx.reshape(-1))
    return dx
