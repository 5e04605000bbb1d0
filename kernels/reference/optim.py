"""float64 NumPy references for the optimizer updates (PyTorch's SGD, Adam and AdamW rules).

They update `param` and the state arrays in place, like the kernels, so tests run both on copies.
"""
import numpy as np

__all__ = ["sgd_step", "adam_step", "adamw_step"]


def sgd_step(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    """Coupled weight decay: d = grad + wd*param. With momentum: buf = d on the first step, else
    buf = momentum*buf + (1 - dampening)*d; the step uses buf (or d + momentum*buf with nesterov).
    With momentum 0 this is the book's w <- (1 - lr*wd) w - lr*grad. `buf` may be None when momentum is 0."""
    d = grad + weight_decay * param
    if momentum != 0:
        if first:
            buf[...] = d
        else:
            buf[...] = momentum * buf + (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    param[...] = param - lr * d


def adam_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """Adam with coupled (L2) weight decay, as PyTorch's Adam: the gradient is grad + wd*param, then the
    moments and the bias-corrected step as in adamw_step; step counts from 1."""
    if weight_decay != 0:
        grad = grad + weight_decay * param
    m[...] = beta1 * m + (1 - beta1) * grad
    v[...] = beta2 * v + (1 - beta2) * grad * grad
    param[...] = param - lr * (m / (1 - beta1 ** step)) / (np.sqrt(v / (1 - beta2 ** step)) + eps)


def adamw_step(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """Decoupled weight decay (param *= 1 - lr*wd), then Adam with bias correction; step counts from 1."""
    param[...] = param * (1 - lr * weight_decay)
    m[...] = beta1 * m + (1 - beta1) * grad
    v[...] = beta2 * v + (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    param[...] = param - lr * m_hat / (np.sqrt(v_hat) + eps)
