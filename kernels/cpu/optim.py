"""Numba CPU kernels: fused optimizer updates, one pass over each parameter, in place.

Same names and signatures as kernels.reference.optim. prange over chunks of the flat parameter; the
scalar hyper-parameters are folded into a few constants before the loop.
"""
import numpy as np
from numba import njit, prange

__all__ = ["sgd_step", "adamw_step"]

CHUNK = 1 << 14


@njit(parallel=True, cache=True)
def _sgd(p, g, buf, lr, momentum, dampening, nesterov, wd, first):
    n = p.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            d = g[i] + wd * p[i]
            if momentum != 0:
                b = d if first else momentum * buf[i] + (1 - dampening) * d
                buf[i] = b
                d = d + momentum * b if nesterov else b
            p[i] = p[i] - lr * d


@njit(parallel=True, cache=True)
def _adamw(p, g, m, v, lr, beta1, beta2, eps, decay, c1, c2):
    n = p.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            gi = g[i]
            mi = beta1 * m[i] + (1 - beta1) * gi
            vi = beta2 * v[i] + (1 - beta2) * gi * gi
            m[i] = mi
            v[i] = vi
            p[i] = p[i] * decay - lr * (mi / c1) / (np.sqrt(vi / c2) + eps)


def _flat(a, name):
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: the fused update needs a contiguous array")
    return a.reshape(-1)


def sgd_step(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    t = param.dtype.type
    p = _flat(param, "param")
    b = _flat(buf, "buf") if buf is not None else p[:0]
    _sgd(p, np.ascontiguousarray(grad).reshape(-1), b, t(lr), t(momentum), t(dampening), bool(nesterov),
         t(weight_decay), bool(first))


def adamw_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
    t = param.dtype.type
    _adamw(_flat(param, "param"), np.ascontiguousarray(grad).reshape(-1), _flat(m, "m"), _flat(v, "v"), t(lr),
           t(beta1), t(beta2), t(eps), t(1 - lr * weight_decay), t(1 - beta1 ** step), t(1 - beta2 ** step))
