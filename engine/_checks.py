"""Argument checks shared by every op. Each raises TypeError/ValueError naming the argument.

They accept Tensors or raw arrays (anything with .shape and .dtype), and run before any kernel.
"""
import numbers

import numpy as np

from .backend import FLOAT_DTYPES, device_of

_Tensor = None


def _tensor_class():
    global _Tensor
    from .tensor import Tensor
    _Tensor = Tensor
    return Tensor


def _arr(t):
    return getattr(t, "_data", t) if hasattr(t, "_ctx") else t


def check_tensor(name, t):
    if not isinstance(t, _Tensor or _tensor_class()):
        raise TypeError(f"{name}: expected a Tensor, got {type(t).__name__}")
    return t


def check_int(name, t):
    """An integer tensor (class labels, indices, lengths)."""
    if np.dtype(t.dtype).kind not in "iu":
        raise TypeError(f"{name}: expected an integer dtype, got {np.dtype(t.dtype)}")
    return t


def check_ndim(name, t, *ndims):
    if t.ndim not in ndims:
        want = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{name}: expected {want} dims, got {t.ndim} (shape {tuple(t.shape)})")
    return t


def check_same_device(**named):
    items = [(k, device_of(_arr(v))) for k, v in named.items() if v is not None]
    k0, d0 = items[0]
    for k, d in items[1:]:
        if d != d0:
            raise RuntimeError(f"{k} is on device '{d}' but {k0} is on '{d0}': move them to one device first")


def check_float_input(name, v):
    """One argument of an op is a float tensor (most ops have one; check_float_inputs runs this per tensor)."""
    if not isinstance(v, _Tensor or _tensor_class()):
        raise TypeError(f"{name}: expected a Tensor, got {type(v).__name__}")
    if v._data.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: unsupported dtype {v._data.dtype}; expected float32 or float64")


def check_float_inputs(**named):
    """The usual preamble of an op: every named tensor (None skipped) is a float tensor of one dtype, on one
    device. One pass, no allocation: it runs on every op call, so its cost is part of every op's overhead."""
    k0 = dt0 = dev0 = None
    for k, v in named.items():
        if v is None:
            continue
        check_float_input(k, v)
        a = v._data
        dt = a.dtype
        dev = "cpu" if type(a) is np.ndarray else device_of(a)
        if k0 is None:
            k0, dt0, dev0 = k, dt, dev
            continue
        if dt != dt0:
            raise TypeError(f"{k}: dtype {dt} does not match {k0}'s dtype {dt0}")
        if dev != dev0:
            raise RuntimeError(f"{k} is on device '{dev}' but {k0} is on '{dev0}': move them to one device first")


def as_pair(name, v, *, minimum=None):
    """An int or a pair of ints, as a tuple of two ints, each at least `minimum`."""
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        v = (int(v), int(v))
    elif (isinstance(v, (tuple, list)) and len(v) == 2
          and all(isinstance(e, numbers.Integral) and not isinstance(e, bool) for e in v)):
        v = (int(v[0]), int(v[1]))
    else:
        raise TypeError(f"{name}: expected an int or a pair of ints, got {v!r}")
    if minimum is not None and min(v) < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {v}")
    return v


def check_positive_int(name, v, minimum=1):
    if not isinstance(v, numbers.Integral) or isinstance(v, bool):
        raise TypeError(f"{name}: expected an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {v}")
    return int(v)


def check_probability(name, p):
    if not isinstance(p, numbers.Real) or not (0.0 <= p <= 1.0):
        raise ValueError(f"{name}: expected a probability in [0, 1], got {p!r}")
    return float(p)


def check_reduction(reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def normalize_dim(name, dim, ndim):
    if type(dim) is int and -ndim <= dim < ndim:          # the common case, without the ABC check
        return dim % ndim
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"{name}: expected an int, got {dim!r}")
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise ValueError(f"{name}: {dim} is out of range for a tensor of {ndim} dims")
    return int(dim) % max(ndim, 1)
