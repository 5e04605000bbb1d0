"""conv2d on the GPU as three implicit GEMMs, register-tiled in shared memory (no im2col buffer is built).

Per group g, with R = Cg*kh*kw and M = N*Ho*Wo:
  forward  y[k, m]  = sum_r  w[k, r] * xcol[r, m]          (Kg x M, reduce over R)
  dx       dx[c, p] = sum_r' w[k, c, i, j] * dout[...]      (Cg x N*H*W, reduce over r' = (k, i, j): the
                                                             output position that tap (i, j) maps p to)
  dw       dw[k, r] = sum_m  dout[k, m] * xcol[r, m]        (Kg x R, reduce over M, split over blocks)
xcol[r, m] is read straight from x (zero in the padding). All three are one kernel template, `_gemm`, given
the operands' loaders: a block of TY x TX threads computes a BM x BN tile of the output, each thread RM x RN
of it in registers (rows ty, ty + TY, ...; columns tx, tx + TX, ...). Each step the block loads a BK-deep
slice of both operands into shared memory, then every thread does BK * RM * RN multiply-adds from RM + RN
values per k: four times the work per shared-memory read of a one-output-per-thread tile. dw's reduction
(over every output position) is long and its output small, so it is split over `nsplit` blocks writing
partial sums that a CuPy sum adds in a fixed order. Accumulation in the input's dtype (as cuDNN does for
fp32); no atomics, so results repeat bit for bit. db is a CuPy sum.
"""
import numpy as np
from numba import cuda, from_dtype

from ..common import conv2d_out_size
from ._dev import SIM, contiguous, empty, xp_of
from ._launch import kernel

__all__ = ["conv2d_fwd", "conv2d_bwd"]

# threads per block TY x TX, outputs per thread RM x RN, reduction depth per step BK. The simulator runs
# every thread as a Python thread: it gets a 4 x 4 block of 2 x 2 outputs (same code paths, partial tiles).
TX = TY = 4 if SIM else 16
RM = RN = 2 if SIM else 4
BK = 4 if SIM else 16
BM, BN, NT, RMN = TY * RM, TX * RN, TX * TY, RM * RN     # (Numba sizes local arrays by plain names only)
SPLIT_TARGET = 16 if SIM else 264     # dw: aim for about this many blocks (two per SM on an H100)

_KERNELS = {}


def _gemm(name, T, dims, load_a, load_b, store):
    """The kernel `name` computing out = A B per group (blockIdx.z // nsplit) and reduction split (blockIdx.z % nsplit);
    dims(a, b, out, G) -> (rows, cols, red); load_a(a, b, out, g, row, r, geo...) and load_b(..., r, col,
    geo...) give one operand element (0 outside); store(out, bias, has_b, s, g, row, col, value, geo...)."""

    def gemm(a, b, bias, has_b, sh, sw, pt, pl, dh, dw, G, nsplit, out):
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tid = ty * TX + tx
        g = cuda.blockIdx.z // nsplit
        s = cuda.blockIdx.z - g * nsplit
        rows, cols, red = dims(a, b, out, G)
        row0, col0 = cuda.blockIdx.y * BM, cuda.blockIdx.x * BN
        chunk = -(-red // (nsplit * BK)) * BK                  # this block's share of the reduction
        lo, hi = s * chunk, min(red, (s + 1) * chunk)
        a_s = cuda.shared.array((BK, BM), T)
        b_s = cuda.shared.array((BK, BN), T)
        acc = cuda.local.array(RMN, T)
        ar = cuda.local.array(RM, T)
        br = cuda.local.array(RN, T)
        for q in range(RMN):
            acc[q] = T(0)
        for r0 in range(lo, hi, BK):
            for e in range(tid, BK * BM, NT):                  # consecutive threads walk the reduction
                t = e % BK
                i = e // BK
                row, r = row0 + i, r0 + t
                a_s[t, i] = load_a(a, b, out, g, row, r, sh, sw, pt, pl, dh, dw, G) if row < rows and r < hi \
                    else T(0)
            for e in range(tid, BK * BN, NT):                  # ... and the output columns
                j = e % BN
                t = e // BN
                r, col = r0 + t, col0 + j
                b_s[t, j] = load_b(a, b, out, g, r, col, sh, sw, pt, pl, dh, dw, G) if r < hi and col < cols \
                    else T(0)
            cuda.syncthreads()
            for t in range(BK):
                for i in range(RM):
                    ar[i] = a_s[t, ty + TY * i]
                for j in range(RN):
                    br[j] = b_s[t, tx + TX * j]
                for i in range(RM):
                    for j in range(RN):
                        acc[i * RN + j] += ar[i] * br[j]
            cuda.syncthreads()
        for i in range(RM):
            row = row0 + ty + TY * i
            for j in range(RN):
                col = col0 + tx + TX * j
                if row < rows and col < cols:
                    store(out, bias, has_b, s, g, row, col, acc[i * RN + j], sh, sw, pt, pl, dh, dw, G)
    # named as made by _kernels(dtype), which is how kernels/ptxcheck.py rebuilds it
    gemm.__name__, gemm.__qualname__ = name, f"_kernels.<locals>.{name}"
    return kernel(gemm)


def _kernels(dtype):
    """(fwd, bwd_dx, bwd_dw) for one dtype (shared tiles and accumulators are typed at compile time)."""
    dtype = np.dtype(dtype)
    if dtype in _KERNELS:
        return _KERNELS[dtype]
    T = from_dtype(dtype)
    jit = cuda.jit(device=True)

    # ---- forward: a = w (K, Cg, kh, kw), b = x (N, C, H, W), out = y (N, K, Ho, Wo)
    @jit
    def fwd_dims(w, x, y, G):
        return w.shape[0] // G, y.shape[0] * y.shape[2] * y.shape[3], w.shape[1] * w.shape[2] * w.shape[3]

    @jit
    def fwd_a(w, x, y, g, k, r, sh, sw, pt, pl, dh, dw, G):
        kh, kw = w.shape[2], w.shape[3]
        return w[g * (w.shape[0] // G) + k, r // (kh * kw), (r // kw) % kh, r % kw]

    @jit
    def fwd_b(w, x, y, g, r, m, sh, sw, pt, pl, dh, dw, G):
        kh, kw, Ho, Wo = w.shape[2], w.shape[3], y.shape[2], y.shape[3]
        h = ((m // Wo) % Ho) * sh + ((r // kw) % kh) * dh - pt
        c = (m % Wo) * sw + (r % kw) * dw - pl
        if 0 <= h < x.shape[2] and 0 <= c < x.shape[3]:
            return x[m // (Ho * Wo), g * w.shape[1] + r // (kh * kw), h, c]
        return T(0)

    @jit
    def fwd_store(y, bias, has_b, s, g, k, m, v, sh, sw, pt, pl, dh, dw, G):
        Ho, Wo = y.shape[2], y.shape[3]
        kk = g * (y.shape[1] // G) + k
        y[m // (Ho * Wo), kk, (m // Wo) % Ho, m % Wo] = v + (bias[kk] if has_b else T(0))

    # ---- dx: a = w (K, Cg, kh, kw), b = dout (N, K, Ho, Wo), out = dx (N, C, H, W)
    @jit
    def dx_dims(w, dout, dx, G):
        return w.shape[1], dx.shape[0] * dx.shape[2] * dx.shape[3], (w.shape[0] // G) * w.shape[2] * w.shape[3]

    @jit
    def dx_a(w, dout, dx, g, c, r, sh, sw, pt, pl, dh, dw, G):
        kh, kw = w.shape[2], w.shape[3]
        return w[g * (w.shape[0] // G) + r // (kh * kw), c, (r // kw) % kh, r % kw]

    @jit
    def dx_b(w, dout, dx, g, r, p, sh, sw, pt, pl, dh, dw, G):
        kh, kw, H, W = w.shape[2], w.shape[3], dx.shape[2], dx.shape[3]
        a = (p // W) % H + pt - ((r // kw) % kh) * dh
        e = p % W + pl - (r % kw) * dw
        if a >= 0 and e >= 0 and a % sh == 0 and e % sw == 0 and a // sh < dout.shape[2] and e // sw < dout.shape[3]:
            return dout[p // (H * W), g * (w.shape[0] // G) + r // (kh * kw), a // sh, e // sw]
        return T(0)

    @jit
    def dx_store(dx, bias, has_b, s, g, c, p, v, sh, sw, pt, pl, dh, dw, G):
        H, W = dx.shape[2], dx.shape[3]
        dx[p // (H * W), g * (dx.shape[1] // G) + c, (p // W) % H, p % W] = v

    # ---- dw: a = dout (N, K, Ho, Wo), b = x (N, C, H, W), out = partial sums (nsplit, K, Cg, kh, kw)
    @jit
    def dw_dims(dout, x, part, G):
        return part.shape[1] // G, part.shape[2] * part.shape[3] * part.shape[4], \
            dout.shape[0] * dout.shape[2] * dout.shape[3]

    @jit
    def dw_a(dout, x, part, g, k, m, sh, sw, pt, pl, dh, dw, G):
        Ho, Wo = dout.shape[2], dout.shape[3]
        return dout[m // (Ho * Wo), g * (part.shape[1] // G) + k, (m // Wo) % Ho, m % Wo]

    @jit
    def dw_b(dout, x, part, g, m, r, sh, sw, pt, pl, dh, dw, G):
        Ho, Wo, kh, kw = dout.shape[2], dout.shape[3], part.shape[3], part.shape[4]
        h = ((m // Wo) % Ho) * sh + ((r // kw) % kh) * dh - pt
        e = (m % Wo) * sw + (r % kw) * dw - pl
        if 0 <= h < x.shape[2] and 0 <= e < x.shape[3]:
            return x[m // (Ho * Wo), g * part.shape[2] + r // (kh * kw), h, e]
        return T(0)

    @jit
    def dw_store(part, bias, has_b, s, g, k, r, v, sh, sw, pt, pl, dh, dw, G):
        kh, kw = part.shape[3], part.shape[4]
        part[s, g * (part.shape[1] // G) + k, r // (kh * kw), (r // kw) % kh, r % kw] = v

    ks = (_gemm("fwd", T, fwd_dims, fwd_a, fwd_b, fwd_store), _gemm("bwd_dx", T, dx_dims, dx_a, dx_b, dx_store),
          _gemm("bwd_dw", T, dw_dims, dw_a, dw_b, dw_store))
    _KERNELS[dtype] = tuple(k.register(dtype) for k in ks)
    return _KERNELS[dtype]


def _grid(rows, cols, groups):
    return (-(-cols // BN), -(-rows // BM), groups)


def _splits(rows, cols, groups, red):
    """How many blocks share dw's reduction: enough for about SPLIT_TARGET blocks, each at least 4 steps."""
    gx, gy, _ = _grid(rows, cols, groups)
    want = -(-SPLIT_TARGET // (gx * gy * groups))
    return max(1, min(want, red // (4 * BK)))


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
        fwd[_grid(K // groups, N * Ho * Wo, groups), (TX, TY)](w, x, bb, b is not None, sh, sw, pt, pl, dh, dw,
                                                              groups, 1, y)
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
            k_dx[_grid(Cg, N * H * W, groups), (TX, TY)](w, dout, dout, False, sh, sw, pt, pl, dh, dw, groups, 1, dx)
    if need_dw:
        red = N * dout.shape[2] * dout.shape[3]
        if red == 0 or w.size == 0:
            dwo = xp_of(x).zeros(w.shape, x.dtype)
        else:
            ns = _splits(K // groups, Cg * kh * kw, groups, red)
            part = empty((ns,) + w.shape, x.dtype, x)
            k_dw[_grid(K // groups, Cg * kh * kw, groups * ns), (TX, TY)](dout, x, dout, False, sh, sw, pt, pl, dh,
                                                                          dw, groups, ns, part)
            dwo = part[0] if ns == 1 else part.sum(axis=0)
    if need_db:
        db = dout.sum(axis=(0, 2, 3)).astype(x.dtype)
    return dx, dwo, db
