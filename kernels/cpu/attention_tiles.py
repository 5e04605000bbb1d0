"""Tile-level pieces of the fused attention kernels: small GEMMs with mask-aware bounds, the bounds
themselves, a fast exp for non-positive arguments, and the counter-based dropout hash.

The GEMMs run on small C-contiguous 2-D tiles (<= 128 x 128). The reduction index is unrolled by 4 and the
output rows are blocked by 4, so each vector of the output is loaded and stored once per 4 reduction steps
and each vector of B feeds 4 rows; the innermost loop (over the output's contiguous columns) is the one LLVM
vectorizes (measured at about the speed of PyTorch's sgemm on this machine). They ACCUMULATE into C (the
caller zeroes C first). Per-row bounds let causal (and valid_lens) tiles skip what the mask removes.
"""
import numpy as np
from numba import njit

from ._config import FASTMATH      # never nnan/ninf: masks are -inf


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def gemm_nn(A, B, C, m, n, p, col_lo, red_lo):
    """C[i, col_lo[i]:n] += A[i, red_lo[i]:p] @ B[red_lo[i]:p, col_lo[i]:n] for i < m. The bounds (per block
    of 4 rows, their minimum) skip what a mask zeroes: C entries left out are masked later, reduction terms
    left out are zero. Loops run as offsets from starts clamped to >= 0: numba's negative-index wraparound
    check then folds away (a loop from a start it cannot prove >= 0 neither vectorizes nor runs fast)."""
    m4 = m - m % 4
    for i in range(0, m4, 4):
        j0 = max(min(min(col_lo[i], col_lo[i + 1]), min(col_lo[i + 2], col_lo[i + 3])), 0)
        c0 = max(min(min(red_lo[i], red_lo[i + 1]), min(red_lo[i + 2], red_lo[i + 3])), 0)
        nr = max(p - c0, 0)
        for cc in range(0, nr - nr % 4, 4):
            c = c0 + cc
            a0 = A[i, c]; a1 = A[i, c + 1]; a2 = A[i, c + 2]; a3 = A[i, c + 3]
            b0 = A[i + 1, c]; b1 = A[i + 1, c + 1]; b2 = A[i + 1, c + 2]; b3 = A[i + 1, c + 3]
            e0 = A[i + 2, c]; e1 = A[i + 2, c + 1]; e2 = A[i + 2, c + 2]; e3 = A[i + 2, c + 3]
            f0 = A[i + 3, c]; f1 = A[i + 3, c + 1]; f2 = A[i + 3, c + 2]; f3 = A[i + 3, c + 3]
            for jj in range(n - j0):
                j = j0 + jj
                x0 = B[c, j]; x1 = B[c + 1, j]; x2 = B[c + 2, j]; x3 = B[c + 3, j]
                C[i, j] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
                C[i + 1, j] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
                C[i + 2, j] += e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3
                C[i + 3, j] += f0 * x0 + f1 * x1 + f2 * x2 + f3 * x3
        for cc in range(nr - nr % 4, nr):
            c = c0 + cc
            a0 = A[i, c]; b0 = A[i + 1, c]; e0 = A[i + 2, c]; f0 = A[i + 3, c]
            for jj in range(n - j0):
                j = j0 + jj
                x0 = B[c, j]
                C[i, j] += a0 * x0
                C[i + 1, j] += b0 * x0
                C[i + 2, j] += e0 * x0
                C[i + 3, j] += f0 * x0
    for i in range(m4, m):
        j0, c0 = max(col_lo[i], 0), max(red_lo[i], 0)
        for cc in range(max(p - c0, 0)):
            a0 = A[i, c0 + cc]
            for jj in range(n - j0):
                C[i, j0 + jj] += a0 * B[c0 + cc, j0 + jj]


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def gemm_tn(A, B, C, m, n, p, hi):
    """C[i, :n] += A[:hi[i], i].T @ B[:hi[i], :n] for i < m (hi[i] <= p: the keys row i sees)."""
    m4 = m - m % 4
    for i in range(0, m4, 4):
        pe = min(p, max(max(hi[i], hi[i + 1]), max(hi[i + 2], hi[i + 3])))
        p4 = pe - pe % 4
        for c in range(0, p4, 4):
            a0 = A[c, i]; a1 = A[c + 1, i]; a2 = A[c + 2, i]; a3 = A[c + 3, i]
            b0 = A[c, i + 1]; b1 = A[c + 1, i + 1]; b2 = A[c + 2, i + 1]; b3 = A[c + 3, i + 1]
            e0 = A[c, i + 2]; e1 = A[c + 1, i + 2]; e2 = A[c + 2, i + 2]; e3 = A[c + 3, i + 2]
            f0 = A[c, i + 3]; f1 = A[c + 1, i + 3]; f2 = A[c + 2, i + 3]; f3 = A[c + 3, i + 3]
            for j in range(n):
                x0 = B[c, j]; x1 = B[c + 1, j]; x2 = B[c + 2, j]; x3 = B[c + 3, j]
                C[i, j] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
                C[i + 1, j] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
                C[i + 2, j] += e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3
                C[i + 3, j] += f0 * x0 + f1 * x1 + f2 * x2 + f3 * x3
        for c in range(p4, pe):
            a0 = A[c, i]; b0 = A[c, i + 1]; e0 = A[c, i + 2]; f0 = A[c, i + 3]
            for j in range(n):
                x0 = B[c, j]
                C[i, j] += a0 * x0
                C[i + 1, j] += b0 * x0
                C[i + 2, j] += e0 * x0
                C[i + 3, j] += f0 * x0
    for i in range(m4, m):
        for c in range(min(p, hi[i])):
            a0 = A[c, i]
            for j in range(n):
                C[i, j] += a0 * B[c, j]


@njit(cache=True, error_model="numpy")
def tile_bounds(kl, j0, mk, lo, hi):
    """For a tile of keys j0 .. j0 + mk against query rows with key limits kl (BQ,): hi[i] = number of the
    tile's keys row i sees; lo[j] = the first row that sees key j0 + j (len(kl) if none): exact, through
    the running maximum of kl."""
    nq = kl.size
    for i in range(nq):
        hi[i] = min(max(kl[i] - j0, 0), mk)
    i, run = 0, kl[0]
    for j in range(lo.size):
        while i < nq and run <= j0 + j:
            i += 1
            run = max(run, kl[i]) if i < nq else run
        lo[j] = i


@njit(cache=True, fastmath=FASTMATH, inline="always", error_model="numpy")
def keep_bits(rowkey, j):
    """Top 24 bits of splitmix64's finalizer of rowkey + j * C2 (see reference.attention.dropout_keep),
    with rowkey = seed + row * C1 as uint64."""
    x = rowkey + np.uint64(j) * np.uint64(0xC2B2AE3D27D4EB4F)
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return x >> np.uint64(40)


@njit(cache=True, inline="always", error_model="numpy")
def row_key(seed, row):
    return np.uint64(seed) + np.uint64(row) * np.uint64(0x9E3779B97F4A7C15)
