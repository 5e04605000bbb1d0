"""Random tensors, PyTorch's signatures, drawn from the engine's generator (engine.manual_seed) or the NumPy
`generator=` passed in: normal (its four forms), randint, randperm, bernoulli, multinomial, the *_like
variants and the in-place fills Tensor.normal_ / uniform_ / bernoulli_ / random_. The values differ from
PyTorch's (another generator); the distributions are the same. Samples carry no gradient (PyTorch gives
zero gradients through normal's mean and std).
"""
import numbers

import numpy as np

from ..autograd import no_grad
from ..backend import check_device, to_device
from ..creation import _dtype_arg, _shape, default_generator, rand, randn, refuse_draw
from ..tensor import Tensor
from .dtypes import DEFAULT_FLOAT, int64, result_type

__all__ = ["normal", "randint", "randperm", "bernoulli", "multinomial", "rand_like", "randn_like",
           "randint_like", "rand", "randn"]


def _gen(generator):
    if generator is None:
        return default_generator()
    refuse_draw()
    return generator


def _place(a, like=None, device=None):
    """A host array as a tensor on `device` (or where `like` is)."""
    dev = check_device(device) if device is not None else (like.device if like is not None else "cpu")
    return Tensor(to_device(a, dev))


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """Samples of N(mean, std^2): mean and std tensors (broadcast together) or numbers; with two numbers, `size`
    gives the shape. The dtype is the float dtype the arguments promote to (float32 for numbers)."""
    tm, ts = isinstance(mean, Tensor), isinstance(std, Tensor)
    for name, v, is_t in (("mean", mean, tm), ("std", std, ts)):
        if not is_t and (not isinstance(v, numbers.Real) or isinstance(v, bool)):
            raise TypeError(f"{name}: expected a Tensor or a number, got {type(v).__name__}")
    if not ts and std < 0:
        raise RuntimeError(f"std: must be non-negative, got {std}")
    if ts and std.numel() and bool((std._data < 0).any()):
        raise RuntimeError("std: every standard deviation must be non-negative")
    like = mean if tm else std if ts else None
    if like is None:
        if size is None:
            raise TypeError("size: normal(mean, std) with two numbers needs a size")
        shape = _shape((size,))
        dt = DEFAULT_FLOAT if dtype is None else _dtype_arg(dtype)
    else:
        if size is not None and not (tm and ts):
            shape = _shape((size,))
        else:
            shape = np.broadcast_shapes(mean.shape if tm else (), std.shape if ts else ())
        dt = result_type(*(v for v in (mean, std) if isinstance(v, Tensor)))
        dt = dt if dt.kind == "f" else DEFAULT_FLOAT
        if dtype is not None:
            dt = _dtype_arg(dtype)
    if dt.kind != "f":
        raise TypeError(f"dtype: normal samples need a floating dtype, got {dt}")
    eps = _place(_gen(generator).standard_normal(shape).astype(dt), like, device)
    with no_grad():
        m = mean.detach().to(dt) if tm else mean
        s = std.detach().to(dt) if ts else std
        out = eps * s + m
    out = out.to(dt) if out.dtype != dt else out
    return out.requires_grad_(requires_grad) if requires_grad else out


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device="cpu", requires_grad=False):
    """Integers uniform in [low, high): randint(high, size) or randint(low, high, size); int64 by default."""
    if size is None and isinstance(high, (tuple, list)):          # randint(high, size)
        low, high, size = 0, low, high
    elif high is None:                                            # randint(high, size=...)
        low, high = 0, low
    if size is None:
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
    if high <= low:
        raise RuntimeError(f"randint: high ({high}) must be larger than low ({low})")
    a = _gen(generator).integers(low, high, _shape((size,)))
    a = a.astype(int64 if dtype is None else _dtype_arg(dtype))
    return Tensor(to_device(a, check_device(device)), requires_grad=requires_grad)


def randperm(n, *, generator=None, dtype=None, device="cpu"):
    """A random permutation of 0..n-1 (int64)."""
    if not isinstance(n, numbers.Integral) or n < 0:
        raise RuntimeError(f"n: expected a non-negative int, got {n!r}")
    a = _gen(generator).permutation(int(n)).astype(int64 if dtype is None else _dtype_arg(dtype))
    return Tensor(to_device(a, check_device(device)))


def bernoulli(input, p=None, *, generator=None):
    """0/1 samples with probability input (or p), in input's dtype."""
    x = _check(input)
    prob = x.numpy() if p is None else np.broadcast_to(p, x.shape)
    if np.any((prob < 0) | (prob > 1)):
        raise RuntimeError("bernoulli: every probability must be in [0, 1]")
    a = (_gen(generator).random(x.shape) < prob).astype(x.dtype)
    return _place(a, x)


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """Indices drawn from the categories with (unnormalized, non-negative) weights input: (k,) -> (num_samples,),
    (n, k) -> (n, num_samples); int64. Without replacement, num_samples <= the non-zero weights."""
    x = _check(input)
    if x.ndim not in (1, 2):
        raise RuntimeError(f"input: multinomial expects 1 or 2 dims, got shape {x.shape}")
    w = x.numpy().astype(np.float64).reshape(-1, x.shape[-1])
    if (w < 0).any() or not np.isfinite(w).all():
        raise RuntimeError("input: weights must be finite and non-negative")
    g = _gen(generator)
    rows = []
    for r in w:
        total = r.sum()
        if total <= 0:
            raise RuntimeError("input: every row needs a positive total weight")
        if not replacement and num_samples > np.count_nonzero(r):
            raise RuntimeError(f"num_samples: cannot draw {num_samples} samples without replacement from "
                               f"{np.count_nonzero(r)} categories of non-zero weight")
        rows.append(g.choice(r.size, size=num_samples, replace=replacement, p=r / total))
    a = np.asarray(rows, dtype=np.int64).reshape(x.shape[:-1] + (num_samples,))
    return _place(a, x)


def _check(x):
    if not isinstance(x, Tensor):
        raise TypeError(f"input: expected a Tensor, got {type(x).__name__}")
    return x


def rand_like(input, *, dtype=None, device=None, generator=None):
    x = _check(input)
    return rand(x.shape, dtype=dtype or x.dtype, device=device or x.device, generator=generator)


def randn_like(input, *, dtype=None, device=None, generator=None):
    x = _check(input)
    return randn(x.shape, dtype=dtype or x.dtype, device=device or x.device, generator=generator)


def randint_like(input, low=0, high=None, *, dtype=None, device=None, generator=None):
    x = _check(input)
    if high is None:
        low, high = 0, low
    return randint(low, high, x.shape, dtype=dtype or x.dtype, device=device or x.device, generator=generator)


# ---- in-place fills (Tensor methods) ------------------------------------------------------------------------
def _fill(t, values):
    """Write host `values` into t's memory as an in-place op (refused on a leaf that requires grad outside
    no_grad, as every in-place op)."""
    t.copy_(Tensor(values.astype(t.dtype)).to(t.device))
    return t


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    if std < 0:
        raise RuntimeError(f"std: must be non-negative, got {std}")
    return _fill(self, _gen(generator).normal(mean, std, self.shape))


def uniform_(self, a=0.0, b=1.0, *, generator=None):
    if a > b:
        raise RuntimeError(f"uniform_: expected a <= b, got a={a}, b={b}")
    return _fill(self, _gen(generator).uniform(a, b, self.shape))


def bernoulli_(self, p=0.5, *, generator=None):
    return _fill(self, (_gen(generator).random(self.shape) < p))


def random_(self, low, high=None, *, generator=None):
    """Integers uniform in [low, high) (or [0, low) with one argument)."""
    if high is None:
        low, high = 0, low
    return _fill(self, _gen(generator).integers(low, high, self.shape))

