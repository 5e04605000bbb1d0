"""Batch norm and layer norm on the GPU. Statistics are block-wide reductions in float64 shared memory,
two passes (the mean, then squared deviations around it), one block per channel (batch norm) or per row
(layer norm); the normalization itself is an elementwise kernel. Parameter gradients of layer norm are
column sums, one thread per column: no atomics, so every kernel gives the same bits run to run."""
import math

from numba import cuda, float64

from ._dev import TPB, TPB_FLAT, blocks, contiguous, empty, xp_of
from ._launch import kernel
from ._reduce import block_sum

__all__ = ["batch_norm_fwd_train", "batch_norm_fwd_eval", "batch_norm_bwd_train", "batch_norm_bwd_eval",
           "layer_norm_fwd", "layer_norm_bwd"]


def _vec(a, n, fill, like, dtype="float64"):
    xp = xp_of(like)
    return xp.full(n, fill, dtype) if a is None else contiguous(a, dtype)


def _bn_view(x, dtype=None):
    x = contiguous(x, dtype)
    return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))      # N may be 0


# ---------------------------------------------------------------------------------------------- batch norm
@kernel
def _bn_stats(x, eps, mean, rstd, var):
    """One block per channel c: mean, biased variance and rstd of x[:, c, :] (two passes, float64)."""
    c = cuda.blockIdx.x
    N, _, L = x.shape
    n = N * L
    sh = cuda.shared.array(TPB, float64)
    s = 0.0
    for i in range(cuda.threadIdx.x, n, TPB):
        s += float64(x[i // L, c, i % L])
    m = block_sum(sh, s) / max(n, 1)
    s = 0.0
    for i in range(cuda.threadIdx.x, n, TPB):
        d = float64(x[i // L, c, i % L]) - m
        s += d * d
    v = block_sum(sh, s) / max(n, 1)
    if cuda.threadIdx.x == 0:
        mean[c] = m
        var[c] = v
        rstd[c] = 1.0 / math.sqrt(v + eps)


@kernel
def _bn_affine(x, a, k, b, y):
    """y[n, c, l] = (x - k[c]) * a[c] + b[c], one thread per element."""
    i = cuda.grid(1)
    N, C, L = x.shape
    if i < N * C * L:
        l = i % L
        c = (i // L) % C
        n = i // (L * C)
        y[n, c, l] = (float64(x[n, c, l]) - k[c]) * a[c] + b[c]


@kernel
def _bn_grad_sums(g, x, mean, rstd, dw, db):
    """One block per channel: db = sum(g), dw = sum(g * xhat)."""
    c = cuda.blockIdx.x
    N, _, L = x.shape
    sh = cuda.shared.array(TPB, float64)
    s1 = 0.0
    s2 = 0.0
    for i in range(cuda.threadIdx.x, N * L, TPB):
        gv = float64(g[i // L, c, i % L])
        s1 += gv
        s2 += gv * (float64(x[i // L, c, i % L]) - mean[c])
    s1 = block_sum(sh, s1)
    s2 = block_sum(sh, s2)
    if cuda.threadIdx.x == 0:
        db[c] = s1
        dw[c] = s2 * rstd[c]


@kernel
def _bn_dx(g, x, w, mean, rstd, dw, db, train, dx):
    """dx = w rstd (g - [db + xhat dw] / n in training), one thread per element."""
    i = cuda.grid(1)
    N, C, L = x.shape
    if i < N * C * L:
        l = i % L
        c = (i // L) % C
        n = i // (L * C)
        r = rstd[c]
        v = float64(g[n, c, l])
        if train:
            cnt = N * L
            v -= (db[c] + (float64(x[n, c, l]) - mean[c]) * r * dw[c]) / cnt
        dx[n, c, l] = w[c] * r * v


def batch_norm_fwd_train(x, weight, bias, eps):
    """x (N, C, *) on the device -> (y like x, mean, rstd, var (C,) float64; var is the biased variance)."""
    x3 = _bn_view(x)
    N, C, L = x3.shape
    mean, rstd, var = (empty(C, "float64", x3) for _ in range(3))
    y = empty(x3.shape, x3.dtype, x3)
    if C:
        _bn_stats[C, TPB](x3, float(eps), mean, rstd, var)
        if x3.size:
            a = rstd * _vec(weight, C, 1.0, x3)
            _bn_affine[blocks(x3.size), TPB_FLAT](x3, a, mean, _vec(bias, C, 0.0, x3), y)
    return y.reshape(x.shape), mean, rstd, var


def batch_norm_fwd_eval(x, running_mean, running_var, weight, bias, eps):
    """x (N, C, *), running stats (C,) -> (y like x, mean = running_mean, rstd (C,) float64)."""
    x3 = _bn_view(x)
    N, C, L = x3.shape
    mean = _vec(running_mean, C, 0.0, x3).copy()
    rstd = 1.0 / xp_of(x3).sqrt(_vec(running_var, C, 1.0, x3) + eps)
    y = empty(x3.shape, x3.dtype, x3)
    if x3.size:
        a = rstd * _vec(weight, C, 1.0, x3)
        _bn_affine[blocks(x3.size), TPB_FLAT](x3, a, mean, _vec(bias, C, 0.0, x3),
                                                          y)
    return y.reshape(x.shape), mean, rstd


def _bn_bwd(dout, x, weight, mean, rstd, train):
    x3 = _bn_view(x)
    g3 = _bn_view(dout, x3.dtype)
    N, C, L = x3.shape
    mean, rstd = _vec(mean, C, 0.0, x3), _vec(rstd, C, 1.0, x3)
    dw, db = empty(C, "float64", x3), empty(C, "float64", x3)
    dx = empty(x3.shape, x3.dtype, x3)
    if C:
        _bn_grad_sums[C, TPB](g3, x3, mean, rstd, dw, db)
        if x3.size:
            _bn_dx[blocks(x3.size), TPB_FLAT](g3, x3, _vec(weight, C, 1.0, x3), mean, rstd,
                                                 dw, db, bool(train), dx)
    return dx.reshape(x.shape), dw.astype(x3.dtype), db.astype(x3.dtype)


def batch_norm_bwd_train(dout, x, weight, mean, rstd):
    """dout, x (N, C, *); mean, rstd from the forward -> (dx like x, dw (C,), db (C,))."""
    return _bn_bwd(dout, x, weight, mean, rstd, True)


def batch_norm_bwd_eval(dout, x, weight, mean, rstd):
    """Eval: dx = dout * weight * rstd; dw, db as in training."""
    return _bn_bwd(dout, x, weight, mean, rstd, False)


# ---------------------------------------------------------------------------------------------- layer norm
@kernel
def _ln_fwd(x, w, b, eps, y, mean, rstd):
    """One block per row: two-pass mean and variance in float64, then y = xhat * w + b."""
    r = cuda.blockIdx.x
    t = cuda.threadIdx.x
    D = x.shape[1]
    sh = cuda.shared.array(TPB, float64)
    s = 0.0
    for j in range(t, D, TPB):
        s += float64(x[r, j])
    m = block_sum(sh, s) / D
    s = 0.0
    for j in range(t, D, TPB):
        d = float64(x[r, j]) - m
        s += d * d
    rs = 1.0 / math.sqrt(block_sum(sh, s) / D + eps)
    if t == 0:
        mean[r] = m
        rstd[r] = rs
    for j in range(t, D, TPB):
        y[r, j] = (float64(x[r, j]) - m) * rs * w[j] + b[j]


@kernel
def _ln_bwd_dx(g, x, w, mean, rstd, dx):
    """One block per row: dx = rstd (gw - mean(gw) - xhat mean(gw xhat)), gw = g * w."""
    r = cuda.blockIdx.x
    t = cuda.threadIdx.x
    D = x.shape[1]
    sh = cuda.shared.array(TPB, float64)
    m, rs = mean[r], rstd[r]
    s1 = 0.0
    s2 = 0.0
    for j in range(t, D, TPB):
        gw = float64(g[r, j]) * w[j]
        s1 += gw
        s2 += gw * (float64(x[r, j]) - m) * rs
    s1 = block_sum(sh, s1) / D
    s2 = block_sum(sh, s2) / D
    for j in range(t, D, TPB):
        xh = (float64(x[r, j]) - m) * rs
        dx[r, j] = rs * (float64(g[r, j]) * w[j] - s1 - xh * s2)


@kernel
def _ln_bwd_params(g, x, mean, rstd, dw, db):
    """One thread per column j: dw[j] = sum_r g xhat, db[j] = sum_r g (rows in order: deterministic)."""
    j = cuda.grid(1)
    R, D = x.shape
    if j < D:
        s1 = 0.0
        s2 = 0.0
        for r in range(R):
            gv = float64(g[r, j])
            s1 += gv
            s2 += gv * (float64(x[r, j]) - mean[r]) * rstd[r]
        db[j] = s1
        dw[j] = s2


def layer_norm_fwd(x, weight, bias, eps):
    """x (rows, D), weight/bias (D,) or None -> (y (rows, D), mean (rows,), rstd (rows,) float64)."""
    x = contiguous(x)
    R, D = x.shape
    y = empty(x.shape, x.dtype, x)
    mean, rstd = empty(R, "float64", x), empty(R, "float64", x)
    if R and D:
        _ln_fwd[R, TPB](x, _vec(weight, D, 1.0, x), _vec(bias, D, 0.0, x), float(eps),
                                   y, mean, rstd)
    return y, mean, rstd


def layer_norm_bwd(dout, x, weight, mean, rstd):
    """dout, x (rows, D); mean, rstd (rows,) -> (dx (rows, D), dw (D,), db (D,)) in x's dtype."""
    x = contiguous(x)
    dout = contiguous(dout, x.dtype)
    R, D = x.shape
    mean, rstd = contiguous(mean, "float64"), contiguous(rstd, "float64")
    dx = empty(x.shape, x.dtype, x)
    dw, db = empty(D, "float64", x), empty(D, "float64", x)
    if R and D:
        _ln_bwd_dx[R, TPB](dout, x, _vec(weight, D, 1.0, x), mean, rstd, dx)
        _ln_bwd_params[blocks(D), TPB_FLAT](dout, x, mean, rstd, dw, db)
    elif D:
        dw[...] = 0
        db[...] = 0
    return dx, dw.astype(x.dtype), db.astype(x.dtype)
