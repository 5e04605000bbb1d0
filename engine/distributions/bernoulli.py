"""Bernoulli(probs=None, logits=None): 1 with probability p, else 0."""
import numpy as np

from ..functions.math import clamp, where
from ..functions.shape import expand
from ..tensor import Tensor
from .distribution import Distribution, check, generator, host, param, place

__all__ = ["Bernoulli"]


def _softplus(x):
    """log(1 + exp(x)), smooth (its gradient is sigmoid(x) everywhere, also at 0) and without overflow: x
    itself past 40, where log1p(exp(x)) = x in float64 (+inf -> inf, -inf -> 0)."""
    return where(x > 40.0, x, clamp(x, max=40.0).exp().log1p())


class Bernoulli(Distribution):
    """probs in [0, 1] or logits (log-odds), any shape (the batch_shape); event_shape = (). sample gives 0.0 /
    1.0 in the parameters' dtype. log_prob(value) = log p (value 1) or log(1 - p) (value 0), from the logits
    without overflow; mean p, variance p (1 - p), entropy -p log p - (1 - p) log(1 - p) (0 at p = 0 or 1).
    logits = log p - log(1 - p) exactly (+-inf at p = 1 or 0; PyTorch clamps p to [eps, 1 - eps] first)."""

    _param_names = ("probs", "logits")

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("probs, logits: either `probs` or `logits` must be specified, but not both")
        super().__init__(validate_args=validate_args)
        if probs is not None:
            p = param("probs", probs)
            if self._validate_args:
                a = host(p)
                check((a >= 0) & (a <= 1), "probs", p, "probabilities in [0, 1]")
            self.probs = p
            with np.errstate(divide="ignore"):                 # p = 0 or 1: logits -inf or +inf
                self.logits = p.log() - (-p).log1p()
        else:
            lg = param("logits", logits)
            if self._validate_args:
                check(~np.isnan(host(lg)), "logits", lg, "logits that are not NaN")
            self.logits = lg
            self.probs = lg.sigmoid()
        self._batch_shape = tuple(self.probs.shape)

    @property
    def param_shape(self):
        return self._batch_shape

    @property
    def mean(self):
        return self.probs

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = generator().random(shape)
        return place((u < host(self.probs)).astype(self.probs.dtype), self.probs)

    def log_prob(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"value: expected a Tensor, got {type(value).__name__}")
        if self._validate_args:
            a = host(value)
            check((a == 0) | (a == 1), "value", value, "0 or 1 (the support)")
        shape = np.broadcast_shapes(tuple(value.shape), self._batch_shape)
        lg = expand(self.logits, *shape)
        return where(expand(value.detach(), *shape) == 1, -_softplus(-lg), -_softplus(lg))

    def entropy(self):
        p = self.probs
        inner = (p > 0) & (p < 1)
        lg = where(inner, self.logits, 0.0)                 # no inf - inf at p = 0 or 1, where the entropy is 0
        return where(inner, _softplus(lg) - p * lg, 0.0)

    def enumerate_support(self, expand=True):
        k = np.arange(2, dtype=self.probs.dtype).reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            k = np.broadcast_to(k, (2,) + self._batch_shape)
        return place(k, self.probs)
