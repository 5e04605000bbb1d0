"""Multinomial(total_count, probs=None, logits=None): counts of total_count draws from K categories."""
import math
import numbers

import numpy as np

from ..functions.math import where
from ..functions.shape import expand
from ..tensor import Tensor
from .categorical import Categorical
from .distribution import Distribution, check, generator, host, place

__all__ = ["Multinomial"]

_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])


class Multinomial(Distribution):
    """total_count (an int >= 0) draws among K categories with probs (..., K) (normalized along the last dim)
    or logits; batch_shape = probs.shape[:-1], event_shape = (K,). sample(sample_shape) gives counts (the
    probs' float dtype) of shape sample_shape + batch_shape + (K,), each event summing to total_count.
    mean = n p, variance = n p (1 - p). log_prob(value) = log((sum x)! / prod x_i!) + sum x_i log p_i, as
    PyTorch's (a zero count of a zero-probability category adds 0), differentiable in the probabilities.
    entropy is not implemented."""

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if isinstance(total_count, bool) or not isinstance(total_count, numbers.Integral):
            raise TypeError(f"total_count: expected an int, got {total_count!r} (inhomogeneous total_count is "
                            f"not supported)")
        if total_count < 0:
            raise ValueError(f"total_count: expected a non-negative int, got {total_count}")
        self.total_count = int(total_count)
        self._categorical = Categorical(probs=probs, logits=logits, validate_args=validate_args)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:], validate_args)

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def param_shape(self):
        return self._categorical.param_shape

    @property
    def mean(self):
        return self.probs * self.total_count

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        p = host(self.probs)
        p /= p.sum(-1, keepdims=True)          # exactly normalized in float64, as NumPy's sampler wants
        counts = generator().multinomial(self.total_count, p, size=shape[:-1])
        return place(counts.astype(self.probs.dtype).reshape(shape), self.probs)

    def log_prob(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"value: expected a Tensor, got {type(value).__name__}")
        if value.ndim < 1 or value.shape[-1] != self._event_shape[0]:
            raise ValueError(f"value: expected counts of the {self._event_shape[0]} categories along the last "
                             f"dim, got shape {value.shape}")
        a = host(value)
        if self._validate_args:
            check((a >= 0).all(-1) & (a.sum(-1) <= self.total_count), "value", value,
                  f"non-negative counts summing to at most total_count = {self.total_count} (the support)")
        shape = np.broadcast_shapes(tuple(value.shape), self.param_shape)
        logits = expand(self.logits, *shape)
        v = expand(value.detach().to(logits.dtype), *shape)
        logits = where((v == 0) & (logits == -np.inf), 0.0, logits)
        a = np.broadcast_to(a, shape)
        const = _lgamma(a.sum(-1) + 1) - _lgamma(a + 1).sum(-1)
        return (logits * v).sum(-1) + place(const.astype(logits.dtype), logits)
