"""Numba CPU kernels for the pool family (same names and signatures as kernels.reference.pool).

Layout: NCHW as P = N*C planes; every kernel is a `prange` over planes (or chunks of planes that
share a scratch buffer); an iteration owns its output plane, so backward scatters never race and
results do not depend on the thread count.

Forward: when some window reaches into the padding or the ceil_mode overhang, the input is first
copied into a padded (P,RP,WP) array (-inf for max, 0 for avg), so every window is a full one and
no output needs a per-element border branch. Each output row is then a loop over output columns
with the window unrolled: the common windows are passed as literals (max 2x2/s2 and 3x3/s2, avg
3x3/s1 and 2x2/s2) so LLVM unrolls them and vectorizes across output columns; others take the
same code with runtime sizes. Speed rules learned here (numba 0.68, measured):
- index with range variables counted from 0 or with uint64 casts: a signed index that may be
  negative gets a wraparound select that blocks vectorization;
- never mix uint64 and int64 in arithmetic (numba makes it float64); no builtin max()/min() in
  inner loops (ternaries vectorize, max() did not);
- create no views of shared arrays and call no non-inlined function with them inside the prange
  loop: each costs an atomic refcount, and two threads then fight over one cache line.
"""
import numba
import numpy as np
from numba import njit, prange, uint64

from ..common import pool_output_size
from ._config import FASTMATH_ELEMENTWISE

__all__ = ["max_pool2d_fwd", "max_pool2d_bwd", "avg_pool2d_fwd", "avg_pool2d_bwd",
           "adaptive_avg_pool2d_fwd", "adaptive_avg_pool2d_bwd"]


def _chunks(P):
    return max(1, min(P, 8 * numba.get_num_threads()))


def _geometry(shape, kernel_size, stride, padding, ceil_mode):
    """Output size, padded source size (RP, WP) and whether a padded copy is needed."""
    H, W = shape[-2:]
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    OH, OW = pool_output_size(H, kh, sh, ph, ceil_mode), pool_output_size(W, kw, sw, pw, ceil_mode)
    RP = max(H + 2 * ph, (OH - 1) * sh + kh)       # ceil_mode's last window may overhang the pad
    WP = max(W + 2 * pw, (OW - 1) * sw + kw)
    direct = ph == 0 and pw == 0 and (OH - 1) * sh + kh <= H and (OW - 1) * sw + kw <= W
    return OH, OW, RP, WP, direct


@njit(cache=True, parallel=True, error_model="numpy")
def _pad_planes(x, ph, pw, RP, WP, fill):
    """x (P,H,W) -> (P,RP,WP) copy with x at offset (ph, pw) and `fill` around. prange over planes."""
    P, H, W = x.shape
    xp = np.empty((P, RP, WP), x.dtype)
    for p in prange(P):
        for r in range(RP):
            for w in range(WP):
                xp[p, r, w] = fill
        for h in range(H):
            for w in range(W):
                xp[p, uint64(h + ph), uint64(w + pw)] = x[p, h, w]
    return xp


def _source(x, kernel_size, stride, padding, ceil_mode, fill):
    """The (P,RP,WP) array the forward kernels read: x itself when every window is inside it,
    else a padded copy (padding and the ceil_mode overhang filled with `fill`)."""
    N, C, H, W = x.shape
    OH, OW, RP, WP, direct = _geometry(x.shape, kernel_size, stride, padding, ceil_mode)
    xc = np.ascontiguousarray(x).reshape(N * C, H, W)
    if not direct:
        xc = _pad_planes(xc, padding[0], padding[1], RP, WP, x.dtype.type(fill))
    return xc, OH, OW


# ---------------------------------------------------------------------------------------- max pool
@njit(cache=True, inline="always", error_model="numpy")
def _max_row(src, sp, out, am, p, oh, hs, ph, pw, W, OW, KH, KW, SW):
    """Output row oh from source rows hs.. (source = image shifted by (ph, pw), padded with -inf).

    The scan starts at the window's first in-image element, then takes v if v > max or v is NaN:
    PyTorch's rule (first max in row-major order; the last NaN). Padding never wins.
    """
    kb = ((hs if hs > ph else ph) - ph) * W - pw      # ternaries, not max(): max() blocks vectorizing
    for q in range(OW):
        ws = q * SW
        m = src[sp, uint64(hs), uint64(ws)]            # -inf if padding, else the first in-image element
        k = kb + (ws if ws > pw else pw)
        for i in range(KH):
            for j in range(KW):
                v = src[sp, uint64(hs + i), uint64(ws + j)]
                t = (v > m) | (v != v)
                m = v if t else m
                k = (hs + i - ph) * W + ws + j - pw if t else k
        out[p, uint64(oh), q] = m
        am[p, uint64(oh), q] = k


# src (P,RP,WP) (-inf padded or the input itself) -> out, am (P,OH,OW); am indexes the unpadded W-wide plane.
# prange over planes. Three kernels, not three branches of one: the common windows get literal sizes
# (unrolled, vectorized), and a first use compiles only the kernel it needs (a third of the compile time).
@njit(cache=True, parallel=True, error_model="numpy")
def _max_fwd_2x2s2(src, out, am, sh, ph, pw, W):
    for p in prange(src.shape[0]):
        for oh in range(out.shape[1]):
            _max_row(src, p, out, am, p, oh, oh * sh, ph, pw, W, out.shape[2], 2, 2, 2)


@njit(cache=True, parallel=True, error_model="numpy")
def _max_fwd_3x3s2(src, out, am, sh, ph, pw, W):
    for p in prange(src.shape[0]):
        for oh in range(out.shape[1]):
            _max_row(src, p, out, am, p, oh, oh * sh, ph, pw, W, out.shape[2], 3, 3, 2)


@njit(cache=True, parallel=True, error_model="numpy")
def _max_fwd_any(src, out, am, kh, kw, sh, sw, ph, pw, W):
    for p in prange(src.shape[0]):
        for oh in range(out.shape[1]):
            _max_row(src, p, out, am, p, oh, oh * sh, ph, pw, W, out.shape[2], kh, kw, sw)


def _max_fwd(src, out, am, kh, kw, sh, sw, ph, pw, W):
    if kw == sw == 2 and kh == 2:
        _max_fwd_2x2s2(src, out, am, sh, ph, pw, W)
    elif kw == kh == 3 and sw == 2:
        _max_fwd_3x3s2(src, out, am, sh, ph, pw, W)
    else:
        _max_fwd_any(src, out, am, kh, kw, sh, sw, ph, pw, W)


@njit(cache=True, parallel=True, error_model="numpy")
def _max_bwd(dout, am, dx, overlap):
    """dout, am (P,L) -> dx (P,HW) overwritten: zero the plane, then scatter. prange over planes.
    Windows that cannot overlap get a plain store (LLVM makes it an AVX-512 scatter), else +=."""
    P, L = dout.shape
    for p in prange(P):
        for i in range(dx.shape[1]):
            dx[p, i] = 0.0
        if overlap:
            for k in range(L):
                dx[p, uint64(am[p, k])] += dout[p, k]
        else:
            for k in range(L):
                dx[p, uint64(am[p, k])] = dout[p, k]


@njit(cache=True, parallel=True, error_model="numpy")
def _max_bwd_2x2_f32(gbits, am, dx64):
    """float32 2x2 / stride 2 / no padding, H and W even (every dx element in exactly one window):
    gbits (P,OH,OW) uint32 = dout's bits, am (P,OH,OW) -> dx64 (P,H,W/2) uint64 = dx's bits, each
    horizontal pair of dx written once as one 64-bit word (no zero pass, no scatter; contiguous
    stores LLVM vectorizes). prange over planes."""
    P, OH, OW = gbits.shape
    W = 2 * OW
    z = uint64(0)
    for p in prange(P):
        for oh in range(OH):
            hs = 2 * oh
            for q in range(OW):
                b = uint64(gbits[p, uint64(oh), q])
                t = am[p, uint64(oh), q] - (hs * W + 2 * q)
                dx64[p, uint64(hs), q] = (b if t == 0 else z) | ((b if t == 1 else z) << uint64(32))
                dx64[p, uint64(hs + 1), q] = (b if t == W else z) | ((b if t == W + 1 else z) << uint64(32))


def max_pool2d_fwd(x, kernel_size, stride, padding, ceil_mode):
    """x (N,C,H,W) -> out (N,C,OH,OW) in x's dtype, argmax (N,C,OH,OW) int32 (flat h*W+w in the plane)."""
    N, C, H, W = x.shape
    src, OH, OW = _source(x, kernel_size, stride, padding, ceil_mode, -np.inf)
    out = np.empty((N * C, OH, OW), dtype=x.dtype)
    am = np.empty((N * C, OH, OW), dtype=np.int32)
    _max_fwd(src, out, am, *kernel_size, *stride, *padding, W)
    return out.reshape(N, C, OH, OW), am.reshape(N, C, OH, OW)


def max_pool2d_bwd(dout, argmax, x_shape, kernel_size, stride, padding, ceil_mode):
    """dout (N,C,OH,OW), argmax int32 -> dx (N,C,H,W) in dout's dtype (summed where windows overlap)."""
    N, C, H, W = x_shape
    OH, OW = dout.shape[2], dout.shape[3]
    if (dout.dtype == np.float32 and tuple(kernel_size) == (2, 2) and tuple(stride) == (2, 2)
            and tuple(padding) == (0, 0) and H == 2 * OH and W == 2 * OW):
        dx = np.empty((N * C, H, W), dtype=np.float32)
        gbits = np.ascontiguousarray(dout).reshape(N * C, OH, OW).view(np.uint32)
        a = np.ascontiguousarray(argmax, dtype=np.int32).reshape(N * C, OH, OW)
        _max_bwd_2x2_f32(gbits, a, dx.view(np.uint64))
        return dx.reshape(N, C, H, W)
    L = OH * OW
    d = np.ascontiguousarray(dout).reshape(N * C, L)
    a = np.ascontiguousarray(argmax, dtype=np.int32).reshape(N * C, L)
    dx = np.empty((N * C, H * W), dtype=dout.dtype)
    overlap = stride[0] < kernel_size[0] or stride[1] < kernel_size[1]
    _max_bwd(d, a, dx, overlap)
    return dx.reshape(N, C, H, W)


# ---------------------------------------------------------------------------------------- avg pool
def _divisors(n, k, s, p, o, count_include_pad, dtype):
    """Per output index along one axis: the window length PyTorch divides by (clipped to n + p
    with count_include_pad, else to the image). The 2-D divisor is the product of the two axes'."""
    i = np.arange(o)
    start = i * s - p
    end = np.minimum(start + k, n + p)
    if not count_include_pad:
        return (np.minimum(end, n) - np.maximum(start, 0)).astype(dtype)
    return (end - start).astype(dtype)


@njit(cache=True, inline="always", error_model="numpy")
def _avg_row(src, sp, out, p, oh, hs, rd, cd, OW, acc0, KH, KW, SW):
    """out[p, oh, q] = (sum of the window at source rows hs.., cols q*SW..) / (rd * cd[q])."""
    for q in range(OW):
        ws = q * SW
        s = acc0
        for i in range(KH):
            for j in range(KW):
                s += src[sp, uint64(hs + i), uint64(ws + j)]
        out[p, uint64(oh), q] = s / (rd * cd[q])


@njit(cache=True, parallel=True, error_model="numpy")
def _avg_fwd(src, out, kh, kw, sh, sw, rdiv, cdiv, zero):
    """src (P,RP,WP) (zero padded or the input itself) -> out (P,OH,OW). prange over planes."""
    OH, OW = out.shape[1], out.shape[2]
    for p in prange(src.shape[0]):
        for oh in range(OH):
            hs = oh * sh
            rd = rdiv[oh]
            if kh == 3 and kw == 3 and sw == 1:      # literal windows sum in the input dtype
                _avg_row(src, p, out, p, oh, hs, rd, cdiv, OW, zero, 3, 3, 1)
            elif kh == 2 and kw == 2 and sw == 2:
                _avg_row(src, p, out, p, oh, hs, rd, cdiv, OW, zero, 2, 2, 2)
            else:                                     # any other window sums in float64
                _avg_row(src, p, out, p, oh, hs, rd, cdiv, OW, 0.0, kh, kw, sw)


@njit(cache=True, inline="always", error_model="numpy")
def _box_row(gp, dx, p, h, ph, pw, W, zero, KH, KW):
    """dx[p, h, w] = sum of gp[0, h+ph+a, w+pw+b] over the KH x KW box (stride-1 backward)."""
    for w in range(W):
        s = zero
        for a in range(KH):
            for b in range(KW):
                s += gp[0, uint64(h + ph + a), uint64(w + pw + b)]
        dx[p, uint64(h), w] = s


@njit(cache=True, parallel=True, error_model="numpy")
def _avg_bwd_s1(dout, dx, ph, pw, rdiv, cdiv, zero, nchunk):
    """3x3 stride 1: dx is a 3x3 box sum of g = dout / divisor, laid in a zero border of width 2.
    dout (P,OH,OW) -> dx (P,H,W). prange over chunks of planes (one scratch per chunk)."""
    P, OH, OW = dout.shape
    H, W = dx.shape[1], dx.shape[2]
    for c in prange(nchunk):
        gp = np.zeros((1, OH + 4, OW + 4), dout.dtype)
        for p in range(c * P // nchunk, (c + 1) * P // nchunk):
            for oh in range(OH):
                rd = rdiv[oh]
                for ow in range(OW):
                    gp[0, uint64(oh + 2), uint64(ow + 2)] = dout[p, oh, ow] / (rd * cdiv[ow])
            for h in range(H):
                _box_row(gp, dx, p, h, ph, pw, W, zero, 3, 3)


@njit(cache=True, parallel=True, error_model="numpy")
def _avg_bwd_scatter(dout, dx, kh, kw, sh, sw, ph, pw, RP, WP, rdiv, cdiv, nchunk):
    """Any stride: each output adds g = dout / divisor over its window in a zeroed padded scratch,
    whose image part is then copied to dx. prange over chunks of planes."""
    P, OH, OW = dout.shape
    H, W = dx.shape[1], dx.shape[2]
    for c in prange(nchunk):
        buf = np.empty((RP, WP), dout.dtype)
        g = np.empty(OW, dout.dtype)
        for p in range(c * P // nchunk, (c + 1) * P // nchunk):
            for r in range(RP):
                for w in range(WP):
                    buf[r, w] = 0.0
            for oh in range(OH):
                rd = rdiv[oh]
                for ow in range(OW):
                    g[ow] = dout[p, oh, ow] / (rd * cdiv[ow])
                for i in range(kh):
                    r = uint64(oh * sh + i)
                    for j in range(kw):
                        for ow in range(OW):
                            buf[r, uint64(ow * sw + j)] += g[ow]
            for h in range(H):
                for w in range(W):
                    dx[p, h, w] = buf[uint64(h + ph), uint64(w + pw)]


def avg_pool2d_fwd(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """x (N,C,H,W) -> out (N,C,OH,OW) in x's dtype. Saves nothing (backward needs only shapes)."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    src, OH, OW = _source(x, kernel_size, stride, padding, ceil_mode, 0.0)
    rdiv = _divisors(H, kh, sh, ph, OH, count_include_pad, x.dtype)
    cdiv = _divisors(W, kw, sw, pw, OW, count_include_pad, x.dtype)
    out = np.empty((N * C, OH, OW), dtype=x.dtype)
    _avg_fwd(src, out, kh, kw, sh, sw, rdiv, cdiv, x.dtype.type(0))
    return out.reshape(N, C, OH, OW)


def avg_pool2d_bwd(dout, x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """dout (N,C,OH,OW) -> dx (N,C,H,W) in dout's dtype: each output's dout/divisor over its window."""
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    OH, OW, RP, WP, _ = _geometry(x_shape, kernel_size, stride, padding, ceil_mode)
    rdiv = _divisors(H, kh, sh, ph, OH, count_include_pad, dout.dtype)
    cdiv = _divisors(W, kw, sw, pw, OW, count_include_pad, dout.dtype)
    d = np.ascontiguousarray(dout).reshape(N * C, OH, OW)
    dx = np.empty((N * C, H, W), dtype=dout.dtype)
    if (kh, kw, sh, sw) == (3, 3, 1, 1):
        _avg_bwd_s1(d, dx, ph, pw, rdiv, cdiv, dout.dtype.type(0), _chunks(N * C))
    else:
        _avg_bwd_scatter(d, dx, kh, kw, sh, sw, ph, pw, RP, WP, rdiv, cdiv, _chunks(N * C))
    return dx.reshape(N, C, H, W)


# ------------------------------------------------------------------------------- adaptive avg pool
def _bins(n, o):
    i = np.arange(o)
    return (i * n) // o, -((-(i + 1) * n) // o)


@njit(cache=True, parallel=True, fastmath=FASTMATH_ELEMENTWISE, error_model="numpy")
def _global_avg_fwd(x, out, zero):
    """x (P,L) -> out (P,) plane means: blocks of 256 summed in the input dtype (reassociated, so
    vectorized), block sums added in float64. prange over planes."""
    P, L = x.shape
    for p in prange(P):
        s = 0.0
        for b in range((L + 255) // 256):
            e = b * 256 + 256
            e = e if e < L else L
            part = zero
            for i in range(b * 256, e):
                part += x[p, uint64(i)]
            s += part
        out[p] = s / L


@njit(cache=True, parallel=True, error_model="numpy")
def _global_avg_bwd(dout, dx):
    """dout (P,) -> dx (P,L) = dout / L. prange over planes."""
    P, L = dx.shape
    for p in prange(P):
        g = dout[p] / L
        for i in range(L):
            dx[p, i] = g


@njit(cache=True, parallel=True, error_model="numpy")
def _adaptive_fwd(x, out, hs, he, ws, we, nchunk):
    """x (P,H,W) -> out (P,OH,OW) bin means, separably: column sums over each row bin (float64,
    vectorized along W), then sums over each column bin. prange over chunks of planes."""
    P, H, W = x.shape
    OH, OW = out.shape[1], out.shape[2]
    for c in prange(nchunk):
        t = np.empty((OH, W))
        for p in range(c * P // nchunk, (c + 1) * P // nchunk):
            for oh in range(OH):
                for w in range(W):
                    t[oh, w] = 0.0
                for h in range(hs[oh], he[oh]):
                    for w in range(W):
                        t[oh, w] += x[p, uint64(h), w]
                for ow in range(OW):
                    s = 0.0
                    for w in range(ws[ow], we[ow]):
                        s += t[oh, uint64(w)]
                    out[p, oh, ow] = s / ((he[oh] - hs[oh]) * (we[ow] - ws[ow]))


@njit(cache=True, parallel=True, error_model="numpy")
def _adaptive_bwd(dout, dx, hs, he, ws, we, nchunk):
    """dout (P,OH,OW) -> dx (P,H,W): each bin's dout / size spread over the bin, separably (column
    spread into a (OH,W) row per row bin, then rows added over each row bin). prange over chunks."""
    P, H, W = dx.shape
    OH, OW = dout.shape[1], dout.shape[2]
    for c in prange(nchunk):
        t = np.empty((OH, W), dx.dtype)
        for p in range(c * P // nchunk, (c + 1) * P // nchunk):
            for oh in range(OH):
                for w in range(W):
                    t[oh, w] = 0.0
                for ow in range(OW):
                    g = dout[p, oh, ow] / ((he[oh] - hs[oh]) * (we[ow] - ws[ow]))
                    for w in range(ws[ow], we[ow]):
                        t[oh, uint64(w)] += g
            for h in range(H):
                for w in range(W):
                    dx[p, h, w] = 0.0
            for oh in range(OH):
                for h in range(hs[oh], he[oh]):
                    for w in range(W):
                        dx[p, uint64(h), w] += t[oh, w]


def adaptive_avg_pool2d_fwd(x, output_size):
    """x (N,C,H,W) -> out (N,C,OH,OW) in x's dtype; bin i = [floor(i*H/OH), ceil((i+1)*H/OH))."""
    N, C, H, W = x.shape
    OH, OW = output_size
    xc = np.ascontiguousarray(x)
    out = np.empty((N * C, OH, OW), dtype=x.dtype)
    if OH == 1 and OW == 1:
        _global_avg_fwd(xc.reshape(N * C, H * W), out.reshape(N * C), x.dtype.type(0))
    else:
        _adaptive_fwd(xc.reshape(N * C, H, W), out, *_bins(H, OH), *_bins(W, OW), _chunks(N * C))
    return out.reshape(N, C, OH, OW)


def adaptive_avg_pool2d_bwd(dout, x_shape):
    """dout (N,C,OH,OW) -> dx (N,C,H,W) in dout's dtype: each bin's dout / bin size over the bin."""
    N, C, H, W = x_shape
    OH, OW = dout.shape[2:]
    d = np.ascontiguousarray(dout)
    dx = np.empty((N * C, H, W), dtype=dout.dtype)
    if OH == 1 and OW == 1:
        _global_avg_bwd(d.reshape(N * C), dx.reshape(N * C, H * W))
    else:
        _adaptive_bwd(d.reshape(N * C, OH, OW), dx, *_bins(H, OH), *_bins(W, OW), _chunks(N * C))
    return dx.reshape(N, C, H, W)
