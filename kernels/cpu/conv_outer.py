"""Stride-1 conv2d on the outer-product micro-kernel (`_dot.outer_tile`): the forward, and dx (a stride-1
conv of dout with the flipped, transposed weights).

The flat-plane trick of conv_direct: a band of the input planes is copied into zero-padded planes of width
Wp = Wo + (kw-1)*dw, flattened, so output pixel (oh, ow) of the band is flat index q = oh*Wp + ow and tap
(c, i, j) reads plane c at q + i*dh*Wp + j*dw: for every reduction index r = (c*kh + i)*kw + j the needed
inputs of consecutive pixels are one contiguous run, at offset boff[r]. `outer_tile` then computes 4 output
channels x one block of pixels (64 float32 on AVX-512) with the whole reduction held in vector registers:
no im2col copy, no horizontal sums (measured ~240 GFLOP/s on one AVX-512 core in L1, against ~100 for the
dot-form micro-kernel; 111-116 on a later 2-core Zen 5 VM that issues one 512-bit FMA per cycle, in L1 or
not, where the whole N32 C64 32x32 conv then ran at 97 GFLOP/s per core). The Wp - Wo junk columns between
rows are computed and dropped. (Packing the weights per block of MR channels, so that a call reads them
contiguously, changed nothing measurable there.)

prange over (image, group, band of output rows); a band's padded planes stay within about BAND_BYTES.
"""
import numpy as np
from numba import njit, prange

from ._config import FASTMATH
from ._dot import outer_gemm, outer_shape
from .activation import act_inplace
from .conv_gemm import _pad_plane

BAND_BYTES = 256 << 10
NV = outer_shape(4)[1]          # vectors per full block (the same count for float64)


@njit(cache=True, parallel=True, fastmath=FASTMATH, error_model="numpy")
def outer_fwd(x, wt, b, y, pt, pl, dh, dw, kh, kw, bh, lanes, act):
    """y (N, K, Ho, Wo) = stride-1 conv(x, w) + b, overwritten. x (N, C, H, W); wt (G, R, Kg4): wt[g, r, k] =
    w[g*Kg + k, c, i, j] at r = (c*kh + i)*kw + j, zero for k >= Kg (Kg4 a multiple of MR); b (K,);
    bh output rows per band; lanes = outer_shape()[0] (NV vectors of it per block; a last, partial block
    takes as few as it needs). Pads pt, pl may be negative (a crop). act: an activation code applied to each
    band of a plane as it is written (kernels.common.ACTIVATIONS; 0 none)."""
    N, C, H, W = x.shape
    G, R, Kg4 = wt.shape
    K, Ho, Wo = y.shape[1], y.shape[2], y.shape[3]
    Kg, Cg = K // G, C // G
    Wp = Wo + (kw - 1) * dw
    nb = (Ho + bh - 1) // bh
    wf = wt.reshape(-1)
    for t in prange(N * G * nb):
        n = t // (G * nb)
        g = (t // nb) % G
        oh0 = (t % nb) * bh
        rows = min(Ho, oh0 + bh) - oh0
        S = (rows + (kh - 1) * dh) * Wp               # one padded band plane
        L = (rows - 1) * Wp + Wo
        Lp = (L + lanes - 1) // lanes * lanes
        xp = np.empty(Cg * S + Lp - L, x.dtype)
        for c in range(Cg):
            _pad_plane(x[n, g * Cg + c], xp[c * S:(c + 1) * S], pt - oh0, pl, Wp)
        xp[Cg * S:] = 0
        boff = np.empty(R, np.int64)
        for c in range(Cg):
            for i in range(kh):
                for j in range(kw):
                    boff[(c * kh + i) * kw + j] = c * S + i * dh * Wp + j * dw
        ob = np.empty(Kg4 * Lp, x.dtype)
        outer_gemm(wf[g * R * Kg4:], Kg4, Kg4, xp, boff, R, ob, Lp, Lp, lanes, NV)
        for k in range(Kg):
            bk = b[g * Kg + k]
            for rr in range(rows):
                src = ob[k * Lp + rr * Wp:k * Lp + rr * Wp + Wo]
                dst = y[n, g * Kg + k, oh0 + rr]
                for q in range(Wo):
                    dst[q] = src[q] + bk
            if act != 0:                               # the band's rows of plane k: one contiguous stretch
                act_inplace(y[n, g * Kg + k, oh0:oh0 + rows].reshape(-1), act)
