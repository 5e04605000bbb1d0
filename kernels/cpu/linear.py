"""Linear layer y = x W^T + b: BLAS GEMMs through the array's own matmul, in the input's dtype.

On NumPy arrays the GEMMs are NumPy's BLAS (sgemm/dgemm already run near the machine's limit), run by
_threads.gemm so that OpenBLAS's threads never fight Numba's; the code is otherwise array-module generic, and
kernels.cuda.linear serves it as is on CuPy arrays (cuBLAS).
"""
import math

import numpy as np

from ._threads import gemm


def _mm(a, b):
    """a @ b for 2-D operands: the engine's GEMM on NumPy arrays, the array's own matmul elsewhere."""
    return gemm(a, b) if type(a) is np.ndarray and type(b) is np.ndarray else a @ b

__all__ = ["linear_fwd", "linear_bwd"]


def linear_fwd(x, w, b):
    """x (..., in), w (out, in), b (out,) or None -> (..., out)."""
    rows = math.prod(x.shape[:-1])
    y = _mm(x.reshape(rows, x.shape[-1]), w.T).reshape(x.shape[:-1] + (w.shape[0],))
    return y + b if b is not None else y


def linear_bwd(dout, x, w, need_dx=True, need_dw=True, need_db=True):
    """dout (..., out) -> (dx (..., in), dw (out, in), db (out,)); each None when not needed."""
    rows = math.prod(x.shape[:-1])                 # not -1: a size-0 input (no rows or no features) is ambiguous
    x2 = x.reshape(rows, x.shape[-1])
    d2 = dout.reshape(rows, dout.shape[-1])
    dx = _mm(d2, w).reshape(x.shape) if need_dx else None
    dw = _mm(d2.T, x2) if need_dw else None
    db = d2.sum(axis=0) if need_db else None
    return dx, dw, db
