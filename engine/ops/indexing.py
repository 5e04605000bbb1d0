"""Differentiable gathers, scans and tilings behind torch.gather / sort / max(dim) / cumsum / norm / repeat /
expand. NumPy-compatible array calls (NumPy and CuPy alike). Each says what it keeps for backward.
"""
import numpy as np

from ..autograd import Function
from ..backend import array_module
from ..tensor_ops import unbroadcast


class TakeAlong(Function):
    """out = take_along_axis(a, index, axis) (torch.gather; also the values of sort, max(dim), topk).
    Keeps the index; backward scatter-adds into zeros (repeated indices accumulate)."""

    @staticmethod
    def forward(ctx, a, index, axis):
        ctx.index, ctx.axis, ctx.shape = index, axis, a.shape
        return array_module(a).take_along_axis(a, index, axis=axis)

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        dx = xp.zeros(ctx.shape, dtype=g.dtype)
        idx = [xp.arange(n).reshape([-1 if d == i else 1 for d in range(g.ndim)]) for i, n in enumerate(g.shape)]
        idx[ctx.axis] = ctx.index
        xp.add.at(dx, tuple(idx), g)
        return dx, None


class CumSum(Function):
    """Running sum along an axis; backward is the reversed running sum of the gradient. Keeps nothing."""

    @staticmethod
    def forward(ctx, a, axis, dtype):
        ctx.axis, ctx.dtype = axis, a.dtype
        return array_module(a).cumsum(a, axis=axis, dtype=dtype)

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        r = xp.flip(xp.cumsum(xp.flip(g, axis=ctx.axis), axis=ctx.axis), axis=ctx.axis)
        return r.astype(ctx.dtype, copy=False)


class Norm(Function):
    """Vector p-norm over `axes` (p > 0 or inf; p = 0 counts non-zeros). Keeps a and the norm.
    The gradient at a zero vector is zero (PyTorch's subgradient)."""

    @staticmethod
    def forward(ctx, a, p, axes, keepdims):
        xp = array_module(a)
        m = xp.abs(a)
        if p == np.inf:
            y = m.max(axis=axes, keepdims=True)
        elif p == -np.inf:
            y = m.min(axis=axes, keepdims=True)
        elif p == 0:
            y = (m != 0).sum(axis=axes, keepdims=True).astype(a.dtype)
        elif p == 1:
            y = m.sum(axis=axes, keepdims=True)
        elif p == 2:
            y = xp.sqrt((a * a).sum(axis=axes, keepdims=True))
        else:
            y = (m ** p).sum(axis=axes, keepdims=True) ** (1.0 / p)
        ctx.a, ctx.y, ctx.p, ctx.axes, ctx.keepdims = a, y, p, axes, keepdims
        return y if keepdims else y.reshape([n for i, n in enumerate(y.shape) if i not in axes])

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        a, y, p = ctx.a, ctx.y, ctx.p
        if not ctx.keepdims:
            g = g.reshape(y.shape)
        if p == 0:
            return xp.zeros_like(a)
        if p in (np.inf, -np.inf):
            hit = (xp.abs(a) == y)
            return (xp.sign(a) * hit * (g / hit.sum(axis=ctx.axes, keepdims=True))).astype(a.dtype, copy=False)
        if p == 1:
            return (xp.sign(a) * g).astype(a.dtype, copy=False)
        safe = xp.where(y == 0, 1, y)
        if p == 2:
            d = a / safe
        else:
            d = xp.sign(a) * xp.abs(a) ** (p - 1) / safe ** (p - 1)
        return xp.where(y == 0, 0, g * d).astype(a.dtype, copy=False)


class Tile(Function):
    """torch's Tensor.repeat: `a` (padded with leading 1-dims to len(reps)) tiled reps times per dim.
    Backward sums the copies. Keeps shapes only."""

    @staticmethod
    def forward(ctx, a, reps):
        xp = array_module(a)
        shape = (1,) * (len(reps) - a.ndim) + tuple(a.shape)
        ctx.shape, ctx.reps, ctx.orig = shape, reps, a.shape
        return xp.tile(a.reshape(shape), reps)

    @staticmethod
    def backward(ctx, g):
        split = []
        for r, n in zip(ctx.reps, ctx.shape):
            split += [r, n]
        g = g.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return g.reshape(ctx.orig)


class Expand(Function):
    """A broadcast view of `a` at `shape` (read-only, as NumPy's broadcast_to); backward sums the gradient
    back to a's shape. Keeps the shape only."""

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return array_module(a).broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shape)


class Flip(Function):
    """a reversed along `axes` (a copy, as torch.flip); backward flips the gradient back."""

    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return array_module(a).flip(a, axis=axes).copy()

    @staticmethod
    def backward(ctx, g):
        return array_module(g).flip(g, axis=ctx.axes)
