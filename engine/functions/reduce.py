"""Reductions and scans, PyTorch's semantics: sum, mean, prod-free statistics (var, std), max/min in their three
forms, argmax/argmin, amax/amin, norm, cumsum, all/any, sort/argsort/topk, logsumexp. `dim` is an int, a
tuple of ints or None (every dim); negative dims count from the end; `keepdim` keeps reduced dims as size 1.
"""
import collections
import numbers

import numpy as np

from .._capture import replayable
from ..backend import array_module
from ..ops import indexing as I
from ..tensor import Tensor, _axes, _dim, _dim_arg, _keep_arg, _wrap_like
from ..tensor_ops import Max
from .dtypes import int64
from .math import tensor_arg

__all__ = ["sum", "mean", "var", "std", "var_mean", "std_mean", "max", "min", "amax", "amin", "argmax", "argmin",
           "norm", "cumsum", "all", "any", "sort", "argsort", "topk", "logsumexp", "count_nonzero"]


def _namedtuple(name):
    cls = collections.namedtuple(name, ["values", "indices"])
    cls.__module__ = "engine.return_types"
    return cls


# torch.return_types: max(dim), min(dim), sort, topk give (values, indices) tuples with named fields
return_max, return_min, return_sort, return_topk = (_namedtuple(n) for n in ("max", "min", "sort", "topk"))


def sum(input, dim=None, keepdim=False, *, dtype=None, axis=None):
    return tensor_arg("input", input).sum(dim, keepdim, dtype=dtype, axis=axis)


def mean(input, dim=None, keepdim=False, *, dtype=None, axis=None):
    return tensor_arg("input", input).mean(dim, keepdim, dtype=dtype, axis=axis)


def var(input, dim=None, *, correction=1, keepdim=False, unbiased=None):
    """Variance over `dim` with Bessel's correction by default (correction=1; unbiased=False means 0)."""
    x = tensor_arg("input", input)
    if unbiased is not None:
        correction = 1 if unbiased else 0
    if isinstance(dim, bool):                 # var(x, False): the old positional `unbiased`
        correction, dim = int(dim), None
    if x.dtype.kind != "f":
        raise RuntimeError(f"var: the input dtype must be floating point, got {x.dtype}")
    axes = _axes(dim, x.ndim)
    n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    d = x - x.mean(axes, keepdim=True)
    return (d * d).sum(axes, keepdim) / (n - correction if n > correction else 0)


def std(input, dim=None, *, correction=1, keepdim=False, unbiased=None):
    """Standard deviation: var(...) ** 0.5."""
    return var(input, dim, correction=correction, keepdim=keepdim, unbiased=unbiased).sqrt()


def var_mean(input, dim=None, *, correction=1, keepdim=False):
    return var(input, dim, correction=correction, keepdim=keepdim), mean(input, dim, keepdim)


def std_mean(input, dim=None, *, correction=1, keepdim=False):
    return std(input, dim, correction=correction, keepdim=keepdim), mean(input, dim, keepdim)


def _extremum(x, kind, dim, keepdim, axis, keepdims, out):
    from . import math
    x = tensor_arg("input", x)
    if isinstance(dim, Tensor):                                   # max(a, b): elementwise
        return (math.maximum if kind == "max" else math.minimum)(x, dim)
    dim = _dim_arg(dim, axis)
    keep = _keep_arg(keepdim, keepdims, out)
    if x.numel() == 0 and (dim is None or x.ndim == 0 or x.shape[_dim(dim, x.ndim)] == 0):
        raise IndexError(f"{kind}(): cannot reduce an empty tensor (shape {x.shape}) without an identity; "
                         f"give a dim whose size is not zero")
    if dim is None:
        return _amax(x, kind, tuple(range(x.ndim)), keep)
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"dim: {kind}(dim) takes one int dim, got {dim!r} (amax/amin take several)")
    d = _dim(dim, x.ndim)
    idx = _arg(x, "argmax" if kind == "max" else "argmin", d, True)
    values = I.TakeAlong.apply(x, idx._data, axis=d) if x.ndim else x.reshape(())
    if not keep and x.ndim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return (return_max if kind == "max" else return_min)(values, idx)


def _amax(x, kind, axes, keep):
    """The largest (smallest) over `axes`; ties share the gradient equally."""
    if kind == "max":
        return Max.apply(x, axis=axes, keepdims=keep)
    return -Max.apply(-x, axis=axes, keepdims=keep) if x.dtype.kind != "b" else \
        _wrap_like(x._data.min(axis=axes, keepdims=keep), x)


def max(input, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
    """max(x): the largest element; max(x, dim, keepdim=False): (values, indices) along dim, the gradient going to
    the index chosen; max(x, other): the elementwise maximum."""
    return _extremum(input, "max", dim, keepdim, axis, keepdims, out)


def min(input, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
    """As max, for the smallest."""
    return _extremum(input, "min", dim, keepdim, axis, keepdims, out)


def amax(input, dim=(), keepdim=False):
    """The largest over dims (every dim for dim=() or None); ties share the gradient equally."""
    x = tensor_arg("input", input)
    return _amax(x, "max", _axes(None if dim in ((), None) else dim, x.ndim), keepdim)


def amin(input, dim=(), keepdim=False):
    x = tensor_arg("input", input)
    return _amax(x, "min", _axes(None if dim in ((), None) else dim, x.ndim), keepdim)


@replayable
def _arg(x, fn, d, keepdim):
    """argmax/argmin along dim d (None: of the flattened tensor), as an int64 tensor."""
    if x.numel() == 0:
        raise IndexError(f"{fn}(): cannot take the {fn} of an empty tensor")
    a = x._data
    if d is None:
        r = getattr(a.reshape(-1), fn)()
        r = array_module(a).asarray(r, dtype=np.int64)
        return _wrap_like(r.reshape((1,) * a.ndim) if keepdim else r, a)
    if a.ndim == 0:
        return _wrap_like(array_module(a).zeros((), dtype=np.int64), a)
    return _wrap_like(getattr(a, fn)(axis=d, keepdims=keepdim).astype(np.int64, copy=False), a)


def argmax(input, dim=None, keepdim=False, *, axis=None):
    """The index of the largest element (of the flattened tensor when dim is None); the first of ties."""
    x = tensor_arg("input", input)
    dim = _dim_arg(dim, axis)
    return _arg(x, "argmax", None if dim is None else _dim(dim, x.ndim), keepdim)


def argmin(input, dim=None, keepdim=False, *, axis=None):
    x = tensor_arg("input", input)
    dim = _dim_arg(dim, axis)
    return _arg(x, "argmin", None if dim is None else _dim(dim, x.ndim), keepdim)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector p-norm of the flattened input (dim None) or over `dim` (an int or a tuple of ints): p a positive
    number, inf, -inf, 0 (count of non-zeros) or 'fro' (2-norm over the given dims). The gradient at a zero
    vector is zero."""
    x = tensor_arg("input", input)
    if dtype is not None:
        x = x.to(dtype)
    if x.dtype.kind != "f":
        raise RuntimeError(f"norm: expected a floating point tensor, got dtype {x.dtype}")
    if p == "fro" or p is None:
        p = 2
    if isinstance(p, str):
        raise ValueError(f"p: {p!r} is not supported (expected a number, inf or 'fro'; for the nuclear norm use "
                         f"a linear-algebra library)")
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or p < 0 and p != -np.inf:
        raise ValueError(f"p: expected a non-negative number, inf or -inf, got {p!r}")
    axes = _axes(dim, x.ndim)
    return I.Norm.apply(x, p=float(p), axes=axes, keepdims=bool(keepdim))


def cumsum(input, dim, *, dtype=None):
    """Running sum along dim; integer and bool inputs sum in int64 (unless dtype says otherwise)."""
    x = tensor_arg("input", input)
    d = _dim(dim, x.ndim)
    if dtype is None and x.dtype.kind in "biu":
        dtype = int64
    if x.ndim == 0:
        return x.to(dtype) if dtype is not None else x.clone()
    return I.CumSum.apply(x, axis=d, dtype=None if dtype is None else np.dtype(dtype))


def _truth(fn):
    def reduce_(input, dim=None, keepdim=False):
        x = tensor_arg("input", input)
        axes = _axes(dim, x.ndim)
        return _wrap_like(getattr(x._data.astype(bool), fn)(axis=axes, keepdims=keepdim), x)
    reduce_.__name__ = fn
    reduce_.__doc__ = f"True where {fn} of the elements over dim (all dims for None) are non-zero."
    return reduce_


all, any = _truth("all"), _truth("any")


def count_nonzero(input, dim=None):
    x = tensor_arg("input", input)
    return _wrap_like(array_module(x._data).count_nonzero(x._data, axis=_axes(dim, x.ndim)).astype(np.int64), x)


def argsort(input, dim=-1, descending=False, stable=False):
    """Indices that sort input along dim (int64). Ties keep their order (a stable sort)."""
    x = tensor_arg("input", input)
    if x.ndim == 0:
        return _wrap_like(array_module(x._data).zeros((), dtype=np.int64), x)
    d = _dim(dim, x.ndim)
    xp = array_module(x._data)
    a = x._data
    if descending:
        # stable descending: sort the reversed array ascending, then reverse and map indices back
        n = a.shape[d]
        r = xp.flip(xp.argsort(xp.flip(a, axis=d), axis=d, kind="stable"), axis=d)
        return _wrap_like((n - 1 - r).astype(np.int64), x)
    return _wrap_like(xp.argsort(a, axis=d, kind="stable").astype(np.int64), x)


def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along dim; the values are differentiable (the gradient goes back to where each
    value came from)."""
    x = tensor_arg("input", input)
    idx = argsort(x, dim, descending)
    if x.ndim == 0:
        return return_sort(x.clone(), idx)
    return return_sort(I.TakeAlong.apply(x, idx._data, axis=_dim(dim, x.ndim)), idx)


def topk(input, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the k largest (smallest) along dim, in order."""
    x = tensor_arg("input", input)
    d = _dim(dim, x.ndim)
    n = x.shape[d] if x.ndim else 1
    if not isinstance(k, numbers.Integral) or not 0 <= k <= n:
        raise RuntimeError(f"k: selected index k={k!r} is out of range for a dim of size {n}")
    idx = argsort(x, d, descending=largest)
    if x.ndim == 0:
        return return_topk(x.clone(), idx)
    sl = (slice(None),) * d + (slice(0, int(k)),)
    idx = _wrap_like(idx._data[sl].copy(), x)
    return return_topk(I.TakeAlong.apply(x, idx._data, axis=d), idx)


def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(x))) over dim, computed stably (the max subtracted first)."""
    x = tensor_arg("input", input)
    from .math import exp, log
    axes = _axes(dim, x.ndim)
    xp = array_module(x._data)
    m = x._data.max(axis=axes, keepdims=True)
    m = _wrap_like(xp.where(xp.isfinite(m), m, 0).astype(x.dtype), x)
    s = log(exp(x - m).sum(axes, keepdim=True)) + m
    return s if keepdim else s.squeeze(axes) if axes else s
