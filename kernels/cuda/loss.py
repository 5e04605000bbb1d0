"""Losses on the GPU: cross_entropy fused with log-softmax (one block per row; the probabilities are never
stored, lse is saved), and mse_loss (elementwise, block partial sums for the reductions). The same
semantics as kernels/reference/loss.py: PyTorch's label smoothing; lse[r] = (row max m, log sum exp(x - m))
in two parts, every difference formed as (x - m) - log s (m + log s loses log s past |m| ~ 1e16); ignored
rows have loss 0, lse (0, 0) and gradient 0."""
import math

from numba import cuda, float64

from ._dev import TPB, TPB_FLAT, blocks, contiguous, empty, xp_of
from ._launch import kernel
from ._reduce import block_max, block_sum

__all__ = ["cross_entropy_fwd", "cross_entropy_bwd", "mse_loss_fwd", "mse_loss_bwd"]


@kernel
def _ce_fwd(x, target, eps, ignore_index, loss, lse):
    r = cuda.blockIdx.x
    t = cuda.threadIdx.x
    C = x.shape[1]
    tg = target[r]
    if tg == ignore_index:                   # the whole block agrees: no syncthreads is skipped by a part of it
        if t == 0:
            loss[r] = 0.0
            lse[r, 0] = 0.0
            lse[r, 1] = 0.0
        return
    if tg < 0 or tg >= C:                    # out of range: NaN, never a read past the row (the engine's
        if t == 0:                           # queued value check raises at the next host read)
            loss[r] = math.nan
            lse[r, 0] = math.nan
            lse[r, 1] = math.nan
        return
    sh = cuda.shared.array(TPB, float64)
    m = -math.inf
    for j in range(t, C, TPB):
        v = float64(x[r, j])
        if v > m or math.isnan(v):
            m = v
    m = block_max(sh, m)
    s = 0.0
    dev = 0.0
    for j in range(t, C, TPB):
        v = float64(x[r, j])
        s += math.exp(v - m)
        dev += m - v
    s = block_sum(sh, s)
    if eps > 0.0:
        dev = block_sum(sh, dev)
    if t == 0:
        ls = math.log(s)
        lse[r, 0] = m
        lse[r, 1] = ls
        out = (1.0 - eps) * ((m - float64(x[r, tg])) + ls)
        if eps > 0.0:
            out += eps * (ls + dev / C)          # eps / C * sum_c (m + ls - x_c)
        loss[r] = out


@kernel
def _ce_bwd(dloss, x, target, lse, eps, ignore_index, dx):
    """dx = dloss * (softmax(x) - (1 - eps) onehot(target) - eps / C); ignored rows 0. One block per row."""
    r = cuda.blockIdx.x
    C = x.shape[1]
    tg = target[r]
    keep = tg != ignore_index
    g = dloss[r]
    m = lse[r, 0]
    ls = lse[r, 1]
    for j in range(cuda.threadIdx.x, C, cuda.blockDim.x):
        if keep:
            v = math.exp((float64(x[r, j]) - m) - ls) - eps / C
            if j == tg:
                v -= 1.0 - eps
            dx[r, j] = g * v
        else:
            dx[r, j] = 0.0


def cross_entropy_fwd(x, target, label_smoothing, ignore_index):
    """x (N, C) on the device, target (N,) ints in [0, C) or == ignore_index (validated by the engine)
    -> (loss (N,), lse (N, 2): row max and log sum exp(x - max)), both float64. Save lse for backward."""
    x = contiguous(x)
    target = contiguous(target, "int64")
    loss = empty(x.shape[0], "float64", x)
    lse = empty((x.shape[0], 2), "float64", x)
    if x.shape[0]:
        _ce_fwd[x.shape[0], TPB](x, target, float(label_smoothing), int(ignore_index),
                                            loss, lse)
    return loss, lse


def cross_entropy_bwd(dloss, x, target, lse, label_smoothing, ignore_index):
    """dloss (N,), x (N, C), target (N,), lse (N, 2) -> dx (N, C), x's dtype."""
    x = contiguous(x)
    target = contiguous(target, "int64")
    dloss = contiguous(dloss, "float64")
    lse = contiguous(lse, "float64").reshape(x.shape[0], 2)
    dx = empty(x.shape, x.dtype, x)
    if x.size:
        _ce_bwd[x.shape[0], TPB](dloss, x, target, lse, float(label_smoothing),
                                            int(ignore_index), dx)
    return dx


@kernel
def _sq_diff(x, t, out):
    i = cuda.grid(1)
    if i < x.shape[0]:
        d = x[i] - t[i]
        out[i] = d * d


@kernel
def _sq_diff_partials(x, t, partial):
    """partial[b] = sum over block b's grid-stride share of (x - t)^2, in float64."""
    sh = cuda.shared.array(TPB_FLAT, float64)
    tid = cuda.threadIdx.x
    s = 0.0
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        d = float64(x[i]) - float64(t[i])
        s += d * d
    s = block_sum(sh, s)
    if tid == 0:
        partial[cuda.blockIdx.x] = s


@kernel
def _scaled_diff(g, x, t, dx):
    """dx = g * (x - t); g has one element (a reduction's scale) or one per element."""
    i = cuda.grid(1)
    if i < x.shape[0]:
        dx[i] = (g[i] if g.shape[0] > 1 else g[0]) * (x[i] - t[i])


def mse_loss_fwd(x, target, reduction):
    """(x - target)**2 ('none') or its sum / mean ('sum' / 'mean', 0-d of x's dtype, on the device)."""
    xp = xp_of(x)
    xf = contiguous(x).reshape(-1)
    tf = contiguous(target, xf.dtype).reshape(-1)
    if reduction == "none":
        out = empty(xf.shape, xf.dtype, xf)
        if xf.size:
            _sq_diff[blocks(xf.size), TPB_FLAT](xf, tf, out)
        return out.reshape(x.shape)
    nb = min(blocks(xf.size), 1024)
    partial = xp.zeros(nb, "float64")
    if xf.size:
        _sq_diff_partials[nb, TPB_FLAT](xf, tf, partial)
    total = partial.sum()
    if reduction == "mean":
        total = total / xf.size if xf.size else xp.asarray(float("nan"))
    return total.astype(xf.dtype).reshape(())


def mse_loss_bwd(dout, x, target, reduction):
    """dout (x's shape for 'none', else 0-d) -> dx = 2 (x - target) dout [/ numel for 'mean']."""
    xf = contiguous(x).reshape(-1)
    tf = contiguous(target, xf.dtype).reshape(-1)
    if reduction == "none":
        g = 2.0 * contiguous(dout, xf.dtype).reshape(-1)
    else:
        n = max(xf.size, 1) if reduction == "mean" else 1
        g = (contiguous(dout, xf.dtype).reshape(1) * (2.0 / n)).astype(xf.dtype)
    dx = empty(xf.shape, xf.dtype, xf)
    if xf.size:
        _scaled_diff[blocks(xf.size), TPB_FLAT](g, xf, tf, dx)
    return dx.reshape(x.shape)
