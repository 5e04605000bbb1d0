"""float64 NumPy references: linear layer y = x W^T + b (forward and backward)."""
import math

import numpy as np

__all__ = ["linear_fwd", "linear_bwd"]


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def linear_fwd(x, w, b):
    """x (..., in), w (out, in), b (out,) or None -> (..., out) float64."""
    x, w, b = _f64(x), _f64(w), _f64(b)
    y = x @ w.T
    return y + b if b is not None else y


def linear_bwd(dout, x, w, need_dx=True, need_dw=True, need_db=True):
    """-> (dx (..., in), dw (out, in), db (out,)) float64; each None when not needed."""
    dout, x, w = _f64(dout), _f64(x), _f64(w)
    rows = math.prod(x.shape[:-1])                 # not -1: a size-0 input (no rows or no features) is ambiguous
    x2 = x.reshape(rows, x.shape[-1])
    d2 = dout.reshape(rows, dout.shape[-1])
    dx = (d2 @ w).reshape(x.shape) if need_dx else None
    dw = d2.T @ x2 if need_dw else None
    db = d2.sum(axis=0) if need_db else None
    return dx, dw, db
