"""The differentiable ops behind Tensor's operators and methods (+ - * / @ **, exp, log, sum, max, reshape,
permute, indexing, cat, clamp, writes into views), written with NumPy-compatible array calls so that they
serve NumPy and CuPy arrays alike. Each says what it keeps for backward.
"""
import numpy as np

from .autograd import Function
from .backend import array_module, device_of, to_device


def unbroadcast(g, shape):
    """Sum a broadcast gradient back to `shape`."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return a + b

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(g, ctx.shapes[1])


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return a - b

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(-g, ctx.shapes[1])


def _keep(ctx, a, b, a_for_db, b_for_da):
    """Keep only the operands the asked-for gradients need (so that changing the others in place is fine)."""
    need_a, need_b = ctx.needs_input_grad
    ctx.shapes = (np.shape(a), np.shape(b))
    ctx.a = a if need_b and a_for_db else None
    ctx.b = b if (need_a and b_for_da) or (need_b and not a_for_db) else None


class Mul(Function):
    """Keeps b if a wants a gradient, a if b does."""

    @staticmethod
    def forward(ctx, a, b):
        _keep(ctx, a, b, True, True)
        return a * b

    @staticmethod
    def backward(ctx, g):
        da = unbroadcast(g * ctx.b, ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        db = unbroadcast(g * ctx.a, ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return da, db


class Div(Function):
    """Keeps b, and a if b wants a gradient."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        ctx.a = a if ctx.needs_input_grad[1] else None
        ctx.b = b
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        da = unbroadcast(g / b, ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        db = unbroadcast(-g * a / (b * b), ctx.shapes[1]) if ctx.needs_input_grad[1] else None
        return da, db


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """a ** p for a Python scalar p; keeps a."""

    @staticmethod
    def forward(ctx, a, p):
        ctx.a, ctx.p = a, p
        return a ** p

    @staticmethod
    def backward(ctx, g):
        a, p = ctx.a, ctx.p
        return g * (p * a ** (p - 1)) if p != 0 else g * 0


class Exp(Function):
    """Keeps its output."""

    @staticmethod
    def forward(ctx, a):
        ctx.y = array_module(a).exp(a)
        return ctx.y

    @staticmethod
    def backward(ctx, g):
        return g * ctx.y


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.a = a
        return array_module(a).log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.a


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.a = a
        return abs(a)

    @staticmethod
    def backward(ctx, g):
        return g * array_module(ctx.a).sign(ctx.a)


class Clamp(Function):
    """a clipped to [lo, hi] (either may be None); the gradient passes where lo <= a <= hi, as in PyTorch."""

    @staticmethod
    def forward(ctx, a, lo, hi):
        xp = array_module(a)
        ctx.a, ctx.lo, ctx.hi = a, lo, hi
        y = a
        if lo is not None:
            y = xp.maximum(y, xp.asarray(lo, dtype=a.dtype) if not np.isscalar(lo) else lo)
        if hi is not None:
            y = xp.minimum(y, xp.asarray(hi, dtype=a.dtype) if not np.isscalar(hi) else hi)
        return y.astype(a.dtype, copy=False) if y is not a else y.copy()

    @staticmethod
    def backward(ctx, g):
        keep = True
        if ctx.lo is not None:
            keep = keep & (ctx.a >= ctx.lo)
        if ctx.hi is not None:
            keep = keep & (ctx.a <= ctx.hi)
        return g * keep if keep is not True else g, None, None


class MatMul(Function):
    """Keeps b if a wants a gradient, a if b does (and both shapes)."""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands need at least one dim")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not agree on the inner dim")
        ctx.a = a if ctx.needs_input_grad[1] else None
        ctx.b = b if ctx.needs_input_grad[0] else None
        ctx.ashape, ctx.bshape = a.shape, b.shape
        return a @ b

    @staticmethod
    def backward(ctx, g):
        ashape, bshape = ctx.ashape, ctx.bshape
        a_vec, b_vec = len(ashape) == 1, len(bshape) == 1      # vectors are promoted as matmul does
        if a_vec and b_vec:                                     # a dot product: g is 0-d
            return (g * ctx.b if ctx.needs_input_grad[0] else None), (g * ctx.a if ctx.needs_input_grad[1] else None)
        g2 = g[..., None, :] if a_vec else g
        g2 = g2[..., None] if b_vec else g2
        da = db = None
        if ctx.needs_input_grad[0]:
            b2 = ctx.b[:, None] if b_vec else ctx.b
            da = unbroadcast(g2 @ b2.swapaxes(-1, -2), (1,) + ashape if a_vec else ashape).reshape(ashape)
        if ctx.needs_input_grad[1]:
            a2 = ctx.a[None, :] if a_vec else ctx.a
            db = unbroadcast(a2.swapaxes(-1, -2) @ g2, bshape + (1,) if b_vec else bshape).reshape(bshape)
        return da, db


class Sum(Function):
    """Sum over `axis` (a tuple), in `dtype` when given (PyTorch sums integers in int64)."""

    @staticmethod
    def forward(ctx, a, axis, keepdims, dtype=None):
        ctx.shape, ctx.axis, ctx.keepdims, ctx.dtype = a.shape, axis, keepdims, a.dtype
        return a.sum(axis=axis, keepdims=keepdims, dtype=dtype)

    @staticmethod
    def backward(ctx, g):
        if not ctx.keepdims:
            g = g.reshape([1 if i in ctx.axis else n for i, n in enumerate(ctx.shape)])
        return array_module(g).broadcast_to(g, ctx.shape).astype(ctx.dtype)


class Max(Function):
    """Keeps the input and the maxima; ties share the gradient equally."""

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        y = a.max(axis=axis, keepdims=True)
        ctx.a, ctx.y, ctx.axis, ctx.keepdims = a, y, axis, keepdims
        return y if keepdims else y.reshape([n for i, n in enumerate(a.shape) if i not in axis])

    @staticmethod
    def backward(ctx, g):
        if not ctx.keepdims:
            g = g.reshape(ctx.y.shape)
        hit = ctx.a == ctx.y
        return hit * (g / hit.sum(axis=ctx.axis, keepdims=True)).astype(ctx.a.dtype)


class Reshape(Function):
    is_view = True

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"shape: cannot reshape a tensor of shape {a.shape} into {shape}") from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Permute(Function):
    is_view = True

    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(np.argsort(ctx.axes))


class Index(Function):
    """a[idx]; a view for basic indexing (ints, slices, None, ...), a copy for advanced indexing."""
    is_view = True

    @staticmethod
    def forward(ctx, a, idx):
        ctx.shape, ctx.idx = a.shape, idx
        return a[idx]

    @staticmethod
    def backward(ctx, g):
        xp = array_module(g)
        dx = xp.zeros(ctx.shape, dtype=g.dtype)
        xp.add.at(dx, ctx.idx, g)          # repeated integer indices accumulate
        return dx


def view_of(array, view_fns):
    """Replay a tensor's chain of view ops (Index/Reshape/Permute with their arguments) on a raw array."""
    for cls, kw in view_fns:
        if cls is Index:
            array = array[kw["idx"]]
        elif cls is Reshape:
            array = array.reshape(kw["shape"])
        else:
            array = array.transpose(kw["axes"])
    return array


class SetView(Function):
    """base with the region `view_of(base, fns)[idx]` replaced by `value` (broadcast): the recorded form of an
    in-place write into part of a tensor (`t[idx] = v`, or an in-place op on a view). Keeps only indices."""

    @staticmethod
    def forward(ctx, base, value, fns, idx):
        ctx.fns, ctx.idx = fns, idx
        ctx.vshape = np.shape(value)
        ctx.vdtype = getattr(value, "dtype", None)
        out = base.copy()
        view_of(out, fns)[idx] = value
        return out

    @staticmethod
    def backward(ctx, g):
        gb = g.copy()
        view_of(gb, ctx.fns)[ctx.idx] = 0
        gv = None
        if ctx.needs_input_grad[1]:
            region = view_of(g, ctx.fns)[ctx.idx]
            gv = unbroadcast(region, ctx.vshape).astype(ctx.vdtype, copy=False)
        return gb, gv


class Clone(Function):
    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, g):
        return g


class ToDevice(Function):
    """A copy on another device; its gradient goes back to the source's device."""
    moves_device = True

    @staticmethod
    def forward(ctx, a, device):
        ctx.src = device_of(a)
        return to_device(a, device)

    @staticmethod
    def backward(ctx, g):
        return to_device(g, ctx.src)


class Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)


class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        ctx.bounds = [int(b) for b in np.cumsum([a.shape[axis] for a in arrays])[:-1]]
        return array_module(arrays[0]).concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(array_module(g).split(g, ctx.bounds, axis=ctx.axis))
