"""Linear layer y = x W^T + b: BLAS GEMMs through the array's own matmul, in the input's dtype.

On NumPy arrays the GEMMs are NumPy's BLAS (sgemm/dgemm already run near the machine's limit), run by
_threads.gemm so that OpenBLAS's threads never fight Numba's; the code is otherwise array-module generic, and
kernels.cuda.linear serves it as is on CuPy arrays (cuBLAS).
"""
import math

import numpy as np
from numba import njit

from ._config import FASTMATH
from ._threads import gemm

# Below SMALL_FLOPS (2*rows*out*in) the layer is one Numba call (GEMM, bias and, in backward, all three
# gradients): NumPy's matmul costs ~1.2 us of call overhead, the bias add ~1 us and the OpenBLAS thread
# switch of `gemm` ~2 us, where a 1x8x8 layer's arithmetic takes nanoseconds.
SMALL_FLOPS = 1 << 15


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _linear_small_fwd(x, w, b, has_b, y):
    """y (M, N) = x (M, K) @ w (N, K)^T (+ b (N,)), all C-contiguous. Serial."""
    M, K = x.shape
    N = w.shape[0]
    z = y.dtype.type(0)
    for i in range(M):
        xi = x[i]
        for j in range(N):
            wj = w[j]
            acc = z
            for k in range(K):
                acc += xi[k] * wj[k]
            y[i, j] = acc + b[j] if has_b else acc


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _linear_small_bwd(d, x, w, dx, dw, db, need_dx, need_dw, need_db):
    """d (M, N), x (M, K), w (N, K) -> dx = d @ w, dw = d^T @ x, db = d summed over rows (those asked for;
    the others are left as given). Serial, row by row so every inner loop is a contiguous axpy."""
    M, K = x.shape
    N = w.shape[0]
    if need_dx:
        dx[:] = 0
    if need_dw:
        dw[:] = 0
    if need_db:
        db[:] = 0
    for i in range(M):
        di, xi = d[i], x[i]
        dxi = dx[i] if need_dx else dx[0]
        for j in range(N):
            g = di[j]
            if need_dx:
                wj = w[j]
                for k in range(K):
                    dxi[k] += g * wj[k]
            if need_dw:
                dwj = dw[j]
                for k in range(K):
                    dwj[k] += g * xi[k]
            if need_db:
                db[j] += g


def _mm(a, b):
    """a @ b for 2-D operands: the engine's GEMM on NumPy arrays, the array's own matmul elsewhere."""
    return gemm(a, b) if type(a) is np.ndarray and type(b) is np.ndarray else a @ b

__all__ = ["linear_fwd", "linear_bwd"]


def _small(x, w):
    """True for a NumPy layer small enough for the one-call kernels (rows from x's leading dims)."""
    return (type(x) is np.ndarray and type(w) is np.ndarray and 0 < 2 * x.size * w.shape[0] < SMALL_FLOPS
            and x.dtype == w.dtype)


def linear_fwd(x, w, b):
    """x (..., in), w (out, in), b (out,) or None -> (..., out)."""
    if _small(x, w) and (b is None or b.dtype == x.dtype):
        N = w.shape[0]
        x2 = np.ascontiguousarray(x) if x.ndim == 2 else np.ascontiguousarray(x).reshape(-1, x.shape[-1])
        y = np.empty((x2.shape[0], N), x.dtype)
        w = np.ascontiguousarray(w)
        _linear_small_fwd(x2, w, w[0] if b is None else np.ascontiguousarray(b), b is not None, y)
        return y if x.ndim == 2 else y.reshape(x.shape[:-1] + (N,))
    rows = math.prod(x.shape[:-1])
    y = _mm(x.reshape(rows, x.shape[-1]), w.T).reshape(x.shape[:-1] + (w.shape[0],))
    return y + b if b is not None else y


def linear_bwd(dout, x, w, need_dx=True, need_dw=True, need_db=True):
    """dout (..., out) -> (dx (..., in), dw (out, in), db (out,)); each None when not needed."""
    if _small(x, w) and type(dout) is np.ndarray and dout.dtype == x.dtype:
        K, N = x.shape[-1], w.shape[0]
        x2 = np.ascontiguousarray(x).reshape(-1, K)
        d2 = np.ascontiguousarray(dout).reshape(-1, N)
        w2 = np.ascontiguousarray(w)
        dx = np.empty(x2.shape, x.dtype) if need_dx else x2[:1]
        dw = np.empty((N, K), x.dtype) if need_dw else w2
        db = np.empty(N, x.dtype) if need_db else w2[0]
        _linear_small_bwd(d2, x2, w2, dx, dw, db, bool(need_dx), bool(need_dw), bool(need_db))
        return dx.reshape(x.shape) if need_dx else None, dw if need_dw else None, db if need_db else None
    rows = math.prod(x.shape[:-1])                 # not -1: a size-0 input (no rows or no features) is ambiguous
    x2 = x.reshape(rows, x.shape[-1])
    d2 = dout.reshape(rows, dout.shape[-1])
    dx = _mm(d2, w).reshape(x.shape) if need_dx else None
    dw = _mm(d2.T, x2) if need_dw else None
    db = d2.sum(axis=0) if need_db else None
    return dx, dw, db
