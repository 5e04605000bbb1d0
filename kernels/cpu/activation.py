"""Numba CPU kernels: relu, sigmoid, tanh, gelu, dropout. Elementwise over the flat array.

Same names and signatures as kernels.reference.activation. Inputs of any shape (0-d included); outputs have
the input's shape and dtype. Backward kernels take the forward's output y (or the dropout mask).
relu propagates NaN (relu(NaN) = NaN, and its gradient passes there, as PyTorch's does); a dropped element
is exactly 0 even where x is inf or NaN. gelu's backward takes the forward's input x; its two forms
(approximate 'none' through erfc, 'tanh' through vexp) are written as in the reference, without cancellation.
The exact form calls libm's erfc, so its loops do not vectorize (a Chebyshev erfc made of arithmetic was
tried for float32 and measured no faster here).
Each op is a serial `_<op>(…, lo, hi)` over a range and `_<op>_par(…)` runs it over prange'd chunks;
`run_chunked` picks the parallel one for large arrays and the serial one for small arrays (waking the
thread pool costs more than a small array's work, and far more on a busy machine). The serial loops run
0-based over slices, load every operand before a choice and choose with a typed zero: LLVM then emits
selects and vectorizes (an index from `lo` brings Numba's wraparound code, and a load inside one arm of
the choice makes it a branch: relu's backward written so ran 10x slower on random signs).
"""
import math

import numpy as np
from numba import njit, prange

from ..common import GELU_C, GELU_K, GELU_X2_MAX, dropout_scale, dropout_threshold
from ._config import CHUNK, FASTMATH_ELEMENTWISE, PARALLEL_MIN, run_chunked
from ._math import vexp
from .attention_tiles import keep_bits, row_key

__all__ = ["relu_fwd", "relu_bwd", "sigmoid_fwd", "sigmoid_bwd", "tanh_fwd", "tanh_bwd", "gelu_fwd", "gelu_bwd",
           "dropout_fwd", "dropout_bwd"]

_RSQRT2 = 1.0 / math.sqrt(2.0)
_RSQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(inline="always", error_model="numpy")
def _relu1(v, z):
    return z if v < 0 else v                    # NaN (and -0.0) pass through, as in PyTorch


@njit(inline="always", error_model="numpy")
def _sigmoid1(v, one):
    z = vexp(-abs(v))                           # in (0, 1]: never overflows
    s = one / (one + z)
    return s if v >= 0 else z * s


@njit(cache=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")
def _relu_fwd(x, y, lo, hi):
    xs, ys = x[lo:hi], y[lo:hi]
    z = y.dtype.type(0)
    for i in range(ys.size):
        ys[i] = _relu1(xs[i], z)


@njit(parallel=True, cache=True, error_model="numpy")
def _relu_fwd_par(x, y):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _relu_fwd(x, y, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")
def _relu_bwd(dout, y, dx, lo, hi):
    ds, ys, xs = dout[lo:hi], y[lo:hi], dx[lo:hi]
    z = dx.dtype.type(0)
    for i in range(xs.size):
        g = ds[i]                               # loaded unconditionally: a select, not a branch
        xs[i] = z if ys[i] <= 0 else g          # the gradient passes where y is NaN, as in PyTorch


@njit(parallel=True, cache=True, error_model="numpy")
def _relu_bwd_par(dout, y, dx):
    n = dout.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _relu_bwd(dout, y, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")
def _sigmoid_fwd(x, y, lo, hi):
    one = x.dtype.type(1.0)
    xs, ys = x[lo:hi], y[lo:hi]
    for i in range(ys.size):
        ys[i] = _sigmoid1(xs[i], one)


@njit(parallel=True, cache=True, error_model="numpy")
def _sigmoid_fwd_par(x, y):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _sigmoid_fwd(x, y, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")
def _sigmoid_bwd(dout, y, dx, lo, hi):
    ds, ys, xs = dout[lo:hi], y[lo:hi], dx[lo:hi]
    one = y.dtype.type(1.0)
    for i in range(xs.size):
        xs[i] = ds[i] * ys[i] * (one - ys[i])


@njit(parallel=True, cache=True, error_model="numpy")
def _sigmoid_bwd_par(dout, y, dx):
    n = dout.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _sigmoid_bwd(dout, y, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, error_model="numpy")
def _tanh_fwd(x, y, lo, hi):
    xs, ys = x[lo:hi], y[lo:hi]
    for i in range(ys.size):
        ys[i] = np.tanh(xs[i])                # libm: exact near 0, where exp-based forms cancel


@njit(parallel=True, cache=True, error_model="numpy")
def _tanh_fwd_par(x, y):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _tanh_fwd(x, y, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")
def _tanh_bwd(dout, y, dx, lo, hi):
    ds, ys, xs = dout[lo:hi], y[lo:hi], dx[lo:hi]
    one = y.dtype.type(1.0)
    for i in range(xs.size):
        xs[i] = ds[i] * (one - ys[i] * ys[i])


@njit(parallel=True, cache=True, error_model="numpy")
def _tanh_bwd_par(dout, y, dx):
    n = dout.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _tanh_bwd(dout, y, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")
def _gelu_fwd(x, y, lo, hi):
    """x Phi(x) = 0.5 x erfc(-x / sqrt 2) (libm's erfc)."""
    xs, ys = x[lo:hi], y[lo:hi]
    half, r = y.dtype.type(0.5), y.dtype.type(-_RSQRT2)
    for i in range(ys.size):
        v = xs[i]
        ys[i] = half * v * math.erfc(v * r)


@njit(parallel=True, cache=True, error_model="numpy")
def _gelu_fwd_par(x, y):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _gelu_fwd(x, y, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")
def _gelu_bwd(dout, x, dx, lo, hi):
    """dout (Phi(x) + x phi(x)); x = +-inf gives inf * 0 = NaN, as PyTorch."""
    ds, xs, gs = dout[lo:hi], x[lo:hi], dx[lo:hi]
    half, r, k = dx.dtype.type(0.5), dx.dtype.type(-_RSQRT2), dx.dtype.type(_RSQRT2PI)
    for i in range(gs.size):
        v = xs[i]
        gs[i] = ds[i] * (half * math.erfc(v * r) + v * (k * vexp(-half * v * v)))


@njit(parallel=True, cache=True, error_model="numpy")
def _gelu_bwd_par(dout, x, dx):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _gelu_bwd(dout, x, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")
def _gelu_tanh_fwd(x, y, lo, hi):
    """x sigma(2u), u = K (x + C x^3); sigma from e = exp(-2|u|) (never overflows); vectorizes."""
    xs, ys = x[lo:hi], y[lo:hi]
    one, two, k, c = y.dtype.type(1.0), y.dtype.type(2.0), y.dtype.type(GELU_K), y.dtype.type(GELU_C)
    for i in range(ys.size):
        v = xs[i]
        u = k * (v + c * v * v * v)
        e = vexp(-two * abs(u))
        s = one / (one + e)
        ys[i] = v * (s if u >= 0 else e * s)


@njit(parallel=True, cache=True, error_model="numpy")
def _gelu_tanh_fwd_par(x, y):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _gelu_tanh_fwd(x, y, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")
def _gelu_tanh_bwd(dout, x, dx, lo, hi):
    """dout (sigma + 2 x e s^2 u'), u' = K (1 + 3C min(x^2, 1e4)): see the reference."""
    ds, xs, gs = dout[lo:hi], x[lo:hi], dx[lo:hi]
    t = dx.dtype.type
    one, two, k, c, c3, x2max = t(1.0), t(2.0), t(GELU_K), t(GELU_C), t(3.0 * GELU_C), t(GELU_X2_MAX)
    for i in range(gs.size):
        v = xs[i]
        v2 = v * v
        u = k * (v + c * v * v2)
        e = vexp(-two * abs(u))
        s = one / (one + e)
        sig = s if u >= 0 else e * s
        du2 = two * k * (one + c3 * min(v2, x2max))      # 2u', at most about 2145
        gs[i] = ds[i] * (sig + v * e * s * s * du2)         # v * e first: 0 for a huge finite v


@njit(parallel=True, cache=True, error_model="numpy")
def _gelu_tanh_bwd_par(dout, x, dx):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _gelu_tanh_bwd(dout, x, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")
def _dropout_fwd(x, seed, thr, scale, y, mask, lo, hi):
    xs, ys, ms = x[lo:hi], y[lo:hi], mask[lo:hi]
    z = y.dtype.type(0)
    for i in range(ys.size):
        keep = keep_bits(row_key(seed, lo + i), 0) >= thr
        v = xs[i] * scale
        ms[i] = keep
        ys[i] = v if keep else z


@njit(parallel=True, cache=True, error_model="numpy")
def _dropout_fwd_par(x, seed, thr, scale, y, mask):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _dropout_fwd(x, seed, thr, scale, y, mask, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")
def _dropout_bwd(dout, mask, scale, dx, lo, hi):
    ds, ms, xs = dout[lo:hi], mask[lo:hi], dx[lo:hi]
    z = dx.dtype.type(0)
    for i in range(xs.size):
        g = ds[i] * scale
        xs[i] = g if ms[i] else z


@njit(parallel=True, cache=True, error_model="numpy")
def _dropout_bwd_par(dout, mask, scale, dx):
    n = dout.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _dropout_bwd(dout, mask, scale, dx, c * CHUNK, min(n, (c + 1) * CHUNK))


def _flat(a):
    return np.ascontiguousarray(a).reshape(-1)


@njit(cache=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")
def act_inplace(v, act):
    """v (1-D) = act(v) in place, act a code of kernels.common.ACTIVATIONS (0: none): the fused kernels'
    epilogue, on rows they just wrote. The activations' own formulas (_relu1, _sigmoid1, _tanh_fwd), so a
    fused op's output is bit for bit the unfused one's. Loops of their own: _sigmoid_fwd(v, v) would fail
    LLVM's overlap check and run its scalar loop (measured 8x slower)."""
    if act == 1:
        z = v.dtype.type(0)
        for i in range(v.size):
            v[i] = _relu1(v[i], z)
    elif act == 2:
        one = v.dtype.type(1.0)
        for i in range(v.size):
            v[i] = _sigmoid1(v[i], one)
    elif act == 3:
        _tanh_fwd(v, v, 0, v.size)              # libm's tanh, without fastmath, as the op's own kernel


@njit(cache=True, error_model="numpy")
def act_bwd_inplace(dout, y, dz, act):
    """dz (1-D) = dout * act'(.) from the activation's output y; act as in act_inplace (not 0)."""
    if act == 1:
        _relu_bwd(dout, y, dz, 0, dz.size)
    elif act == 2:
        _sigmoid_bwd(dout, y, dz, 0, dz.size)
    else:
        _tanh_bwd(dout, y, dz, 0, dz.size)


def _unary(serial, parallel, x):
    y = np.empty(x.shape, x.dtype)          # x's shape (0-d too; x may be a NumPy scalar)
    run_chunked(serial, parallel, y.size, x.ravel(), y.ravel())
    return y


def _binary(serial, parallel, dout, y):
    dx = np.empty(y.shape, y.dtype)
    run_chunked(serial, parallel, dx.size, dout.ravel(), y.ravel(), dx.ravel())
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


def gelu_fwd(x, approximate="none"):
    """x -> gelu(x) (approximate 'none' or 'tanh'). Backward needs x."""
    if approximate == "tanh":
        return _unary(_gelu_tanh_fwd, _gelu_tanh_fwd_par, x)
    return _unary(_gelu_fwd, _gelu_fwd_par, x)


def gelu_bwd(dout, x, approximate="none"):
    """dout, the forward's input x -> dx."""
    if approximate == "tanh":
        return _binary(_gelu_tanh_bwd, _gelu_tanh_bwd_par, dout, x)
    return _binary(_gelu_bwd, _gelu_bwd_par, dout, x)


def _scale(p, dtype):
    return dtype.type(dropout_scale(p))


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
