"""Tensor methods that are the torch.* functions with the tensor first (x.sin(), x.cumsum(0), x.gather(1, i),
x.normal_(0, 0.01), ...). engine/tensor.py calls install(Tensor) once; methods Tensor defines itself win.
"""
import numpy as np

from . import linalg, math, random, reduce, shape

_SAME = {
    math: ("absolute", "neg", "negative", "exp2", "expm1", "log2", "log10", "log1p", "rsqrt", "sin", "cos", "tan",
           "sinh", "cosh", "asin", "acos", "atan", "arcsin", "arccos", "arctan", "reciprocal", "square", "sign",
           "floor", "ceil", "round", "trunc", "isnan", "isinf", "isfinite", "logical_not", "logical_and",
           "logical_or", "logical_xor", "bitwise_not", "bitwise_and", "bitwise_or", "bitwise_xor", "add", "sub",
           "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide", "remainder", "pow",
           "float_power", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge", "greater", "less",
           "greater_equal", "less_equal", "not_equal", "masked_fill", "isclose", "allclose", "equal"),
    reduce: ("var", "std", "amax", "amin", "norm", "cumsum", "all", "any", "sort", "argsort", "topk", "logsumexp",
             "count_nonzero"),
    linalg: ("matmul", "mm", "bmm", "mv", "dot", "inner", "outer"),
    shape: ("repeat_interleave", "repeat", "tile", "expand", "broadcast_to", "gather", "take_along_dim",
            "index_select", "flip", "narrow", "nonzero", "argwhere", "tril", "triu", "split", "chunk", "unbind",
            "movedim", "masked_select", "diag", "swapdims"),
    random: ("normal_", "uniform_", "bernoulli_", "random_"),
}


def _where(self, condition, y):
    """x.where(condition, y) is torch.where(condition, x, y)."""
    return math.where(condition, self, y)


def _expand_as(self, other):
    return shape.expand(self, other.shape)


def _view_as(self, other):
    return self.reshape(other.shape)


def _new(fill):
    def make(self, *size, dtype=None, device=None, requires_grad=False):
        from ..creation import _shape
        from ..backend import array_module
        xp = array_module(self._data)
        s = _shape(size)
        a = xp.zeros(s, dtype=dtype or self.dtype) if fill == 0 else xp.full(s, fill, dtype=dtype or self.dtype)
        from ..tensor import _wrap_like
        t = _wrap_like(a, self)
        t = t if device is None else t.to(device)
        return t.requires_grad_(True) if requires_grad else t
    return make


def _new_full(self, size, fill_value, *, dtype=None, device=None):
    from ..backend import array_module
    from ..tensor import _wrap_like
    t = _wrap_like(array_module(self._data).full(tuple(size), fill_value, dtype=dtype or self.dtype), self)
    return t if device is None else t.to(device)


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    from ..creation import tensor
    return tensor(data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)


def _masked_fill_(self, mask, value):
    return self.copy_(math.masked_fill(self, mask, value))


def _inplace(fn):
    """The in-place form of a unary function, recorded on the tape as every in-place op (engine._inplace)."""
    name = fn.__name__ + "_"

    def method(self, *args, **kwargs):
        from .._inplace import apply

        def raw(a):
            out = fn(type(self)._wrap(a), *args, **kwargs)._data
            if out.dtype != a.dtype and not np.can_cast(out.dtype, a.dtype, casting="same_kind"):
                raise RuntimeError(f"{name}: result dtype {out.dtype} cannot be cast to the tensor's dtype {a.dtype}")
            a[...] = out
        return apply(self, name, lambda t: fn(t, *args, **kwargs), raw)
    method.__name__ = name
    method.__doc__ = f"In place: self = {fn.__name__}(self, ...)."
    return method


def install(Tensor):
    def delegate(fn):
        def method(self, *args, **kwargs):
            if "axis" in kwargs:                       # NumPy's names, which PyTorch's methods accept too
                kwargs["dim"] = kwargs.pop("axis")
            if "keepdims" in kwargs:
                kwargs["keepdim"] = kwargs.pop("keepdims")
            return fn(self, *args, **kwargs)
        method.__name__, method.__doc__ = fn.__name__, fn.__doc__
        return method

    methods = {}
    for module, names in _SAME.items():
        for name in names:
            methods[name] = delegate(getattr(module, name))
    methods.update(where=_where, expand_as=_expand_as, view_as=_view_as, reshape_as=_view_as,
                   new_zeros=_new(0), new_ones=_new(1), new_full=_new_full, new_tensor=_new_tensor,
                   masked_fill_=_masked_fill_, ravel=lambda self: self.reshape(-1))
    for name in ("abs", "neg", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "pow", "floor", "round",
                 "sign", "square", "reciprocal", "log2", "relu"):
        fn = getattr(math, name)
        methods.setdefault(name + "_", _inplace(fn))
    for name, m in methods.items():
        if name not in Tensor.__dict__:
            setattr(Tensor, name, m)
