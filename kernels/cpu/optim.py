"""Numba CPU kernels: fused optimizer updates, one pass over each parameter, in place. Adam and AdamW share
one kernel: AdamW decays the parameter (decoupled), Adam adds wd*param to the gradient (coupled, L2).

Same names and signatures as kernels.reference.optim. A serial loop over [lo, hi) plus a driver that
runs it over prange'd chunks of the flat parameter (small parameters stay in the calling thread, see
_config.py); the scalar hyper-parameters are packed in one array `h`. error_model="numpy": a division by
zero (AdamW with eps = 0 and a zero gradient) gives inf or NaN, as in PyTorch, never ZeroDivisionError.
"""
import numpy as np
from numba import njit, prange

from ..common import flat_contiguous as _flat
from ._config import CHUNK, run_chunked

__all__ = ["sgd_step", "adam_step", "adamw_step"]


@njit(cache=True, error_model="numpy")
def _sgd(p, g, buf, h, lo, hi):
    """h = (lr, momentum, dampening, nesterov, weight_decay, first). The loops run 0-based over slices, with
    constants of the parameters' dtype: an index from lo brings Numba's wraparound checks and a Python 1
    promotes float32 arithmetic to float64, and either keeps the loop from vectorizing."""
    lr, momentum, dampening, nesterov, wd, first = h[0], h[1], h[2], h[3] != 0, h[4], h[5] != 0
    one = h.dtype.type(1)
    ps, gs = p[lo:hi], g[lo:hi]
    if momentum == 0:
        for i in range(ps.size):
            ps[i] = ps[i] - lr * (gs[i] + wd * ps[i])
        return
    bs = buf[lo:hi]
    for i in range(ps.size):
        d = gs[i] + wd * ps[i]
        b = d if first else momentum * bs[i] + (one - dampening) * d
        bs[i] = b
        d = d + momentum * b if nesterov else b
        ps[i] = ps[i] - lr * d


@njit(parallel=True, cache=True, error_model="numpy")
def _sgd_par(p, g, buf, h):
    n = p.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _sgd(p, g, buf, h, c * CHUNK, min(n, (c + 1) * CHUNK))


@njit(cache=True, error_model="numpy")
def _adamw(p, g, m, v, h, lo, hi):
    """h = (lr, beta1, beta2, eps, decay, bias correction 1 - beta1^t, 1 - beta2^t, l2): AdamW has
    decay = 1 - lr*wd and l2 = 0, Adam decay = 1 and l2 = wd (the gradient becomes g + l2*p). Written as
    _sgd is (slices, dtype constants) so that it vectorizes."""
    lr, beta1, beta2, eps, decay, c1, c2, l2 = h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
    one = h.dtype.type(1)
    b1, b2 = one - beta1, one - beta2
    ps, gs, ms, vs = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]
    for i in range(ps.size):
        gi = gs[i] + l2 * ps[i] if l2 != 0 else gs[i]   # no 0 * inf for AdamW's inf parameters
        mi = beta1 * ms[i] + b1 * gi
        vi = beta2 * vs[i] + b2 * gi * gi
        ms[i] = mi
        vs[i] = vi
        ps[i] = ps[i] * decay - lr * (mi / c1) / (np.sqrt(vi / c2) + eps)


@njit(parallel=True, cache=True, error_model="numpy")
def _adamw_par(p, g, m, v, h):
    n = p.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _adamw(p, g, m, v, h, c * CHUNK, min(n, (c + 1) * CHUNK))


def sgd_step(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    p = _flat(param, "param")
    b = _flat(buf, "buf") if buf is not None else p[:0]
    h = np.array([lr, momentum, dampening, nesterov, weight_decay, first], dtype=param.dtype)
    run_chunked(_sgd, _sgd_par, p.size, p, np.ascontiguousarray(grad).reshape(-1), b, h)


def _adam(param, grad, m, v, lr, beta1, beta2, eps, decay, l2, step):
    p = _flat(param, "param")
    h = np.array([lr, beta1, beta2, eps, decay, 1 - beta1 ** step, 1 - beta2 ** step, l2], dtype=param.dtype)
    run_chunked(_adamw, _adamw_par, p.size, p, np.ascontiguousarray(grad).reshape(-1), _flat(m, "m"), _flat(v, "v"), h)


def adam_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
    _adam(param, grad, m, v, lr, beta1, beta2, eps, 1.0, weight_decay, step)


def adamw_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
    _adam(param, grad, m, v, lr, beta1, beta2, eps, 1 - lr * weight_decay, 0.0, step)
