"""Direct (no-GEMM) stride-1 conv2d kernel, for convs with few input channels per group (LeNet's first layer,
RGB stems, depthwise convs), where the implicit GEMM's reduction (Cg*kh*kw) is too short for its micro-kernel.

Trick: each input plane is copied into a zero-padded plane of width Wp = Wo + (kw-1)*dw, flattened. Output
pixel (oh, ow) then lives at flat index q = oh*Wp + ow and tap (i, j) reads the padded plane at
q + i*dh*Wp + j*dw, so every (c, i, j) term is ONE contiguous, vectorizable axpy of length
L = (Ho-1)*Wp + Wo (the Wp - Wo junk columns in between are computed and dropped).
Padding offsets (pt, pl) may be negative (a crop): the same kernel computes dx as a conv of dout with the
flipped, transposed weights.
"""
import numpy as np
from numba import njit, prange

from ._config import FASTMATH
from .activation import act_inplace
from .conv_gemm import _pad_plane


@njit(cache=True, parallel=True, fastmath=FASTMATH, error_model="numpy")
def direct_fwd(x, w, b, y, pt, pl, dh, dw, KB, act):
    """Stride-1 conv: x (N, C, H, W), w (K, Cg, kh, kw), b (K,), y (N, K, Ho, Wo) overwritten.

    Groups G = C // Cg. prange over (image, group, block of KB output channels); each iteration pads its
    Cg input planes once, then accumulates 4 output channels at a time (one load of x feeds 4 FMAs).
    act: an activation code applied to each output plane as it is written (kernels.common.ACTIVATIONS; 0 none).
    """
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    Ho, Wo = y.shape[2], y.shape[3]
    G = C // Cg
    Kg = K // G
    Wp = Wo + (kw - 1) * dw
    Hp = Ho + (kh - 1) * dh
    L = (Ho - 1) * Wp + Wo
    nkb = (Kg + KB - 1) // KB
    for t in prange(N * G * nkb):
        n = t // (G * nkb)
        g = (t // nkb) % G
        kb = t % nkb
        xp = np.empty((Cg, Hp * Wp), x.dtype)
        for c in range(Cg):
            _pad_plane(x[n, g * Cg + c], xp[c], pt, pl, Wp)
        acc = np.empty((4, L), x.dtype)
        a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
        k = g * Kg + kb * KB
        k_end = g * Kg + min(Kg, kb * KB + KB)
        while k < k_end:
            nk = min(4, k_end - k)
            for u in range(nk):
                acc[u, :] = b[k + u]
            for c in range(Cg):
                for i in range(kh):
                    for j in range(kw):
                        off = i * dh * Wp + j * dw
                        xr = xp[c, off:off + L]
                        if nk == 4:
                            w0, w1, w2, w3 = w[k, c, i, j], w[k + 1, c, i, j], w[k + 2, c, i, j], w[k + 3, c, i, j]
                            for q in range(L):
                                xv = xr[q]
                                a0[q] += w0 * xv
                                a1[q] += w1 * xv
                                a2[q] += w2 * xv
                                a3[q] += w3 * xv
                        else:
                            for u in range(nk):
                                wv = w[k + u, c, i, j]
                                au = acc[u]
                                for q in range(L):
                                    au[q] += wv * xr[q]
            for u in range(nk):
                for oh in range(Ho):
                    dst, src = y[n, k + u, oh], acc[u, oh * Wp: oh * Wp + Wo]
                    for q in range(Wo):        # a loop: a slice copy compiles Numba's shape-error path
                        dst[q] = src[q]
                if act != 0:
                    act_inplace(y[n, k + u].reshape(-1), act)
            k += nk
