"""Categorical(probs=None, logits=None): one of K categories, probabilities along the last dim."""
import numpy as np

from ..functions.math import clamp
from ..functions.shape import expand as _expand
from ..tensor import Tensor
from .distribution import Distribution, check, generator, host, param, place

__all__ = ["Categorical"]


class Categorical(Distribution):
    """probs (..., K) (non-negative, normalized along the last dim) or logits (..., K) (normalized with
    log-sum-exp); batch_shape = probs.shape[:-1], event_shape = (). sample gives int64 indices; log_prob(value)
    = log p[value]; mean and variance are NaN (PyTorch's); entropy = -sum p log p (0 log 0 = 0).
    logits = log(probs) exactly (-inf for a zero probability; PyTorch clamps probs to [eps, 1 - eps] first)."""

    _param_names = ("probs", "logits")

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("probs, logits: either `probs` or `logits` must be specified, but not both")
        super().__init__(validate_args=validate_args)
        if probs is not None:
            p = param("probs", probs, min_ndim=1)
            if self._validate_args:
                a = host(p)
                check((a >= 0) & np.isfinite(a), "probs", p, "finite non-negative probabilities")
                check(a.sum(-1) > 0, "probs", p, "a positive sum along the last dim")
            self.probs = p / p.sum(-1, keepdim=True)
            with np.errstate(divide="ignore"):                 # a zero probability: logit -inf
                self.logits = self.probs.log()
        else:
            lg = param("logits", logits, min_ndim=1)
            if self._validate_args:
                a = host(lg)
                check(~np.isnan(a) & (a < np.inf), "logits", lg, "logits that are not NaN or +inf")
                check(np.isfinite(a).any(-1), "logits", lg, "at least one finite logit along the last dim")
            self.logits = lg - lg.logsumexp(-1, keepdim=True)
            self.probs = self.logits.exp()
        self._num_events = self.probs.shape[-1]
        self._batch_shape = tuple(self.probs.shape[:-1])

    @property
    def param_shape(self):
        return tuple(self.probs.shape)

    @property
    def mean(self):
        return place(np.full(self._batch_shape, np.nan, self.probs.dtype), self.probs)

    @property
    def variance(self):
        return self.mean

    def sample(self, sample_shape=()):
        """int64 indices of shape sample_shape + batch_shape, by inverting each row's CDF (float64) on
        uniforms from the engine's generator; a zero-probability category is never drawn."""
        shape = self._extended_shape(sample_shape)
        n = int(np.prod(shape[:len(shape) - len(self._batch_shape)], dtype=np.int64))
        rows = host(self.probs).reshape(-1, self._num_events)
        cdf = np.cumsum(rows, axis=-1)
        cdf /= cdf[:, -1:]                     # the last nonzero category ends at exactly 1
        u = generator().random((n, rows.shape[0]))
        out = np.empty((n, rows.shape[0]), np.int64)
        for b in range(rows.shape[0]):
            out[:, b] = np.searchsorted(cdf[b], u[:, b], side="right")
        return place(out.reshape(shape), self.probs)

    def _index(self, value):
        """value as int64 indices (checked against the support), broadcast with batch_shape."""
        if not isinstance(value, Tensor):
            raise TypeError(f"value: expected a Tensor, got {type(value).__name__}")
        if self._validate_args:
            a = host(value)
            check((a == np.round(a)) & (a >= 0) & (a < self._num_events), "value", value,
                  f"integers in [0, {self._num_events - 1}] (the support)")
        shape = np.broadcast_shapes(tuple(value.shape), self._batch_shape)
        return _expand(value.long(), *shape), shape

    def log_prob(self, value):
        idx, shape = self._index(value)
        logits = _expand(self.logits, *(shape + (self._num_events,)))
        return logits.gather(-1, idx.unsqueeze(-1)).squeeze(-1)

    def entropy(self):
        lg = clamp(self.logits, min=float(np.finfo(self.logits.dtype).min))
        return -(self.probs * lg).sum(-1)

    def enumerate_support(self, expand=True):
        k = np.arange(self._num_events, dtype=np.int64).reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            k = np.broadcast_to(k, (self._num_events,) + self._batch_shape)
        return place(k, self.probs)
