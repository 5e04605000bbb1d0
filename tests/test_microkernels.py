"""The GEMM micro-kernels of kernels/cpu/_dot.py against NumPy in float64: dot_tile (dot form, 4x3 register
blocks) and outer_tile (outer-product form, written in LLVM IR), on every block width and both dtypes."""
import numpy as np
import pytest

from kernels.cpu._dot import MR, dot_tile, outer_any, outer_shape

rng = np.random.default_rng(0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("L", [0, 1, 7, 150])
def test_outer_tile_matches_numpy(dtype, L):
    lanes, nvmax = outer_shape(np.dtype(dtype).itemsize)
    lda, ldc, a0, b0, c0 = 11, 300, 3, 5, 7
    A = rng.standard_normal(a0 + max(L, 1) * lda + MR).astype(dtype)
    B = rng.standard_normal(4000).astype(dtype)
    boff = rng.integers(0, 4000 - b0 - nvmax * lanes, max(L, 1)).astype(np.int64)[:L].copy()
    for nv in range(1, nvmax + 1):
        C = np.full(c0 + MR * ldc, np.nan, dtype)
        outer_any(A, a0, lda, B, boff, b0, L, C, c0, ldc, nv)
        W = nv * lanes
        want = np.zeros((MR, W))
        for r in range(L):
            want += np.outer(A[a0 + r * lda:a0 + r * lda + MR], B[boff[r] + b0:boff[r] + b0 + W])
        got = np.stack([C[c0 + m * ldc:c0 + m * ldc + W] for m in range(MR)])
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1, L))
        rest = np.delete(C, [c0 + m * ldc + q for m in range(MR) for q in range(W)])
        assert np.isnan(rest).all(), f"nv={nv}: wrote outside its block"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("na, nb, L", [(1, 1, 5), (5, 7, 33), (8, 6, 300), (0, 3, 4)])
def test_dot_tile_matches_numpy(dtype, na, nb, L):
    A = rng.standard_normal((max(na, 1), L)).astype(dtype)
    B = rng.standard_normal((nb, L)).astype(dtype)
    out = np.zeros((max(na, 1), nb), dtype)
    dot_tile(A.ravel(), np.arange(na) * L, na, B.ravel(), np.arange(nb) * L, nb, L, out, dtype(0))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out[:na], A[:na].astype(np.float64) @ B.T.astype(np.float64), rtol=tol,
                               atol=tol * L)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outer_gemm_matches_numpy(dtype):
    from kernels.cpu._dot import outer_gemm
    lanes, nvmax = outer_shape(np.dtype(dtype).itemsize)
    M, L, N = 12, 37, lanes * (2 * nvmax + 1)           # a partial last column block
    A = rng.standard_normal((L, M)).astype(dtype)
    B = rng.standard_normal((L, N + 5)).astype(dtype)   # rows longer than N: boff steps by the row length
    C = np.full((M, N), np.nan, dtype)
    outer_gemm(A.ravel(), M, M, B.ravel(), np.arange(L) * (N + 5), L, C.ravel(), N, N, lanes, nvmax)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(C, A.T.astype(np.float64) @ B[:, :N].astype(np.float64), rtol=tol, atol=tol * L)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outer_gemm_packed_matches_numpy(dtype):
    from kernels.cpu._dot import outer_gemm_packed, pack_cols
    lanes, nvmax = outer_shape(np.dtype(dtype).itemsize)
    W = lanes * nvmax
    M, L, N = 8, 29, 2 * W + lanes                      # a last block of one vector
    A = rng.standard_normal((L, M)).astype(dtype)
    B = rng.standard_normal((L, N)).astype(dtype)
    Bk = pack_cols(B, lanes, nvmax)
    assert Bk.shape == (3, L, W) and not Bk[2, :, lanes:].any()      # zero-padded past column N
    np.testing.assert_array_equal(Bk[1], B[:, W:2 * W])
    C = np.full((M, N + 3), np.nan, dtype)                              # ldc > N: the margin stays untouched
    want = A.T.astype(np.float64) @ B.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    outer_gemm_packed(A.ravel(), M, MR, M, Bk.ravel(), np.arange(L) * W, L, C.ravel(), N + 3, N, lanes, nvmax)
    np.testing.assert_allclose(C[:, :N], want, rtol=tol, atol=tol * L)
    assert np.isnan(C[:, N:]).all()
    # A packed in row blocks too: (M / MR, L, MR)
    Ak = np.ascontiguousarray(A.reshape(L, M // MR, MR).transpose(1, 0, 2))
    C2 = np.full((M, N + 3), np.nan, dtype)
    outer_gemm_packed(Ak.ravel(), MR, MR * L, M, Bk.ravel(), np.arange(L) * W, L, C2.ravel(), N + 3, N, lanes, nvmax)
    np.testing.assert_array_equal(C2, C)                # the same sums in the same order: the same bits
