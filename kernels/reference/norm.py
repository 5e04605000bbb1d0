"""float64 NumPy reference (forward and backward) for the norm family: batch norm and layer norm.

Batch norm works on x of shape (N, C, *) (one statistic per channel C over N and the trailing dims);
layer norm on a 2-D (rows, D) view (one statistic per row). `weight` and `bias` may be None
(identity affine). Every function returns float64 arrays; the saved statistics are `mean` and `rstd`
(1 / sqrt(var + eps)).
"""
import math

import numpy as np

__all__ = ["batch_norm_fwd_train", "batch_norm_fwd_eval", "batch_norm_bwd_train", "batch_norm_bwd_eval",
           "layer_norm_fwd", "layer_norm_bwd"]


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def _bn3(x):
    """(N, C, *) -> float64 (N, C, L) view."""
    x = _f64(x)
    return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))      # N may be 0


def _affine(xhat, weight, bias, shape):
    """xhat * weight + bias with weight/bias broadcast along `shape` (a shape the arrays broadcast to)."""
    y = xhat
    if weight is not None:
        y = y * _f64(weight).reshape(shape)
    if bias is not None:
        y = y + _f64(bias).reshape(shape)
    return y


def batch_norm_fwd_train(x, weight, bias, eps):
    """Training forward. x (N, C, *) -> (y like x, mean (C,), rstd (C,), var (C,) biased batch variance)."""
    x3 = _bn3(x)
    mean = x3.mean(axis=(0, 2))
    var = ((x3 - mean[None, :, None]) ** 2).mean(axis=(0, 2))
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = (x3 - mean[None, :, None]) * rstd[None, :, None]
    return _affine(xhat, weight, bias, (1, -1, 1)).reshape(np.shape(x)), mean, rstd, var


def batch_norm_fwd_eval(x, running_mean, running_var, weight, bias, eps):
    """Eval forward with running statistics. x (N, C, *) -> (y like x, mean (C,) = running_mean, rstd (C,))."""
    x3 = _bn3(x)
    mean = _f64(running_mean).copy()
    rstd = 1.0 / np.sqrt(_f64(running_var) + eps)
    xhat = (x3 - mean[None, :, None]) * rstd[None, :, None]
    return _affine(xhat, weight, bias, (1, -1, 1)).reshape(np.shape(x)), mean, rstd


def _bn_param_grads(dout3, xhat):
    return (dout3 * xhat).sum(axis=(0, 2)), dout3.sum(axis=(0, 2))


def batch_norm_bwd_train(dout, x, weight, mean, rstd):
    """Training backward (mean and rstd depend on x). Returns (dx like x, dw (C,), db (C,))."""
    x3, g3 = _bn3(x), _bn3(dout)
    n = x3.shape[0] * x3.shape[2]
    r = _f64(rstd)[None, :, None]
    xhat = (x3 - _f64(mean)[None, :, None]) * r
    dw, db = _bn_param_grads(g3, xhat)
    w = np.ones_like(r) if weight is None else _f64(weight)[None, :, None]
    dx = w * r * (g3 - db[None, :, None] / n - xhat * dw[None, :, None] / n)
    return dx.reshape(np.shape(x)), dw, db


def batch_norm_bwd_eval(dout, x, weight, mean, rstd):
    """Eval backward (mean and rstd are constants): dx = dout * weight * rstd. Returns (dx, dw (C,), db (C,))."""
    x3, g3 = _bn3(x), _bn3(dout)
    r = _f64(rstd)[None, :, None]
    xhat = (x3 - _f64(mean)[None, :, None]) * r
    dw, db = _bn_param_grads(g3, xhat)
    w = np.ones_like(r) if weight is None else _f64(weight)[None, :, None]
    return (g3 * w * r).reshape(np.shape(x)), dw, db


def layer_norm_fwd(x, weight, bias, eps):
    """x (rows, D), weight/bias (D,) or None -> (y (rows, D), mean (rows,), rstd (rows,))."""
    x = _f64(x)
    mean = x.mean(axis=1)
    var = ((x - mean[:, None]) ** 2).mean(axis=1)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean[:, None]) * rstd[:, None]
    return _affine(xhat, weight, bias, (1, -1)), mean, rstd


def layer_norm_bwd(dout, x, weight, mean, rstd):
    """Returns (dx (rows, D), dw (D,), db (D,)); dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * w."""
    x, dout = _f64(x), _f64(dout)
    r = _f64(rstd)[:, None]
    xhat = (x - _f64(mean)[:, None]) * r
    g = dout if weight is None else dout * _f64(weight)[None, :]
    dx = r * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True))
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
