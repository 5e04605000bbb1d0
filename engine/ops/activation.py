"""Activations and dropout: forward on the backend's kernel, backward from the saved output (relu, sigmoid,
tanh), input (gelu) or mask (dropout)."""
import numbers

import numpy as np

from .._checks import check_float_input, check_probability
from ..autograd import Function
from ..backend import kernels_for
from ..tensor import default_generator

__all__ = ["relu", "sigmoid", "tanh", "gelu", "dropout"]


def _pointwise(name):
    """A Function whose forward is `<name>_fwd(x) -> y` and backward `<name>_bwd(dout, y) -> dx`."""
    fwd, bwd = f"{name}_fwd", f"{name}_bwd"

    class Op(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.y = getattr(kernels_for(x), fwd)(x)
            return ctx.y

        @staticmethod
        def backward(ctx, dout):
            return getattr(kernels_for(ctx.y), bwd)(dout, ctx.y)   # not dout: a 0-d one may be a NumPy scalar

    Op.__name__ = Op.__qualname__ = name.capitalize()
    return Op


Relu, Sigmoid, Tanh = _pointwise("relu"), _pointwise("sigmoid"), _pointwise("tanh")


def relu(input):
    """max(x, 0), any shape (0-d too). The gradient at exactly 0 is 0; relu(NaN) is NaN and passes the
    gradient, as in PyTorch."""
    check_float_input("input", input)
    return Relu.apply(input)


def sigmoid(input):
    """1 / (1 + exp(-x)), evaluated without overflow for any x."""
    check_float_input("input", input)
    return Sigmoid.apply(input)


def tanh(input):
    check_float_input("input", input)
    return Tanh.apply(input)


class Gelu(Function):
    @staticmethod
    def forward(ctx, x, approximate):
        ctx.x, ctx.approximate = x, approximate
        return kernels_for(x).gelu_fwd(x, approximate)

    @staticmethod
    def backward(ctx, dout):
        return kernels_for(ctx.x).gelu_bwd(dout, ctx.x, ctx.approximate), None


def gelu(input, approximate="none"):
    """PyTorch's GELU, any shape: 'none' is x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); 'tanh' is
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Both are evaluated without cancellation for negative x
    (kernels/reference/activation.py), so tiny values are accurate where PyTorch's rounds them to 0.
    gelu(-inf) is NaN and the gradient at +-inf is NaN, as PyTorch's; a huge finite x has gradient 1 (x > 0)
    or 0 (x < 0). Saves x for backward."""
    check_float_input("input", input)
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(input, approximate)


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, p, generator):
        # one seed from the host generator (drawn here, in the op, so that a step replayed by engine.compile
        # draws a new one each time); the mask is a counter hash of (seed, element), drawn where x is
        generator = generator if generator is not None else default_generator()
        y, ctx.mask = kernels_for(x).dropout_fwd(x, int(generator.integers(0, 2**63 - 1)), p)
        ctx.p = p
        return y

    @staticmethod
    def backward(ctx, dout):
        return kernels_for(ctx.mask).dropout_bwd(dout, ctx.mask, ctx.p)


def dropout(input, p=0.5, training=True, generator=None):
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p). A dropped element
    is exactly 0, also where the input is inf or NaN (PyTorch multiplies by the mask: NaN there).

    Off (identity) when `training` is False or p == 0. Each call takes one seed from `generator` (a NumPy
    Generator) or the engine's global one (`engine.manual_seed`); the mask is a counter hash of (seed,
    element index) computed on the tensor's device, so "cpu" and "cuda" drop the same elements for the same
    seed and nothing is copied to the GPU. Backward reuses the forward's mask."""
    check_float_input("input", input)
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"p: expected a float, got {p!r}")
    check_probability("p", p)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training: expected a bool, got {training!r}")
    if not training or p == 0:
        return input
    return Dropout.apply(input, float(p), generator)
