"""Information theory on probability tensors, in nats (D2L's appendix): entropy, joint and conditional
entropy, mutual information, pointwise mutual information, KL divergence and cross-entropy.

Every function takes `base`: None (natural log, nats) or e.g. 2 for bits. The book's
entropy([.1, .5, .1, .3]) = 1.6855 is in bits (its code uses log2); in nats it is 1.1683.

Inputs are Tensors or array-likes of probabilities (converted to float64 Tensors); results are Tensors,
differentiable where the inputs require grad. 0 log 0 counts as 0. `p_xy` is a 2-D joint table with X on
axis 0 and Y on axis 1; marginals default to its sums and, when given, must match its axes. Bad input
(values outside [0, 1] or not numbers, shapes that do not match, a base <= 0 or 1) raises naming the
argument.
"""
import math
import numbers

import numpy as np

from ._checks import normalize_dim
from .tensor import Tensor, tensor

__all__ = ["entropy", "joint_entropy", "conditional_entropy", "mutual_information",
           "pointwise_mutual_information", "kl_divergence", "cross_entropy"]


def _prob(name, p, ndim=None):
    """p as a float Tensor of probabilities in [0, 1] (ndim dims when given), else TypeError/ValueError."""
    if isinstance(p, Tensor):
        t = p
    else:
        try:
            t = tensor(np.asarray(p, dtype=np.float64), dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name}: expected an array of probabilities (numbers), got {p!r}") from None
    if t.dtype.kind != "f":
        raise TypeError(f"{name}: expected probabilities (floats), got dtype {t.dtype}")
    a = t.numpy()
    if np.any(a < 0) or np.any(a > 1) or not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: probabilities must lie in [0, 1]")
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dims, got shape {t.shape}")
    return t


def _marginal(name, p, n):
    """A marginal given for a joint table's axis of size n: a (n,) probability vector."""
    t = _prob(name, p)
    if t.shape not in ((n,), (n, 1), (1, n)):
        raise ValueError(f"{name}: expected {n} probabilities to match p_xy, got shape {t.shape}")
    return t


def _pair(p, q):
    """p and q of broadcastable shapes (the 'q' argument named when they are not)."""
    p, q = _prob("p", p), _prob("q", q)
    try:
        np.broadcast_shapes(p.shape, q.shape)
    except ValueError:
        raise ValueError(f"q: shape {q.shape} does not match p's shape {p.shape}") from None
    return p, q


def _dim(dim, t):
    if t.ndim == 0:
        raise ValueError("p: expected at least one dim of probabilities, got a 0-d tensor")
    return normalize_dim("dim", dim, t.ndim)


def _in_base(h, base):
    if base is None:
        return h
    if isinstance(base, bool) or not isinstance(base, numbers.Real) or not (base > 0 and base != 1) \
            or not math.isfinite(base):
        raise ValueError(f"base: expected a finite logarithm base > 0 other than 1 (or None for nats), got {base!r}")
    return h / float(np.log(base))


def _xlogy(x, y):
    """x * log(y), with 0 wherever x == 0 (and y is then ignored)."""
    zero = x.numpy() == 0
    safe_y = y + Tensor(zero.astype(y.dtype))          # log(1) = 0 where x is 0
    return x * safe_y.log()


def entropy(p, dim=-1, base=None):
    """H(P) = -sum p log p along `dim`. entropy([.1, .5, .1, .3], base=2) = 1.6855 bits."""
    p = _prob("p", p)
    return _in_base(-_xlogy(p, p).sum(axis=_dim(dim, p)), base)


def joint_entropy(p_xy, base=None):
    """H(X, Y) = -sum_xy p(x, y) log p(x, y)."""
    p_xy = _prob("p_xy", p_xy, ndim=2)
    return _in_base(-_xlogy(p_xy, p_xy).sum(), base)


def conditional_entropy(p_xy, p_x=None, base=None):
    """H(Y | X) = -sum_xy p(x, y) log (p(x, y) / p(x))."""
    p_xy = _prob("p_xy", p_xy, ndim=2)
    p_x = p_xy.sum(axis=1, keepdims=True) if p_x is None else _marginal("p_x", p_x, p_xy.shape[0]).reshape(-1, 1)
    return _in_base(-(_xlogy(p_xy, p_xy) - _xlogy(p_xy, p_x + 0 * p_xy)).sum(), base)


def mutual_information(p_xy, p_x=None, p_y=None, base=None):
    """I(X, Y) = sum_xy p(x, y) log (p(x, y) / (p(x) p(y))) = H(X) + H(Y) - H(X, Y)."""
    p_xy = _prob("p_xy", p_xy, ndim=2)
    p_x = p_xy.sum(axis=1, keepdims=True) if p_x is None else _marginal("p_x", p_x, p_xy.shape[0]).reshape(-1, 1)
    p_y = p_xy.sum(axis=0, keepdims=True) if p_y is None else _marginal("p_y", p_y, p_xy.shape[1]).reshape(1, -1)
    return _in_base((_xlogy(p_xy, p_xy) - _xlogy(p_xy, p_x * p_y)).sum(), base)


def pointwise_mutual_information(p_xy, p_x=None, p_y=None, base=None):
    """pmi(x, y) = log (p(x, y) / (p(x) p(y))), elementwise (-inf where p(x, y) = 0)."""
    p_xy = _prob("p_xy", p_xy, ndim=2)
    p_x = p_xy.sum(axis=1, keepdims=True) if p_x is None else _marginal("p_x", p_x, p_xy.shape[0]).reshape(-1, 1)
    p_y = p_xy.sum(axis=0, keepdims=True) if p_y is None else _marginal("p_y", p_y, p_xy.shape[1]).reshape(1, -1)
    with np.errstate(divide="ignore"):
        return _in_base(p_xy.log() - (p_x * p_y).log(), base)


def kl_divergence(p, q, dim=-1, base=None):
    """D_KL(P || Q) = sum p log (p / q) >= 0 (inf where q = 0 < p)."""
    p, q = _pair(p, q)
    with np.errstate(divide="ignore"):
        d = _xlogy(p, p) - _xlogy(p, q)
        return _in_base(d.sum(axis=_dim(dim, d)), base)


def cross_entropy(p, q, dim=-1, base=None):
    """CE(P, Q) = -sum p log q = H(P) + D_KL(P || Q)."""
    p, q = _pair(p, q)
    with np.errstate(divide="ignore"):
        h = -_xlogy(p, q)
        return _in_base(h.sum(axis=_dim(dim, h)), base)
