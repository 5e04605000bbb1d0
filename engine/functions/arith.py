"""Tensor's operators with PyTorch's type promotion (engine.functions.dtypes): + - * / // % ** & | ^ and the
comparisons, for Tensors, Python/NumPy numbers and array-likes. engine/tensor.py binds them."""
import numbers
import operator
import sys

import numpy as np

from .. import autograd as _autograd, tensor_ops as _ops
from .._capture import refuse, replayable
from ..backend import array_module as _array_module, device_of as _device_of
from ..ops.pointwise import FloorDivide, PowTensor, Remainder
from ..tensor import Tensor, float32
from .dtypes import result_type

_OPS = {"add": _ops.Add, "sub": _ops.Sub, "mul": _ops.Mul, "div": _ops.Div, "floordiv": FloorDivide, "mod": Remainder}


def _xp(a):
    return _array_module(a)


def _fns():
    from . import math
    return math


def _lift(t, other):
    """A non-Tensor operand of t's operator: numbers stay numbers (NumPy scalars become Python numbers, weak in
    promotion as in PyTorch); anything else (lists, arrays) becomes a tensor of t's dtype on t's device."""
    if isinstance(other, np.generic):
        return other.item()
    if isinstance(other, (Tensor, numbers.Number)):
        return other
    return Tensor._wrap(_xp(t._data).asarray(other, dtype=t.dtype))      # a constant, on t's device


def _wrap_like(array, like):
    """`array`, computed from `like`'s data (a Tensor or an array), as a tensor; an op that let a result slip
    off like's device is a bug, reported here rather than as a device mix-up later."""
    data = like._data if isinstance(like, Tensor) else like
    if _autograd._CAPTURE is not None:       # the frame lookup and message only while a step is captured
        refuse(f"computed a tensor outside the recorded ops (in {sys._getframe(1).f_code.co_name})",
               "compute it outside the compiled step and pass it in as an argument")
    if type(array) is not type(data) and _device_of(array) != _device_of(data):
        raise RuntimeError(f"internal: a result on {_device_of(array)} for data on {_device_of(data)}")
    return Tensor._wrap(array)


def _cast(v, dtype):
    return (v if v._data.dtype == dtype else v.to(dtype)) if isinstance(v, Tensor) else v


_BITWISE = {"and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor"}


def _arith(op, a, b):
    """a <op> b with PyTorch's type promotion; one of a, b is a Tensor. op: add, sub, mul, div (true
    division: integers give float32), floordiv, mod, pow, and, or, xor."""
    if isinstance(a, Tensor):
        b = _lift(a, b)
    else:
        a = _lift(b, a)
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype == b._data.dtype:
        rt = a._data.dtype                                    # the common case, without the promotion rules
    else:
        rt = result_type(a, b)
    if op == "div" and rt.kind != "f":
        rt = float32
    a, b = _cast(a, rt), _cast(b, rt)
    if op in _BITWISE:
        if rt.kind == "f":
            raise TypeError(f"{_BITWISE[op]}: only defined for bool and integer tensors, got dtype {rt}")
        return _bitwise(op, a, b)
    if op == "pow":
        negative = bool((b._data < 0).any()) if isinstance(b, Tensor) else b < 0
        if rt.kind in "iu" and negative:
            raise RuntimeError("pow: integers to negative integer powers are not allowed")
        if isinstance(b, Tensor):
            return PowTensor.apply(a, b)
        return _ops.Pow.apply(a, p=b)
    return _OPS[op].apply(a, b)


@replayable
def _bitwise(op, a, b):
    x = a if isinstance(a, Tensor) else b
    raw = [v._data if isinstance(v, Tensor) else v for v in (a, b)]
    return _wrap_like(getattr(_xp(x._data), _BITWISE[op])(*raw), x)


@replayable
def _compare(a, o, op):
    """a <op> o elementwise after type promotion (a Tensor, o a Tensor or a number): a bool tensor."""
    o = _lift(a, o)
    x, y = a._data, o._data if isinstance(o, Tensor) else o
    if not (isinstance(o, Tensor) and y.dtype == x.dtype):
        rt = result_type(a, o)
        x = x if x.dtype == rt else x.astype(rt)
        if isinstance(o, Tensor) and y.dtype != rt:
            y = y.astype(rt)
    if isinstance(o, Tensor) and o.device != a.device:
        raise RuntimeError(f"{op}: expected both tensors on one device, got {a.device} and {o.device}")
    return _wrap_like(getattr(operator, op)(x, y), a)


def _matmul(a, b):
    if isinstance(b, Tensor) and isinstance(a, Tensor) and a._data.dtype != b._data.dtype:
        raise RuntimeError(f"matmul: expected both operands to have one dtype, got {a.dtype} and {b.dtype}")
    return _ops.MatMul.apply(a, b)
