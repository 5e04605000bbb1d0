"""Elementwise differentiable ops beyond Tensor's operators: unary math (sin, log2, sqrt, ...), powers with a
tensor exponent, maximum/minimum, where, remainder. NumPy-compatible array calls, so each serves NumPy and
CuPy arrays alike; broadcast gradients are summed back to each input's shape. Each says what it keeps.
"""
import math

import numpy as np

from ..autograd import Function
from ..backend import array_module
from ..tensor_ops import unbroadcast


def _unary(name, fwd, grad, keeps):
    """A Function y = fwd(xp, a) with dx = grad(xp, a, y, g); it keeps only `keeps` ("a", "y" or "")."""

    class Op(Function):
        @staticmethod
        def forward(ctx, a):
            y = fwd(array_module(a), a)
            ctx.a = a if "a" in keeps else None
            ctx.y = y if "y" in keeps else None
            return y

        @staticmethod
        def backward(ctx, g):
            return grad(array_module(g), ctx.a, ctx.y, g)

    Op.__name__ = Op.__qualname__ = name
    return Op


_LN2, _LN10 = math.log(2.0), math.log(10.0)


def _zero_grad(xp, a, y, g):
    return xp.zeros_like(g)


# name: (forward, gradient, what it keeps)
_UNARY = {
    "Sqrt": (lambda xp, a: xp.sqrt(a), lambda xp, a, y, g: g / (2 * y), "y"),
    "Rsqrt": (lambda xp, a: 1 / xp.sqrt(a), lambda xp, a, y, g: -0.5 * g * y * y * y, "y"),
    "Log2": (lambda xp, a: xp.log2(a), lambda xp, a, y, g: g / (a * _LN2), "a"),
    "Log10": (lambda xp, a: xp.log10(a), lambda xp, a, y, g: g / (a * _LN10), "a"),
    "Log1p": (lambda xp, a: xp.log1p(a), lambda xp, a, y, g: g / (1 + a), "a"),
    "Expm1": (lambda xp, a: xp.expm1(a), lambda xp, a, y, g: g * (y + 1), "y"),
    "Exp2": (lambda xp, a: xp.exp2(a), lambda xp, a, y, g: g * y * _LN2, "y"),
    "Sin": (lambda xp, a: xp.sin(a), lambda xp, a, y, g: g * xp.cos(a), "a"),
    "Cos": (lambda xp, a: xp.cos(a), lambda xp, a, y, g: -g * xp.sin(a), "a"),
    "Tan": (lambda xp, a: xp.tan(a), lambda xp, a, y, g: g * (1 + y * y), "y"),
    "Sinh": (lambda xp, a: xp.sinh(a), lambda xp, a, y, g: g * xp.cosh(a), "a"),
    "Cosh": (lambda xp, a: xp.cosh(a), lambda xp, a, y, g: g * xp.sinh(a), "a"),
    "Asin": (lambda xp, a: xp.arcsin(a), lambda xp, a, y, g: g / xp.sqrt(1 - a * a), "a"),
    "Acos": (lambda xp, a: xp.arccos(a), lambda xp, a, y, g: -g / xp.sqrt(1 - a * a), "a"),
    "Atan": (lambda xp, a: xp.arctan(a), lambda xp, a, y, g: g / (1 + a * a), "a"),
    "Reciprocal": (lambda xp, a: 1 / a, lambda xp, a, y, g: -g * y * y, "y"),
    "Square": (lambda xp, a: a * a, lambda xp, a, y, g: 2 * g * a, "a"),
    "Sign": (lambda xp, a: xp.sign(a), _zero_grad, ""),
    "Floor": (lambda xp, a: xp.floor(a), _zero_grad, ""),
    "Ceil": (lambda xp, a: xp.ceil(a), _zero_grad, ""),
    "Round": (lambda xp, a: xp.round(a), _zero_grad, ""),
    "Trunc": (lambda xp, a: xp.trunc(a), _zero_grad, ""),
}
UNARY = {name: _unary(name, *spec) for name, spec in _UNARY.items()}


class PowTensor(Function):
    """a ** b, either a tensor (or a number); keeps a, b and the output as the asked-for gradients need.
    PyTorch's conventions at the edges: da = 0 where b == 0, db = 0 where a == 0 and b >= 0."""

    @staticmethod
    def forward(ctx, a, b):
        xp = array_module(a if hasattr(a, "shape") else b)
        y = xp.power(a, b)
        need_a, need_b = ctx.needs_input_grad
        ctx.shapes = (np.shape(a), np.shape(b))
        ctx.a = a if need_a or need_b else None
        ctx.b = b if need_a or need_b else None
        ctx.y = y if need_b else None
        return y

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        a, b = ctx.a, ctx.b
        da = db = None
        if ctx.needs_input_grad[0]:
            da = xp.where(b == 0, 0, g * b * xp.power(a, b - 1)).astype(g.dtype, copy=False)
            da = unbroadcast(da, ctx.shapes[0])
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                db = xp.where((a == 0) & (b >= 0), 0, g * ctx.y * xp.log(a)).astype(g.dtype, copy=False)
            db = unbroadcast(db, ctx.shapes[1])
        return da, db


class _Extremum(Function):
    """maximum/minimum of a and b; keeps both. Ties split the gradient in halves, as PyTorch does."""
    pick = None

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        ctx.a, ctx.b = a, b
        return getattr(array_module(a), cls.pick)(a, b)

    @classmethod
    def backward(cls, ctx, g):
        xp = array_module(g)
        a, b = ctx.a, ctx.b
        win = (a > b) if cls.pick == "maximum" else (a < b)
        tie = (a == b) * 0.5
        da = unbroadcast(g * (win + tie), ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        db = unbroadcast(g * (xp.logical_not(win) & (a != b)) + g * tie, ctx.shapes[1]) \
            if ctx.needs_input_grad[1] else None
        return (None if da is None else da.astype(g.dtype, copy=False)), \
               (None if db is None else db.astype(g.dtype, copy=False))


class Maximum(_Extremum):
    pick = "maximum"


class Minimum(_Extremum):
    pick = "minimum"


class Where(Function):
    """where(cond, a, b), cond a raw boolean array; keeps cond only."""

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.cond = cond
        ctx.shapes = (np.shape(a), np.shape(b))
        return array_module(cond).where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        zero = xp.zeros((), dtype=g.dtype)
        da = unbroadcast(xp.where(ctx.cond, g, zero), ctx.shapes[0]) if ctx.needs_input_grad[1] else None
        db = unbroadcast(xp.where(ctx.cond, zero, g), ctx.shapes[1]) if ctx.needs_input_grad[2] else None
        return None, da, db


class Remainder(Function):
    """a - floor(a / b) * b (Python's %, the sign of b); keeps a and b if b wants a gradient."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        ctx.a, ctx.b = (a, b) if ctx.needs_input_grad[1] else (None, None)
        return array_module(a if hasattr(a, "shape") else b).remainder(a, b)

    @staticmethod
    def backward(ctx, g):
        da = unbroadcast(g, ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        db = None
        if ctx.needs_input_grad[1]:
            db = unbroadcast(-g * array_module(g).floor(ctx.a / ctx.b), ctx.shapes[1])
        return da, db


class FloorDivide(Function):
    """floor(a / b); like PyTorch, it has no derivative (backward raises)."""

    @staticmethod
    def forward(ctx, a, b):
        return array_module(a if hasattr(a, "shape") else b).floor_divide(a, b)

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("backward: the derivative of floor_divide (//) is not implemented (it is zero almost "
                           "everywhere); detach() its inputs")
