"""Elementwise torch.* functions (`engine.sin(x)`, `engine.maximum(a, b)`, `engine.where(c, a, b)`, ...),
PyTorch's semantics: type promotion (engine.functions.dtypes), broadcasting, a gradient for each
differentiable one. Integer and bool inputs of float functions (sin, exp, sqrt, ...) compute in float32.
"""
import numbers

import numpy as np

from ..ops import pointwise as P
from ..tensor import Tensor, _arith, _compare, _wrap_like
from ..tensor_ops import Abs, Exp, Log, Neg
from .dtypes import DEFAULT_FLOAT, bool_, result_type

__all__ = ["abs", "absolute", "neg", "negative", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt",
           "rsqrt", "sin", "cos", "tan", "sinh", "cosh", "asin", "acos", "atan", "arcsin", "arccos", "arctan",
           "tanh", "sigmoid", "relu", "reciprocal", "square", "sign", "floor", "ceil", "round", "trunc", "isnan",
           "isinf", "isfinite", "logical_not", "logical_and", "logical_or", "logical_xor", "bitwise_not",
           "bitwise_and", "bitwise_or", "bitwise_xor", "add", "sub", "subtract", "mul", "multiply", "div",
           "divide", "true_divide", "floor_divide", "remainder", "pow", "float_power", "maximum", "minimum",
           "eq", "ne", "lt", "le", "gt", "ge", "greater", "less", "greater_equal", "less_equal", "not_equal",
           "where", "clamp", "clip", "isclose", "allclose", "equal", "masked_fill"]


def tensor_arg(name, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(x).__name__}")
    return x


def _floating(x):
    """x itself when it is a float tensor, else x cast to the default float (PyTorch's int -> float32)."""
    return x if x.dtype.kind == "f" else x.to(DEFAULT_FLOAT)


def _float_unary(cls):
    def fn(input):
        return cls.apply(_floating(tensor_arg("input", input)))
    return fn


exp, log = _float_unary(Exp), _float_unary(Log)
sqrt, rsqrt, log2, log10, log1p, expm1, exp2, sin, cos, tan, sinh, cosh, asin, acos, atan, reciprocal = (
    _float_unary(P.UNARY[n]) for n in ("Sqrt", "Rsqrt", "Log2", "Log10", "Log1p", "Expm1", "Exp2", "Sin", "Cos",
                                      "Tan", "Sinh", "Cosh", "Asin", "Acos", "Atan", "Reciprocal"))
arcsin, arccos, arctan = asin, acos, atan
for _n, _f in (("exp", exp), ("log", log), ("sqrt", sqrt), ("rsqrt", rsqrt), ("log2", log2), ("log10", log10),
               ("log1p", log1p), ("expm1", expm1), ("exp2", exp2), ("sin", sin), ("cos", cos), ("tan", tan),
               ("sinh", sinh), ("cosh", cosh), ("asin", asin), ("acos", acos), ("atan", atan),
               ("reciprocal", reciprocal)):
    _f.__name__ = _n
    _f.__doc__ = f"Elementwise {_n} (integer and bool inputs compute in float32); differentiable."


def _same_dtype_unary(cls, name, allow_bool=False):
    def fn(input):
        x = tensor_arg("input", input)
        if x.dtype == bool_ and not allow_bool:
            raise TypeError(f"{name}: not defined for bool tensors")
        return cls.apply(x) if x.dtype.kind == "f" else _wrap_like(cls.forward(cls(), x._data), x)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name}, keeping the input's dtype; differentiable for float inputs."
    return fn


abs = _same_dtype_unary(Abs, "abs")
absolute = abs
neg = _same_dtype_unary(Neg, "neg")
negative = neg
square = _same_dtype_unary(P.UNARY["Square"], "square", allow_bool=True)
sign = _same_dtype_unary(P.UNARY["Sign"], "sign", allow_bool=True)
floor, ceil, trunc = (_same_dtype_unary(P.UNARY[n], n.lower(), allow_bool=True) for n in ("Floor", "Ceil", "Trunc"))
_round = _same_dtype_unary(P.UNARY["Round"], "round", allow_bool=True)


def round(input, decimals=0):
    """Round half to even (as torch.round); with `decimals`, to that many decimal places."""
    x = tensor_arg("input", input)
    if decimals == 0:
        return _round(x)
    s = 10.0 ** decimals
    return (x * s).round() / s


def _activation(name):
    def fn(input):
        from .. import functional as F             # imported on first use: `import engine` stays light
        return getattr(F, name)(_floating(tensor_arg("input", input)))
    fn.__name__ = name
    fn.__doc__ = f"torch.{name}: engine.functional.{name} (integer inputs compute in float32)."
    return fn


tanh, sigmoid = _activation("tanh"), _activation("sigmoid")


def relu(input):
    """max(x, 0); integer tensors stay integer."""
    x = tensor_arg("input", input)
    from .. import functional as F
    return F.relu(x) if x.dtype.kind == "f" else _wrap_like(x._data * (x._data > 0), x)


def _flags(fn_name):
    def fn(input):
        x = tensor_arg("input", input)
        if x.dtype.kind != "f":
            return _wrap_like(_xp(x).full(x.shape, fn_name == "isfinite"), x)
        return _wrap_like(getattr(_xp(x), fn_name)(x._data), x)
    fn.__name__ = fn_name
    fn.__doc__ = f"A bool tensor: {fn_name} of each element."
    return fn


isnan, isinf, isfinite = _flags("isnan"), _flags("isinf"), _flags("isfinite")


def _xp(x):
    from ..backend import array_module
    return array_module(x._data)


# ---- binary ------------------------------------------------------------------------------------------------
def _pair(input, other):
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError(f"input: expected a Tensor, got {type(input).__name__}")
    for name, v in (("input", input), ("other", other)):
        if not isinstance(v, (Tensor, numbers.Number, np.generic)):
            raise TypeError(f"{name}: expected a Tensor or a number, got {type(v).__name__}")


def add(input, other, alpha=1):
    """input + alpha * other."""
    _pair(input, other)
    return _arith("add", input, other if alpha == 1 else other * alpha)


def sub(input, other, alpha=1):
    """input - alpha * other."""
    _pair(input, other)
    return _arith("sub", input, other if alpha == 1 else other * alpha)


def mul(input, other):
    _pair(input, other)
    return _arith("mul", input, other)


def div(input, other, rounding_mode=None):
    """True division (integers give float32); rounding_mode 'floor' or 'trunc' rounds the quotient."""
    _pair(input, other)
    if rounding_mode is None:
        return _arith("div", input, other)
    if rounding_mode == "floor":
        return _arith("floordiv", input, other)
    if rounding_mode == "trunc":
        q = _arith("div", input, other)
        rt = result_type(input, other)
        return trunc(q) if rt.kind == "f" else trunc(q).to(rt)
    raise ValueError(f"rounding_mode: expected None, 'floor' or 'trunc', got {rounding_mode!r}")


subtract, multiply, divide, true_divide = sub, mul, div, div


def floor_divide(input, other):
    _pair(input, other)
    return _arith("floordiv", input, other)


def remainder(input, other):
    """Python's modulo (the result has the sign of the divisor); differentiable."""
    _pair(input, other)
    return _arith("mod", input, other)


def pow(input, exponent):
    """input ** exponent; either may be a number. Integers to negative integer powers raise, as in PyTorch."""
    _pair(input, exponent)
    return _arith("pow", input, exponent)


def float_power(input, exponent):
    """pow in float64."""
    _pair(input, exponent)
    cast = lambda v: v.to(np.float64) if isinstance(v, Tensor) else float(v)     # noqa: E731
    return pow(cast(input), cast(exponent))


def _binary_fn(cls, name):
    def fn(input, other):
        tensor_arg("input", input)
        tensor_arg("other", other)
        a, b = _promote(input, other)
        if a.dtype.kind != "f":
            xp = _xp(a)
            return _wrap_like(getattr(xp, name)(a._data, b._data), a)
        return cls.apply(a, b)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name} with broadcasting; ties split the gradient in halves."
    return fn


def _promote(a, b, like=None):
    """a and b as tensors of their promoted dtype (numbers become tensors on `like`'s device)."""
    rt = result_type(a, b)
    like = like if like is not None else a if isinstance(a, Tensor) else b
    conv = lambda v: (v if v.dtype == rt else v.to(rt)) if isinstance(v, Tensor) else \
        _wrap_like(_xp(like).asarray(v, dtype=rt), like)                                      # noqa: E731
    return conv(a), conv(b)


maximum, minimum = _binary_fn(P.Maximum, "maximum"), _binary_fn(P.Minimum, "minimum")


def _cmp(op):
    def fn(input, other):
        _pair(input, other)
        if not isinstance(input, Tensor):
            return _compare(other, input, _FLIP[op])
        return _compare(input, other, op)
    fn.__name__ = op
    fn.__doc__ = f"Elementwise comparison ({op}) after type promotion; a bool tensor."
    return fn


_FLIP = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
eq, ne, lt, le, gt, ge = (_cmp(o) for o in ("eq", "ne", "lt", "le", "gt", "ge"))
greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def _logical(name):
    def fn(input, other):
        _pair(input, other)
        a, b = (v._data if isinstance(v, Tensor) else v for v in (input, other))
        like = input if isinstance(input, Tensor) else other
        return _wrap_like(getattr(_xp(like), name)(a, b), like)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name} of the inputs' truth values; a bool tensor."
    return fn


logical_and, logical_or, logical_xor = _logical("logical_and"), _logical("logical_or"), _logical("logical_xor")


def logical_not(input):
    x = tensor_arg("input", input)
    return _wrap_like(_xp(x).logical_not(x._data), x)


def _bitwise(name, op):
    def fn(input, other):
        _pair(input, other)
        return _arith(op, input, other)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name} of bool or integer tensors."
    return fn


bitwise_and, bitwise_or, bitwise_xor = _bitwise("bitwise_and", "and"), _bitwise("bitwise_or", "or"), \
    _bitwise("bitwise_xor", "xor")


def bitwise_not(input):
    return ~tensor_arg("input", input)


def where(condition, input=None, other=None):
    """where(cond, a, b): a where cond is true, else b, broadcast together, promoted (a and b may be numbers);
    differentiable in a and b. where(cond) alone: the indices of the true elements (as nonzero(as_tuple=True))."""
    cond = tensor_arg("condition", condition)
    if input is None and other is None:
        from .shape import nonzero
        return nonzero(cond, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: give both input and other, or neither")
    for name, v in (("input", input), ("other", other)):
        if not isinstance(v, (Tensor, numbers.Number, np.generic)):
            raise TypeError(f"{name}: expected a Tensor or a number, got {type(v).__name__}")
    if cond.dtype != bool_:
        raise TypeError(f"condition: expected a bool tensor, got dtype {cond.dtype}")
    a, b = _promote(input, other, like=cond)
    return P.Where.apply(cond._data, a, b)


def masked_fill(input, mask, value):
    """input with `value` where the bool `mask` (broadcast to input's shape) is true."""
    x = tensor_arg("input", input)
    m = tensor_arg("mask", mask)
    if m.dtype != bool_:
        raise TypeError(f"mask: expected a bool tensor, got dtype {m.dtype}")
    if isinstance(value, Tensor):
        if value.ndim:
            raise ValueError(f"value: expected a number or a 0-d tensor, got shape {value.shape}")
        value = value.to(x.dtype)
    try:
        np.broadcast_shapes(m.shape, x.shape)
    except ValueError:
        raise RuntimeError(f"mask: shape {m.shape} cannot be broadcast to the input's shape {x.shape}") from None
    if np.broadcast_shapes(m.shape, x.shape) != x.shape:
        raise RuntimeError(f"mask: shape {m.shape} cannot be broadcast to the input's shape {x.shape}")
    v = value if isinstance(value, Tensor) else _wrap_like(_xp(x).asarray(value, dtype=x.dtype), x)
    return P.Where.apply(m._data, v, x)


def clamp(input, min=None, max=None):
    """input clipped to [min, max]; min/max numbers or tensors (broadcast). Gradient passes where inside."""
    x = tensor_arg("input", input)
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        y = x if min is None else maximum(x, min)
        return y if max is None else minimum(y, max)
    return x.clamp(min, max)


clip = clamp


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    a, b = tensor_arg("input", input), tensor_arg("other", other)
    return _wrap_like(_xp(a).isclose(a._data, b._data, rtol=rtol, atol=atol, equal_nan=equal_nan), a)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(input, other, rtol, atol, equal_nan)._data.all())


def equal(input, other):
    """True when both have the same shape and elements."""
    a, b = tensor_arg("input", input), tensor_arg("other", other)
    return a.shape == b.shape and bool((a._data == b._data).all())

