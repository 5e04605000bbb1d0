"""PyTorch's dtype rules: type promotion for mixed operands, the dtype aliases (`engine.long`, `engine.float`),
and the legacy type strings of `Tensor.type()` ('torch.FloatTensor').

Promotion (torch.result_type): operands fall in three priority groups, tensors with dims, 0-d tensors, and
Python numbers (a bool is bool, an int int64, a float the default float32; NumPy scalars count as numbers).
A lower group decides only when it is of a higher category (bool < integer < floating) than the groups
above it: int tensor + 2.5 is float32, float32 tensor + 0-d float64 tensor stays float32, int32 tensor +
0-d int64 stays int32. Within a category, the wider type wins; an integer with a float gives that float
(NumPy would widen int32 + float32 to float64, PyTorch does not).
"""
import numbers

import numpy as np

float32, float64, float16 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)
int8, int16, int32, int64 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
uint8, bool_ = np.dtype(np.uint8), np.dtype(np.bool_)
DEFAULT_FLOAT = float32

# PyTorch's aliases: engine.float, engine.long, ... (engine/__init__ exports them under these names)
ALIASES = {"float": float32, "double": float64, "half": float16, "long": int64, "int": int32, "short": int16,
           "bool": bool_}

_LEGACY = {float32: "FloatTensor", float64: "DoubleTensor", float16: "HalfTensor", int64: "LongTensor",
           int32: "IntTensor", int16: "ShortTensor", int8: "CharTensor", uint8: "ByteTensor", bool_: "BoolTensor"}
_FROM_LEGACY = {name: dt for dt, name in _LEGACY.items()}


def legacy_name(dtype):
    """'engine.FloatTensor' for float32, ... (PyTorch's Tensor.type() strings, with the engine's prefix)."""
    return "engine." + _LEGACY.get(np.dtype(dtype), f"{np.dtype(dtype).name}Tensor")


def from_legacy(name):
    """The dtype of 'torch.FloatTensor' / 'engine.LongTensor' / 'FloatTensor'."""
    short = name.rsplit(".", 1)[-1]
    if short not in _FROM_LEGACY:
        raise ValueError(f"dtype: unknown tensor type {name!r} (expected e.g. 'torch.FloatTensor' or a dtype)")
    return _FROM_LEGACY[short]


def as_dtype(dtype, name="dtype"):
    """np.dtype(dtype) with a TypeError naming the argument."""
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name}: {dtype!r} is not a dtype (use engine.float32, engine.int64, ...)") from None


def _category(dt):
    k = dt.kind
    return 2 if k == "f" else (0 if k == "b" else 1)


def promote_types(a, b):
    """PyTorch's torch.promote_types on two dtypes."""
    if a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def scalar_dtype(v):
    """The dtype a Python (or NumPy) number stands for in promotion."""
    if isinstance(v, (bool, np.bool_)):
        return bool_
    if isinstance(v, numbers.Integral):
        return int64
    if isinstance(v, numbers.Real):
        return DEFAULT_FLOAT
    raise TypeError(f"unsupported operand type {type(v).__name__} (expected a Tensor or a real number)")


def _combine(higher, lower):
    """c10's combine_categories: `lower` matters only when it is of a higher category."""
    if higher is None:
        return lower
    if lower is None or higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_types(higher, lower)
    return higher


def result_type(*operands):
    """The dtype PyTorch computes `op(*operands)` in: operands are Tensors (anything with .dtype and .ndim)
    or Python/NumPy numbers."""
    dim = zero = wrapped = None
    for o in operands:
        if isinstance(o, (numbers.Number, np.generic)):
            d = scalar_dtype(o)
            wrapped = d if wrapped is None else promote_types(wrapped, d)
            continue
        d = np.dtype(o.dtype)
        if o.ndim:
            dim = d if dim is None else promote_types(dim, d)
        else:
            zero = d if zero is None else promote_types(zero, d)
    return _combine(dim, _combine(zero, wrapped))


def float_result_type(*operands):
    """result_type, then the default float for an integer or bool result (true division, sqrt of ints)."""
    rt = result_type(*operands)
    return rt if rt.kind == "f" else DEFAULT_FLOAT
