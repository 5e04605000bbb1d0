"""The base class of engine.distributions and what its distributions share: parameter and value checks,
sample shapes, and drawing on the engine's generator.

As in PyTorch, a distribution has a batch_shape (independent distributions side by side) and an event_shape
(the shape of one draw: () for scalar distributions, (K,) for Multinomial); sample(sample_shape) returns
sample_shape + batch_shape + event_shape. Samples come from the engine's generator (engine.manual_seed), so
their values differ from PyTorch's while their distribution is the same; they carry no gradient (Normal's
rsample does). log_prob, entropy, mean and variance are built from engine ops, so they are differentiable
in the parameters. Arguments are validated by default (validate_args=False skips it, as in PyTorch): a bad
parameter or a value outside the support raises ValueError naming it.
"""
import numbers

import numpy as np

from ..backend import to_device
from ..creation import default_generator
from ..tensor import Tensor, float32

__all__ = ["Distribution"]


class Distribution:
    """Base class: batch_shape, event_shape, sample, log_prob, mean, variance, stddev, entropy."""

    has_rsample = False
    _validate_default = True

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = tuple(int(n) for n in batch_shape)
        self._event_shape = tuple(int(n) for n in event_shape)
        if validate_args is not None and not isinstance(validate_args, (bool, np.bool_)):
            raise TypeError(f"validate_args: expected a bool or None, got {validate_args!r}")
        self._validate_args = self._validate_default if validate_args is None else bool(validate_args)

    @staticmethod
    def set_default_validate_args(value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"value: expected a bool, got {value!r}")
        Distribution._validate_default = bool(value)

    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return self._event_shape

    def _extended_shape(self, sample_shape=()):
        return sample_shape_of(sample_shape) + self._batch_shape + self._event_shape

    def sample(self, sample_shape=()):
        raise NotImplementedError(f"{type(self).__name__} has no sampler")

    def rsample(self, sample_shape=()):
        raise NotImplementedError(f"{type(self).__name__} has no reparameterized sampler (rsample)")

    def sample_n(self, n):
        return self.sample((n,))

    def log_prob(self, value):
        raise NotImplementedError(f"{type(self).__name__} has no log_prob")

    def entropy(self):
        raise NotImplementedError(f"{type(self).__name__} has no entropy")

    @property
    def mean(self):
        raise NotImplementedError(f"{type(self).__name__} has no mean")

    @property
    def variance(self):
        raise NotImplementedError(f"{type(self).__name__} has no variance")

    @property
    def stddev(self):
        return self.variance.sqrt()

    def perplexity(self):
        return self.entropy().exp()

    def __repr__(self):
        parts = []
        for name in self._param_names:
            v = self.__dict__.get(name)
            if v is None:
                continue
            parts.append(f"{name}: {v.item() if v.numel() == 1 and v.ndim == 0 else v.shape}")
        return f"{type(self).__name__}({', '.join(parts)})"

    _param_names = ()


# ---- helpers shared by the distributions ----------------------------------------------------------------
def sample_shape_of(sample_shape):
    """A sample shape as a tuple of non-negative ints (a tuple, list or Tensor.shape, as PyTorch's Size)."""
    if isinstance(sample_shape, (tuple, list)) and all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 0 for n in sample_shape):
        return tuple(int(n) for n in sample_shape)
    raise TypeError(f"sample_shape: expected a tuple of non-negative ints such as (10000,), got {sample_shape!r}")


def param(name, v, min_ndim=0):
    """A distribution parameter as a float Tensor: a Tensor as it is (an int one becomes float32, as
    PyTorch's), a number or a list as a float32 one."""
    if isinstance(v, Tensor):
        t = v if v.dtype.kind == "f" else v.to(float32)
    elif isinstance(v, numbers.Real) and not isinstance(v, bool):
        t = Tensor(np.asarray(v, dtype=float32))
    else:
        raise TypeError(f"{name}: expected a Tensor or a number, got {type(v).__name__}")
    if t.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dim(s), got shape {t.shape}")
    return t


def host(t):
    """A tensor's values as a float64 NumPy array (for checks and samplers; no gradient)."""
    return np.asarray(t.detach().cpu().numpy(), dtype=np.float64)


def check(ok, name, t, what):
    """Raise ValueError naming `name` unless every element of the boolean array `ok` holds."""
    if not np.all(ok):
        raise ValueError(f"{name}: expected {what}, got {'a tensor of shape ' + str(t.shape) if t.numel() > 6 else t}")


def place(array, like):
    """A host array as a tensor on `like`'s device."""
    return Tensor(to_device(np.ascontiguousarray(array).reshape(np.shape(array)), like.device))   # 0-d stays 0-d


def generator():
    return default_generator()
