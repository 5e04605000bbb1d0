"""The softmax family on the GPU: one block per row, a block-wide max and sum in shared memory, then one
more pass to write. The same semantics as kernels/reference/softmax.py: a row of all -inf (or a masked
row with no valid key) gives zeros from softmax and -inf from log_softmax; statistics in float64."""
import math

from numba import cuda, float64

from ._dev import TPB, contiguous, empty
from ._launch import kernel
from ._reduce import block_max, block_sum

__all__ = ["softmax_fwd", "softmax_bwd", "log_softmax_fwd", "log_softmax_bwd",
           "masked_softmax_fwd", "masked_softmax_bwd"]


@cuda.jit(device=True)
def _row_stats(sh, x, r, n):
    """(max, sum exp(x - max)) of x[r, :n]; an all -inf row is shifted by 0 (sum 0)."""
    t = cuda.threadIdx.x
    m = -math.inf
    for j in range(t, n, TPB):
        v = float64(x[r, j])
        if v > m or math.isnan(v):
            m = v
    m = block_max(sh, m)
    if m == -math.inf:
        m = 0.0
    s = 0.0
    for j in range(t, n, TPB):
        s += math.exp(float64(x[r, j]) - m)
    return m, block_sum(sh, s)


@kernel
def _softmax_fwd(x, lens, y, log):
    """y[r] = softmax (log=0) or log_softmax (log=1) of x[r, :n_r], n_r = lens[r] if lens has rows, else the
    row length; positions n_r.. get 0 (softmax) or -inf (log_softmax)."""
    r = cuda.blockIdx.x
    t = cuda.threadIdx.x
    K = x.shape[1]
    n = min(max(lens[r], 0), K) if lens.shape[0] > 0 else K     # clamped: a bad length never reads past the row
    sh = cuda.shared.array(TPB, float64)
    m, s = _row_stats(sh, x, r, n)
    if log:
        ls = math.log(s) if s > 0.0 else math.inf
        for j in range(t, K, TPB):
            y[r, j] = float64(x[r, j]) - m - ls if j < n else -math.inf
    else:
        inv = 1.0 / s if s > 0.0 else 0.0
        for j in range(t, K, TPB):
            y[r, j] = math.exp(float64(x[r, j]) - m) * inv if j < n else 0.0


@kernel
def _softmax_bwd(dout, y, lens, dx):
    """dx = y * (dout - sum(dout * y)) over the valid keys; exactly 0 on masked ones."""
    r = cuda.blockIdx.x
    t = cuda.threadIdx.x
    K = y.shape[1]
    n = min(max(lens[r], 0), K) if lens.shape[0] > 0 else K     # clamped: a bad length never reads past the row
    sh = cuda.shared.array(TPB, float64)
    d = 0.0
    for j in range(t, n, TPB):
        d += float64(dout[r, j]) * float64(y[r, j])
    d = block_sum(sh, d)
    for j in range(t, K, TPB):
        dx[r, j] = float64(y[r, j]) * (float64(dout[r, j]) - d) if j < n else 0.0


@kernel
def _log_softmax_bwd(dout, y, dx):
    """dx = dout - exp(y) * sum(dout)."""
    r = cuda.blockIdx.x
    t = cuda.threadIdx.x
    K = y.shape[1]
    sh = cuda.shared.array(TPB, float64)
    d = 0.0
    for j in range(t, K, TPB):
        d += float64(dout[r, j])
    d = block_sum(sh, d)
    for j in range(t, K, TPB):
        dx[r, j] = float64(dout[r, j]) - math.exp(float64(y[r, j])) * d


def _no_lens(like):
    return empty((0,), "int64", like)


def _fwd(x, lens, log):
    x = contiguous(x)
    y = empty(x.shape, x.dtype, x)
    if x.shape[0] and x.shape[1]:
        _softmax_fwd[x.shape[0], TPB](x, lens, y, log)
    return y


def _bwd(dout, y, lens):
    y = contiguous(y)
    dout = contiguous(dout, y.dtype)
    dx = empty(y.shape, y.dtype, y)
    if y.shape[0] and y.shape[1]:
        _softmax_bwd[y.shape[0], TPB](dout, y, lens, dx)
    return dx


def softmax_fwd(x):
    """x (R, n) float32/float64 on the device -> y (R, n), softmax along rows. Save y for backward."""
    return _fwd(x, _no_lens(x), 0)


def softmax_bwd(dout, y):
    return _bwd(dout, y, _no_lens(y))


def log_softmax_fwd(x):
    return _fwd(x, _no_lens(x), 1)


def log_softmax_bwd(dout, y):
    y = contiguous(y)
    dout = contiguous(dout, y.dtype)
    dx = empty(y.shape, y.dtype, y)
    if y.shape[0] and y.shape[1]:
        _log_softmax_bwd[y.shape[0], TPB](dout, y, dx)
    return dx


def masked_softmax_fwd(x, valid_lens):
    """x (R, K), valid_lens (R,) ints in [0, K] -> y (R, K): zeros after each row's valid length."""
    return _fwd(x, contiguous(valid_lens, "int64"), 0)


def masked_softmax_bwd(dout, y, valid_lens):
    return _bwd(dout, y, contiguous(valid_lens, "int64"))
