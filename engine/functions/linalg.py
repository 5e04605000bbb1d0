"""Products, PyTorch's names and shape rules: matmul (broadcast batches, 1-d operands promoted and dropped), mm
(2-d only), bmm (3-d, one batch size), mv, dot and inner (1-d), outer. Both operands must have one dtype,
as in PyTorch (RuntimeError otherwise). Differentiable through the tape's MatMul.
"""
from ..tensor_ops import MatMul
from .math import tensor_arg

__all__ = ["matmul", "mm", "bmm", "mv", "dot", "vdot", "inner", "outer", "ger"]


def _pair(name, a, b):
    tensor_arg("input", a)
    tensor_arg("other" if name != "mv" else "vec", b)
    if a.dtype != b.dtype:
        raise RuntimeError(f"{name}: expected both operands to have one dtype, got {a.dtype} and {b.dtype}")


def matmul(input, other):
    """input @ other with NumPy/PyTorch rules: 1-d operands are promoted to a row (left) or a column (right)
    and the added dim removed; leading dims broadcast."""
    _pair("matmul", input, other)
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError("matmul: both arguments need at least one dim, got a 0-d tensor")
    if input.shape[-1] != other.shape[-2 if other.ndim > 1 else 0]:
        raise RuntimeError(f"matmul: shapes {input.shape} and {other.shape} cannot be multiplied (the inner dims "
                           f"differ)")
    return MatMul.apply(input, other)


def mm(input, mat2):
    """(n, m) @ (m, p) -> (n, p); no broadcasting."""
    _pair("mm", input, mat2)
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expected two 2-d tensors, got shapes {input.shape} and {mat2.shape}")
    if input.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"mm: shapes {input.shape} and {mat2.shape} cannot be multiplied")
    return MatMul.apply(input, mat2)


def bmm(input, mat2):
    """(b, n, m) @ (b, m, p) -> (b, n, p); one batch size, no broadcasting."""
    _pair("bmm", input, mat2)
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError(f"bmm: expected two 3-d tensors, got shapes {input.shape} and {mat2.shape}")
    if input.shape[0] != mat2.shape[0] or input.shape[2] != mat2.shape[1]:
        raise RuntimeError(f"bmm: shapes {input.shape} and {mat2.shape} do not fit (batch sizes must match and "
                           f"the inner dims agree)")
    return MatMul.apply(input, mat2)


def mv(input, vec):
    """(n, m) @ (m,) -> (n,)."""
    _pair("mv", input, vec)
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"mv: expected a 2-d matrix and a 1-d vector, got shapes {input.shape} and {vec.shape}")
    if input.shape[1] != vec.shape[0]:
        raise RuntimeError(f"mv: shapes {input.shape} and {vec.shape} cannot be multiplied")
    return MatMul.apply(input, vec)


def dot(input, other):
    """The inner product of two 1-d tensors of one length: a 0-d tensor."""
    _pair("dot", input, other)
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"dot: expected two 1-d tensors, got shapes {input.shape} and {other.shape}")
    if input.shape != other.shape:
        raise RuntimeError(f"dot: inconsistent tensor sizes {input.shape[0]} and {other.shape[0]}")
    return MatMul.apply(input, other)


vdot = dot


def inner(input, other):
    """Sum over the last dims of both (0-d operands multiply)."""
    _pair("inner", input, other)
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if other.ndim == 1:
        return MatMul.apply(input, other)
    return MatMul.apply(input, other.swapaxes(-1, -2))


def outer(input, vec2):
    """(n,) x (m,) -> (n, m)."""
    _pair("outer", input, vec2)
    if input.ndim != 1 or vec2.ndim != 1:
        raise RuntimeError(f"outer: expected two 1-d tensors, got shapes {input.shape} and {vec2.shape}")
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


ger = outer
