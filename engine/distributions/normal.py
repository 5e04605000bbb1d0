"""Normal(loc, scale): the Gaussian N(loc, scale^2)."""
import math

import numpy as np

from ..autograd import no_grad
from ..functions.dtypes import result_type
from ..functions.shape import expand
from ..tensor import Tensor
from .distribution import Distribution, check, generator, host, param, place

__all__ = ["Normal"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class Normal(Distribution):
    """loc and scale (> 0), Tensors or numbers, broadcast together (the batch_shape); event_shape = ().
    sample draws without a gradient, rsample = loc + eps * scale keeps the graph (the reparameterization
    trick). log_prob(value) = -(value - loc)^2 / (2 scale^2) - log scale - log sqrt(2 pi); mean loc, variance
    scale^2, stddev scale, entropy 1/2 + log sqrt(2 pi) + log scale. A number takes the dtype and device of
    a Tensor argument (float32 on the CPU when both are numbers)."""

    has_rsample = True
    _param_names = ("loc", "scale")

    def __init__(self, loc, scale, validate_args=None):
        lt, st = param("loc", loc), param("scale", scale)
        tensors = [t for t, given in ((lt, loc), (st, scale)) if isinstance(given, Tensor)]
        dt = result_type(*tensors) if tensors else lt.dtype
        if len({t.device for t in tensors}) > 1:
            raise RuntimeError(f"loc is on device '{lt.device}' but scale is on '{st.device}': move them to one "
                               f"device first")
        dev = tensors[0].device if tensors else "cpu"              # a number joins the tensor's device
        loc, scale = lt.to(dt).to(dev), st.to(dt).to(dev)
        shape = np.broadcast_shapes(tuple(loc.shape), tuple(scale.shape))
        super().__init__(shape, (), validate_args)
        if self._validate_args:
            check(~np.isnan(host(loc)), "loc", loc, "real numbers (not NaN)")
            check(host(scale) > 0, "scale", scale, "positive numbers")
        self.loc, self.scale = expand(loc, *shape), expand(scale, *shape)

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return self.scale ** 2

    @property
    def stddev(self):
        return self.scale

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = place(generator().standard_normal(shape).astype(self.loc.dtype), self.loc)
        return self.loc + eps * self.scale

    def sample(self, sample_shape=()):
        with no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"value: expected a Tensor, got {type(value).__name__}")
        if self._validate_args:
            check(~np.isnan(host(value)), "value", value, "real numbers (not NaN)")
        return -((value - self.loc) ** 2) / (2 * self.variance) - self.scale.log() - _HALF_LOG_2PI

    def entropy(self):
        return 0.5 + _HALF_LOG_2PI + self.scale.log()
