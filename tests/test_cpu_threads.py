"""kernels/cpu/_threads.py: the engine's GEMMs run on one OpenBLAS thread per block of rows and leave
OpenBLAS's count as they found it; Numba's OpenMP pool is asked for a short spin before idle workers sleep, unless the user
chose a policy."""
import os
import subprocess
import sys

import numpy as np
import pytest

from kernels.cpu import _threads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 4, 5), (0, 4, 5), (512, 256, 300), (1000, 64, 700)],
                         ids=["small", "empty", "split", "tall"])
def test_gemm_matches_matmul_and_restores_the_blas_count(dtype, shape):
    m, k, n = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((n, k)).astype(dtype).T              # a transposed view, as linear passes w.T
    before = [g() for _, g in _threads._openblas()]
    got = _threads.gemm(a, b)
    assert [g() for _, g in _threads._openblas()] == before
    ref = a.astype(np.float64) @ b.astype(np.float64)
    assert got.shape == (m, n) and got.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * max(1.0, np.abs(ref).max(initial=0)))


def test_large_gemms_are_split_over_the_engine_threads(monkeypatch):
    import numba
    if numba.get_num_threads() < 2:
        pytest.skip("one thread: nothing to split")
    seen = []
    real = np.matmul

    def spy(x, y, out=None):
        seen.append(x.shape[0])
        return real(x, y, out=out)
    monkeypatch.setattr(_threads.np, "matmul", spy)
    a = np.ones((400, 300), np.float32)
    b = np.ones((300, 200), np.float32)
    np.testing.assert_array_equal(_threads.gemm(a, b), np.full((400, 200), 300, np.float32))
    assert len(seen) == min(numba.get_num_threads(), 400 // 8) and sum(seen) == 400


def _policy(env):
    code = "import os, kernels.cpu; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")} | env
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_openmp_idle_workers_spin_briefly_unless_the_user_chose():
    assert _policy({}) == "None " + _threads.SPIN_COUNT
    assert _policy({"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE None"
    assert _policy({"GOMP_SPINCOUNT": "1000"}) == "None 1000"
