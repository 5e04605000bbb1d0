"""conv2d on the GPU as three implicit GEMMs, tiled in shared memory (no im2col buffer is ever built).

Per group g, with R = Cg*kh*kw and M = N*Ho*Wo:
  forward  y[k, m]  = sum_r  w[k, r] * xcol[r, m]          (Kg x M, reduce over R)
  dx       dx[c, p] = sum_r' w[k, c, i, j] * dout[...]      (Cg x N*H*W, reduce over r' = (k, i, j): the
                                                             output position that tap (i, j) maps p to)
  dw       dw[k, r] = sum_m  dout[k, m] * xcol[r, m]        (Kg x R, reduce over M)
xcol[r, m] is read straight from x (zero in the padding). A block computes a TILE x TILE tile of its
output: each step it loads a TILE x TILE slice of both operands into shared memory, then every thread adds
TILE products. Accumulation in the input's dtype (as cuDNN does for fp32); every output element is one
thread's sum in a fixed order, so there are no atomics and results repeat bit for bit. db is a CuPy sum.
"""
from numba import cuda, from_dtype

from ..reference.conv import conv2d_out_size
from ._dev import SIM, contiguous, empty
from ._launch import kernel

__all__ = ["conv2d_fwd", "conv2d_bwd"]

TILE = 8 if SIM else 16          # the simulator runs TILE^2 Python threads per block
_KERNELS = {}


def _kernels(dtype):
    """The three kernels for one dtype (shared tiles are typed at compile time)."""
    if dtype in _KERNELS:
        return _KERNELS[dtype]
    T = from_dtype(dtype)

    @kernel
    def fwd(x, w, b, has_b, sh, sw, pt, pl, dh, dw, Ho, Wo, y):
        g = cuda.blockIdx.z
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        N, C, H, W = x.shape
        K, Cg, kh, kw = w.shape
        Kg = K // cuda.gridDim.z
        R, M, khw = Cg * kh * kw, N * Ho * Wo, kh * kw
        m = cuda.blockIdx.x * TILE + tx
        k = cuda.blockIdx.y * TILE + ty
        n, oh, ow = m // (Ho * Wo), (m // Wo) % Ho, m % Wo
        a_s = cuda.shared.array((TILE, TILE), T)
        b_s = cuda.shared.array((TILE, TILE), T)
        acc = T(0)
        for r0 in range(0, R, TILE):
            r = r0 + tx
            a_s[ty, tx] = w[g * Kg + k, r // khw, (r // kw) % kh, r % kw] if k < Kg and r < R else T(0)
            r = r0 + ty
            v = T(0)
            if r < R and m < M:
                h = oh * sh + ((r // kw) % kh) * dh - pt
                c = ow * sw + (r % kw) * dw - pl
                if 0 <= h < H and 0 <= c < W:
                    v = x[n, g * Cg + r // khw, h, c]
            b_s[ty, tx] = v
            cuda.syncthreads()
            for t in range(TILE):
                acc += a_s[ty, t] * b_s[t, tx]
            cuda.syncthreads()
        if k < Kg and m < M:
            y[n, g * Kg + k, oh, ow] = acc + (b[g * Kg + k] if has_b else T(0))

    @kernel
    def bwd_dx(dout, w, sh, sw, pt, pl, dh, dw, dx):
        g = cuda.blockIdx.z
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        N, C, H, W = dx.shape
        K, Cg, kh, kw = w.shape
        Ho, Wo = dout.shape[2], dout.shape[3]
        Kg = K // cuda.gridDim.z
        R, P, khw = Kg * kh * kw, N * H * W, kh * kw
        p = cuda.blockIdx.x * TILE + tx
        c = cuda.blockIdx.y * TILE + ty
        n, h, wc = p // (H * W), (p // W) % H, p % W
        a_s = cuda.shared.array((TILE, TILE), T)
        b_s = cuda.shared.array((TILE, TILE), T)
        acc = T(0)
        for r0 in range(0, R, TILE):
            r = r0 + tx
            a_s[ty, tx] = w[g * Kg + r // khw, c, (r // kw) % kh, r % kw] if c < Cg and r < R else T(0)
            r = r0 + ty
            v = T(0)
            if r < R and p < P:
                a = h + pt - ((r // kw) % kh) * dh
                e = wc + pl - (r % kw) * dw
                if a >= 0 and e >= 0 and a % sh == 0 and e % sw == 0 and a // sh < Ho and e // sw < Wo:
                    v = dout[n, g * Kg + r // khw, a // sh, e // sw]
            b_s[ty, tx] = v
            cuda.syncthreads()
            for t in range(TILE):
                acc += a_s[ty, t] * b_s[t, tx]
            cuda.syncthreads()
        if c < Cg and p < P:
            dx[n, g * Cg + c, h, wc] = acc

    @kernel
    def bwd_dw(dout, x, sh, sw, pt, pl, dh, dw, dwo):
        g = cuda.blockIdx.z
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        N, C, H, W = x.shape
        K, Cg, kh, kw = dwo.shape
        Ho, Wo = dout.shape[2], dout.shape[3]
        Kg = K // cuda.gridDim.z
        R, M, khw = Cg * kh * kw, N * Ho * Wo, kh * kw
        r = cuda.blockIdx.x * TILE + tx
        k = cuda.blockIdx.y * TILE + ty
        a_s = cuda.shared.array((TILE, TILE), T)
        b_s = cuda.shared.array((TILE, TILE), T)
        acc = T(0)
        for m0 in range(0, M, TILE):
            m = m0 + tx
            a_s[ty, tx] = dout[m // (Ho * Wo), g * Kg + k, (m // Wo) % Ho, m % Wo] if k < Kg and m < M else T(0)
            m = m0 + ty
            v = T(0)
            if m < M and r < R:
                h = ((m // Wo) % Ho) * sh + ((r // kw) % kh) * dh - pt
                e = (m % Wo) * sw + (r % kw) * dw - pl
                if 0 <= h < H and 0 <= e < W:
                    v = x[m // (Ho * Wo), g * Cg + r // khw, h, e]
            b_s[ty, tx] = v
            cuda.syncthreads()
            for t in range(TILE):
                acc += a_s[ty, t] * b_s[t, tx]
            cuda.syncthreads()
        if k < Kg and r < R:
            dwo[g * Kg + k, r // khw, (r // kw) % kh, r % kw] = acc

    _KERNELS[dtype] = (fwd.register(dtype), bwd_dx.register(dtype), bwd_dw.register(dtype))
    return _KERNELS[dtype]


def _grid(cols, rows, groups):
    return (-(-cols // TILE), -(-rows // TILE), groups)


def conv2d_fwd(x, w, b, stride, padding, dilation, groups):
    """x (N, C, H, W), w (K, C // groups, kh, kw), b (K,) or None on the device -> y (N, K, Ho, Wo), x's dtype.
    stride (sh, sw), padding (top, bottom, left, right), dilation (dh, dw), already validated."""
    x = contiguous(x)
    w = contiguous(w, x.dtype)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    (sh, sw), (pt, _, pl, _), (dh, dw) = stride, padding, dilation
    Ho, Wo = conv2d_out_size(H, W, kh, kw, stride, padding, dilation)
    y = empty((N, K, Ho, Wo), x.dtype, x)
    if y.size:
        fwd = _kernels(x.dtype)[0]
        bb = contiguous(b, x.dtype) if b is not None else empty((1,), x.dtype, x)
        fwd[_grid(N * Ho * Wo, K // groups, groups), (TILE, TILE)](
            x, w, bb, b is not None, sh, sw, pt, pl, dh, dw, Ho, Wo, y)
    return y


def conv2d_bwd(dout, x, w, stride, padding, dilation, groups, need_dx=True, need_dw=True, need_db=True):
    """-> (dx, dw, db) in x's dtype, each None when not needed. dout (N, K, Ho, Wo)."""
    x = contiguous(x)
    w = contiguous(w, x.dtype)
    dout = contiguous(dout, x.dtype)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    (sh, sw), (pt, _, pl, _), (dh, dw) = stride, padding, dilation
    _, k_dx, k_dw = _kernels(x.dtype)
    dx = dwo = db = None
    if need_dx:
        dx = empty(x.shape, x.dtype, x)
        if dx.size:
            k_dx[_grid(N * H * W, Cg, groups), (TILE, TILE)](dout, w, sh, sw, pt, pl, dh, dw, dx)
    if need_dw:
        dwo = empty(w.shape, x.dtype, x)
        if dwo.size:
            k_dw[_grid(Cg * kh * kw, K // groups, groups), (TILE, TILE)](dout, x, sh, sw, pt, pl, dh, dw,
                                                                            dwo)
    if need_db:
        db = dout.sum(axis=(0, 2, 3)).astype(x.dtype)
    return dx, dwo, db
