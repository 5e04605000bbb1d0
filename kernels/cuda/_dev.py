"""What every CUDA kernel module shares: the array module, allocation, launch sizes.

Arrays on the device are CuPy arrays (anything with `__cuda_array_interface__` is accepted and handed to
Numba without a copy). Under the Numba simulator (`NUMBA_ENABLE_CUDASIM=1`, no GPU) `cupy` is the stand-in
kernels/_simcupy.py, which refuses what CuPy refuses. Host (NumPy) arrays are accepted too, as Numba's
dispatcher accepts them (it copies them to the device and back): the wrappers allocate with the input's
module. How kernels are launched (on CuPy's current stream) is _launch.py's part.
"""
import math

import numpy as np
from numba import config as _config

from kernels._cupy import cupy

SIM = bool(_config.ENABLE_CUDASIM)
# Threads per block: for the block-per-row reductions (a power of two) and for elementwise kernels. The
# simulator runs every thread as a Python thread, so it gets smaller blocks (the same code paths: rows and
# tiles longer than a block are still tested).
TPB = 32 if SIM else 128
TPB_FLAT = 64 if SIM else 256


def xp_of(a):
    """The array module of `a`: CuPy for device arrays, NumPy for host arrays."""
    if isinstance(a, (np.ndarray, np.generic)) or np.isscalar(a):
        return np
    return cupy()


def contiguous(a, dtype=None):
    """a as a C-contiguous array of its own shape (NumPy's ascontiguousarray makes a 0-d array 1-D)."""
    xp = xp_of(a)
    return xp.ascontiguousarray(a, dtype=dtype).reshape(a.shape)


def empty(shape, dtype, like):
    return xp_of(like).empty(shape, dtype=dtype)


def zeros(shape, dtype, like):
    return xp_of(like).zeros(shape, dtype=dtype)


def blocks(n, tpb=TPB_FLAT):
    """Enough blocks of `tpb` threads to cover n elements (at least one)."""
    return max(1, math.ceil(n / tpb))
