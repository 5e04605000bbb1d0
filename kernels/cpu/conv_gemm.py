"""Implicit-GEMM conv2d kernels (any stride, padding, dilation, groups), all in Numba: no BLAS call, so no
second thread pool fights Numba's for the two cores.

The engine of every kernel here is `_dot_tile`, a register-blocked GEMM micro-kernel in "dot" form:
out[a, b] = sum_r A[a, r] * B[b, r] with both operands contiguous along the reduction axis r. It computes
4 rows of A x 3 rows of B at a time: 12 scalar accumulators that LLVM keeps in 12 zmm registers, so each
step is 7 vector loads and 12 FMAs (measured ~100 GFLOP/s on one core here at r = 576; the horizontal sums
closing each block cost most of the rest, so it wants r in the hundreds).

  gemm_fwd  y = conv(x, w) + b     A = weights (K, R), B = im2row tiles of x built per band in NHWC
            (also dx for stride 1: the same kernel on dout with the flipped, transposed weights)
  gemm_dw   dW and db              A = dout rows, B = shifted windows of the padded x planes (stride 1) or
                                   im2col rows (stride > 1), plus a row of ones for db
  gemm_dx   dx for stride > 1      A = weights^T (C*kh*kw, Kg), B = NHWC dout tiles, then col2im
"""
import numpy as np
from numba import njit, prange, uint64

from ._config import FASTMATH
from ._dot import dot_tile as _dot_tile
from .activation import act_inplace


@njit(cache=True, error_model="numpy")
def _pad_plane(src, dst, pt, pl, Wp):
    """dst (Hp*Wp,) = src (H, W) placed at row offset pt, column offset pl, zeros elsewhere (crops if < 0)."""
    H, W = src.shape
    Hp = dst.shape[0] // Wp
    dst[:] = 0
    s0, s1 = max(0, pl), min(Wp, W + pl)
    for r in range(max(0, pt), min(Hp, H + pt)):
        d0, c0 = uint64(r * Wp + s0), uint64(s0 - pl)      # unsigned: see _im2col_row
        for s in range(uint64(max(0, s1 - s0))):
            dst[d0 + s] = src[r - pt, c0 + s]


@njit(cache=True, parallel=True, error_model="numpy")
def to_nhwc(x, xh):
    """xh[n, g, h*W + w, c] = x[n, g*Cg + c, h, w]: x (N, C, H, W) -> xh (N, G, H*W, Cg).

    prange over (n, g, h); channels outer so that the reads are whole rows and the strided writes stay in
    one (W, Cg) block of L1 (a channel-inner loop would read with a 4 KiB stride and thrash L1 sets).
    """
    N, C, H, W = x.shape
    G, Cg = xh.shape[1], xh.shape[3]
    for t in prange(N * G * H):
        n = t // (G * H)
        g = (t // H) % G
        h = t % H
        dst = xh[n, g, h * W:(h + 1) * W]
        for c in range(Cg):
            src = x[n, g * Cg + c, h]
            for w in range(W):
                dst[w, c] = src[w]


@njit(cache=True, parallel=True, fastmath=FASTMATH, error_model="numpy")
def gemm_fwd(x, wr, b, y, Wo, kh, kw, sh, sw, pt, pl, dh, dw, PT, nband, zero, act):
    """y (N, K, Ho*Wo) = conv(x, w) + b, overwritten.

    x (N, C, H, W); wr (K, R): w[k, c, i, j] at r = (i*kw + j)*Cg + c; b (K,). Pads pt, pl may be negative
    (a crop). prange over (image, group, band of Ho / nband output rows): each copies the input rows its band
    reads into a local NHWC block (in cache), then per tile of PT output pixels builds the im2row tile
    (PT, R), runs the micro-kernel against its group's rows of wr and writes its pixels of y plus the bias,
    then applies the activation act to them (kernels.common.ACTIVATIONS; 0 none).
    """
    N, C, H, W = x.shape
    K, R = wr.shape
    Cg = R // (kh * kw)
    G = C // Cg
    Kg = K // G
    Ho = y.shape[2] // Wo
    bh = (Ho + nband - 1) // nband
    for t in prange(N * G * nband):
        n = t // (G * nband)
        g = (t // nband) % G
        oh0 = (t % nband) * bh
        oh1 = min(Ho, oh0 + bh)
        if oh0 >= oh1:
            continue
        r_lo = min(max(0, oh0 * sh - pt), H)
        r_hi = max(r_lo, min(H, (oh1 - 1) * sh + (kh - 1) * dh - pt + 1))
        xl = np.empty((max(r_hi - r_lo, 1), W, Cg), x.dtype)
        for c in range(Cg):
            for r in range(r_hi - r_lo):
                for iw in range(W):
                    xl[r, iw, c] = x[n, g * Cg + c, r_lo + r, iw]
        tile = np.empty((PT, R), x.dtype)
        out = np.empty((Kg, PT), x.dtype)
        aoff = (g * Kg + np.arange(Kg)) * R
        toff = np.arange(PT) * R
        for p0 in range(oh0 * Wo, oh1 * Wo, PT):
            npx = min(PT, oh1 * Wo - p0)
            for q in range(npx):
                oh = (p0 + q) // Wo
                ow = (p0 + q) % Wo
                for i in range(kh):
                    ih = oh * sh + i * dh - pt
                    for j in range(kw):
                        iw = ow * sw + j * dw - pl
                        r0 = (i * kw + j) * Cg
                        if r_lo <= ih < r_hi and 0 <= iw < W:
                            for c in range(Cg):
                                tile[q, r0 + c] = xl[ih - r_lo, iw, c]
                        else:
                            for c in range(Cg):
                                tile[q, r0 + c] = 0
            _dot_tile(wr.reshape(-1), aoff, Kg, tile.reshape(-1), toff, npx, R, out, zero)
            for k in range(Kg):
                bk = b[g * Kg + k]
                yr = y[n, g * Kg + k, p0:p0 + npx]    # a view: y[n, k, p0 + q] would not vectorize
                for q in range(npx):                   # (LLVM cannot see that p0 + q >= 0)
                    yr[q] = out[k, q] + bk
                if act != 0:
                    act_inplace(yr, act)


@njit(cache=True, error_model="numpy")
def _im2col_row(plane, row, Ho, Wo, oi, oj, sh, sw):
    """row[oh*Wo + ow] = plane[oh*sh + oi, ow*sw + oj], zero where that falls outside the plane.

    The copies index with unsigned ints: with a signed index that LLVM cannot prove >= 0, Numba's
    negative-index wraparound keeps the loop from vectorizing (measured 2.5x slower here).
    """
    H, W = plane.shape
    lo = max(0, -(oj // sw))                          # first ow with ow*sw + oj >= 0
    hi = max(lo, min(Wo, (W - 1 - oj) // sw + 1))     # one past the last ow with ow*sw + oj < W
    for oh in range(Ho):
        ih = oh * sh + oi
        base = oh * Wo
        if ih < 0 or ih >= H:
            for q in range(Wo):
                row[base + q] = 0
            continue
        for q in range(lo):
            row[base + q] = 0
        s0, d0, step = uint64(lo * sw + oj), uint64(base + lo), uint64(sw)
        for q in range(uint64(hi - lo)):
            row[d0 + q] = plane[ih, s0 + q * step]
        for q in range(hi, Wo):
            row[base + q] = 0


def gemm_dw(x, dout, part, G, kh, kw, sh, sw, pt, pl, dh, dw, nrc, zero, flat_ok, ni):
    """Weight and bias gradient partials: part (NB, K, R + 1) float64, overwritten; column r < R is
    dW[k, c, i, j] at r = (c*kh + i)*kw + j, column R is db (R = 0 when only db is wanted).

    x (N, C, H, W); dout (N, K, Ho, Wo); G groups. part[blk] sums images n = blk, blk + NB, ... (a split
    fixed by the shapes, not by the thread count); the caller sums over axis 0. ni images of a block go
    through one micro-kernel call, their stretches of A and B laid end to end (a small plane's reduction
    alone is too short to pay for the micro-kernel's horizontal sums: ResNet's 8x8 planes have 78 pixels).
    prange over (block, group, chunk of (R + 1) / nrc columns); each iteration owns its part entries. Per
    image the micro-kernel dots dout rows (A) with one row per column (B; the db row is all ones):
      stride 1 (and flat_ok): B rows are shifted windows of the zero-padded input planes (no im2col copy) and
                A rows are dout with zeros in the padding columns: the flat-plane trick of conv_direct. Those
                zeros meet inputs outside the window: an inf or NaN there makes 0 * inf = NaN, so the launcher
                reruns with flat_ok False when the result is not finite;
      stride > 1 (or not flat_ok): B rows are im2col rows of x and A rows are dout's (exact windows).
    Two kernels, one per way of building B: a first use compiles only the one it needs.
    """
    if sh == 1 and sw == 1 and flat_ok:
        _gemm_dw_flat(x, dout, part, G, kh, kw, pt, pl, dh, dw, nrc, zero, ni)
    else:
        _gemm_dw_cols(x, dout, part, G, kh, kw, sh, sw, pt, pl, dh, dw, nrc, zero, ni)


@njit(cache=True, error_model="numpy")
def _dw_task(t, G, nrc, rc, R1):
    """Task t of gemm_dw's prange: (image block, group, first column r0, column count nr; nr <= 0: none)."""
    r0 = (t % nrc) * rc
    return t // (G * nrc), (t // nrc) % G, r0, min(R1, r0 + rc) - r0


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _dw_fill_a(A, dout, n, g, Kg, LA, a0, Wp):
    """Image n's dout rows of group g into A: row k at k*LA + a0, output row oh at + oh*Wp."""
    Ho, Wo = dout.shape[2], dout.shape[3]
    for k in range(Kg):
        for oh in range(Ho):
            a = k * LA + a0 + oh * Wp
            src = dout[n, g * Kg + k, oh]
            for q in range(Wo):        # a loop, not a slice copy: that one compiles Numba's shape-error path
                A[a + q] = src[q]


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _dw_add(acc, out, g, Kg, r0, nr):
    for k in range(Kg):
        for rr in range(nr):
            acc[g * Kg + k, r0 + rr] += out[k, rr]


@njit(cache=True, parallel=True, fastmath=FASTMATH, error_model="numpy")
def _gemm_dw_flat(x, dout, part, G, kh, kw, pt, pl, dh, dw, nrc, zero, ni):
    """gemm_dw at stride 1: B rows are shifted windows of the zero-padded input planes."""
    N, C = x.shape[0], x.shape[1]
    NB, K, R1 = part.shape
    R = R1 - 1
    T = kh * kw
    Cg, Kg = C // G, K // G
    Ho, Wo = dout.shape[2], dout.shape[3]
    Wp = Wo + (kw - 1) * dw
    S = (Ho + (kh - 1) * dh) * Wp                # one image's stretch of a row of A or B
    L = (Ho - 1) * Wp + Wo
    LA = (ni - 1) * S + L                        # reduction length of a group of ni images
    rc = (R1 + nrc - 1) // nrc
    for t in prange(NB * G * nrc):
        blk, g, r0, nr = _dw_task(np.int64(t), G, nrc, rc, R1)   # int64 in typing and in the gufunc alike
        if nr <= 0:
            continue
        c_lo = min(r0 // T, Cg)
        c_hi = min(Cg, (r0 + nr - 1) // T + 1)
        A = np.zeros(Kg * LA, x.dtype)
        B = np.empty((c_hi - c_lo) * ni * S + LA, x.dtype)
        ones = B.shape[0] - LA
        B[ones:] = 1
        aoff = np.arange(Kg) * LA
        boff = np.empty(nr, np.int64)
        for rr in range(nr):
            r = r0 + rr
            boff[rr] = ones if r == R else (r // T - c_lo) * ni * S + ((r // kw) % kh) * dh * Wp + (r % kw) * dw
        out = np.empty((Kg, nr), x.dtype)
        acc = part[blk]
        acc[g * Kg:(g + 1) * Kg, r0:r0 + nr] = 0.0
        for n0 in range(blk, N, NB * ni):
            m_hi = min(ni, (N - n0 + NB - 1) // NB)    # images n0, n0 + NB, ... of this group
            for m in range(m_hi):
                n = n0 + m * NB
                _dw_fill_a(A, dout, n, g, Kg, LA, m * S, Wp)
                for c in range(c_lo, c_hi):
                    b0 = (c - c_lo) * ni * S + m * S
                    _pad_plane(x[n, g * Cg + c], B[b0:b0 + S], pt, pl, Wp)
            _dot_tile(A, aoff, Kg, B, boff, nr, (m_hi - 1) * S + L, out, zero)
            _dw_add(acc, out, g, Kg, r0, nr)


@njit(cache=True, parallel=True, fastmath=FASTMATH, error_model="numpy")
def _gemm_dw_cols(x, dout, part, G, kh, kw, sh, sw, pt, pl, dh, dw, nrc, zero, ni):
    """gemm_dw on exact windows (any stride): B rows are im2col rows of x."""
    N, C = x.shape[0], x.shape[1]
    NB, K, R1 = part.shape
    R = R1 - 1
    T = kh * kw
    Cg, Kg = C // G, K // G
    Ho, Wo = dout.shape[2], dout.shape[3]
    L = Ho * Wo                                  # one image's stretch of a row of A or B
    LA = ni * L
    rc = (R1 + nrc - 1) // nrc
    for t in prange(NB * G * nrc):
        blk, g, r0, nr = _dw_task(np.int64(t), G, nrc, rc, R1)   # int64 in typing and in the gufunc alike
        if nr <= 0:
            continue
        A = np.zeros(Kg * LA, x.dtype)
        B = np.empty(nr * LA + LA, x.dtype)
        ones = B.shape[0] - LA
        B[ones:] = 1
        aoff = np.arange(Kg) * LA
        boff = np.empty(nr, np.int64)
        for rr in range(nr):
            boff[rr] = ones if r0 + rr == R else rr * LA
        out = np.empty((Kg, nr), x.dtype)
        acc = part[blk]
        acc[g * Kg:(g + 1) * Kg, r0:r0 + nr] = 0.0
        for n0 in range(blk, N, NB * ni):
            m_hi = min(ni, (N - n0 + NB - 1) // NB)    # images n0, n0 + NB, ... of this group
            for m in range(m_hi):
                n = n0 + m * NB
                _dw_fill_a(A, dout, n, g, Kg, LA, m * L, Wo)
                for rr in range(nr):
                    r = r0 + rr
                    if r < R:
                        b0 = rr * LA + m * L
                        _im2col_row(x[n, g * Cg + r // T], B[b0:b0 + L], Ho, Wo,
                                    ((r // kw) % kh) * dh - pt, (r % kw) * dw - pl, sh, sw)
            _dot_tile(A, aoff, Kg, B, boff, nr, m_hi * L, out, zero)
            _dw_add(acc, out, g, Kg, r0, nr)


@njit(cache=True, parallel=True, fastmath=FASTMATH, error_model="numpy")
def gemm_dx(douth, Wo, wt, dx, kh, kw, sh, sw, pt, pl, dh, dw, PT, zero):
    """dx (N, C, H, W) for any stride, overwritten: col2im of w^T @ dout.

    douth (N, G, Ho*Wo, Kg): dout in NHWC per group (to_nhwc); wt (C*kh*kw, Kg): row (c*kh + i)*kw + j holds
    w[g*Kg:(g+1)*Kg, c % Cg, i, j] for c's group g. prange over (image, input channel): each owns dx[n, c],
    computes its kh*kw rows of dcols one pixel tile at a time (micro-kernel, a dot over Kg) and scatters them.
    """
    N, G, P, Kg = douth.shape
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    Cg = C // G
    T = kh * kw
    for t in prange(N * C):
        n = t // C
        c = t % C
        g = c // Cg
        out = np.empty((T, PT), dx.dtype)
        aoff = (c * T + np.arange(T)) * Kg
        boff = np.empty(PT, np.int64)
        plane = dx[n, c]
        plane[:, :] = 0
        for p0 in range(0, P, PT):
            npx = min(PT, P - p0)
            for q in range(npx):
                boff[q] = ((n * G + g) * P + p0 + q) * Kg
            _dot_tile(wt.reshape(-1), aoff, T, douth.reshape(-1), boff, npx, Kg, out, zero)
            for i in range(kh):
                for j in range(kw):
                    src = out[i * kw + j]
                    for q in range(npx):
                        ih = ((p0 + q) // Wo) * sh + i * dh - pt
                        iw = ((p0 + q) % Wo) * sw + j * dw - pl
                        if 0 <= ih < H and 0 <= iw < W:
                            plane[ih, iw] += src[q]
