"""Block-wide reductions for the block-per-row kernels: every thread of the block passes its partial and
gets the block's total back. float64 shared memory, a tree over the slots of `sh` (one per thread, a power of two); the trailing
syncthreads lets the caller reuse `sh` at once."""
import math

from numba import cuda


@cuda.jit(device=True)
def block_sum(sh, v):
    t = cuda.threadIdx.x
    sh[t] = v
    cuda.syncthreads()
    s = sh.shape[0] // 2              # the block size: a power of two
    while s > 0:
        if t < s:
            sh[t] += sh[t + s]
        cuda.syncthreads()
        s //= 2
    r = sh[0]
    cuda.syncthreads()
    return r


@cuda.jit(device=True)
def block_max(sh, v):
    """The block's maximum; NaN wins (a NaN row stays NaN, as on the CPU)."""
    t = cuda.threadIdx.x
    sh[t] = v
    cuda.syncthreads()
    s = sh.shape[0] // 2              # the block size: a power of two
    while s > 0:
        if t < s:
            a, b = sh[t], sh[t + s]
            if b > a or math.isnan(b):
                sh[t] = b
        cuda.syncthreads()
        s //= 2
    r = sh[0]
    cuda.syncthreads()
    return r
