"""Fused optimizer updates on the GPU: one thread per parameter element, in place, the same arithmetic as
kernels/cpu/optim.py (SGD with coupled weight decay, momentum, dampening and Nesterov; Adam and AdamW in one
kernel: AdamW's decoupled decay, Adam's coupled (L2) decay, bias correction)."""
import math

from numba import cuda

from ..common import flat_contiguous as _flat
from ._dev import TPB_FLAT, blocks
from ._launch import kernel

__all__ = ["sgd_step", "adam_step", "adamw_step"]


@kernel
def _sgd(p, g, buf, lr, momentum, dampening, nesterov, wd, first):
    i = cuda.grid(1)
    if i < p.shape[0]:
        d = g[i] + wd * p[i]
        if momentum != 0:
            b = d if first else momentum * buf[i] + (1 - dampening) * d
            buf[i] = b
            d = d + momentum * b if nesterov else b
        p[i] = p[i] - lr * d


@kernel
def _adamw(p, g, m, v, lr, beta1, beta2, eps, decay, c1, c2, l2):
    i = cuda.grid(1)
    if i < p.shape[0]:
        gi = g[i] + l2 * p[i] if l2 != 0 else g[i]
        mi = beta1 * m[i] + (1 - beta1) * gi
        vi = beta2 * v[i] + (1 - beta2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] * decay - lr * (mi / c1) / (math.sqrt(vi / c2) + eps)


def sgd_step(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    p = _flat(param, "param")
    g = _flat(grad, "grad")
    b = _flat(buf, "buf") if buf is not None else p[:0]
    t = param.dtype.type
    if p.size:
        _sgd[blocks(p.size), TPB_FLAT](p, g, b, t(lr), t(momentum), t(dampening),
                                                  bool(nesterov), t(weight_decay), bool(first))


def _adam(param, grad, m, v, lr, beta1, beta2, eps, decay, l2, step):
    """AdamW: decay = 1 - lr*wd, l2 = 0; Adam: decay = 1, l2 = wd."""
    p = _flat(param, "param")
    t = param.dtype.type
    if p.size:
        _adamw[blocks(p.size), TPB_FLAT](p, _flat(grad, "grad"), _flat(m, "m"), _flat(v, "v"), t(lr), t(beta1),
                                         t(beta2), t(eps), t(decay), t(1 - beta1 ** step), t(1 - beta2 ** step),
                                         t(l2))


def adam_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
    _adam(param, grad, m, v, lr, beta1, beta2, eps, 1.0, weight_decay, step)


def adamw_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
    _adam(param, grad, m, v, lr, beta1, beta2, eps, 1 - lr * weight_decay, 0.0, step)
