"""The register-blocked GEMM micro-kernel the conv and RNN kernels share.

`dot_tile` computes out[a, b] = sum_r A[a, r] * B[b, r] ("dot" form: both operands contiguous along the
reduction axis r) in 4 x 3 blocks: 12 scalar accumulators that LLVM keeps in 12 vector registers, so each
step of r is 7 vector loads and 12 FMAs (measured ~100 GFLOP/s on one AVX-512 core at r = 576; the horizontal
sums closing each block cost most of the rest, so it wants r in the hundreds).
"""
from numba import njit

from ._config import FASTMATH


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def dot_tile(A, aoff, na, B, boff, nb, L, out, zero):
    """out[a, b] = sum_{r < L} A[aoff[a] + r] * B[boff[b] + r] for a < na, b < nb. Serial.

    A, B are flat buffers and aoff, boff the starts of their rows, so rows may be strided or even overlap
    (gemm_dw reads shifted windows of one padded plane). 4x3 register blocks, B blocks outside, A inside;
    a block hanging past na or nb repeats the last row (its duplicate results are written first and then
    overwritten by the real ones), so nothing needs padding.
    """
    for b in range(0, nb, 3):
        b1, b2 = min(b + 1, nb - 1), min(b + 2, nb - 1)
        x0r, x1r, x2r = B[boff[b]:boff[b] + L], B[boff[b1]:boff[b1] + L], B[boff[b2]:boff[b2] + L]
        for a in range(0, na, 4):
            a1, a2, a3 = min(a + 1, na - 1), min(a + 2, na - 1), min(a + 3, na - 1)
            y0r, y1r = A[aoff[a]:aoff[a] + L], A[aoff[a1]:aoff[a1] + L]
            y2r, y3r = A[aoff[a2]:aoff[a2] + L], A[aoff[a3]:aoff[a3] + L]
            s00 = s01 = s02 = s10 = s11 = s12 = s20 = s21 = s22 = s30 = s31 = s32 = zero
            for r in range(L):
                x0, x1, x2 = x0r[r], x1r[r], x2r[r]
                y = y0r[r]
                s00 += y * x0
                s01 += y * x1
                s02 += y * x2
                y = y1r[r]
                s10 += y * x0
                s11 += y * x1
                s12 += y * x2
                y = y2r[r]
                s20 += y * x0
                s21 += y * x1
                s22 += y * x2
                y = y3r[r]
                s30 += y * x0
                s31 += y * x1
                s32 += y * x2
            out[a3, b2], out[a3, b1], out[a3, b] = s32, s31, s30
            out[a2, b2], out[a2, b1], out[a2, b] = s22, s21, s20
            out[a1, b2], out[a1, b1], out[a1, b] = s12, s11, s10
            out[a, b2], out[a, b1], out[a, b] = s02, s01, s00
