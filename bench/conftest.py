"""pytest options for `pytest bench/ --benchmark-only` (pytest-benchmark), and the bench's thread environment
(bench/__main__.py says why: idle OpenMP and OpenBLAS workers sleep instead of spinning). It takes effect only
if nothing imported numpy, numba or torch earlier in this process."""
import os

for _k, _v in {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}.items():
    os.environ.setdefault(_k, _v)


def pytest_addoption(parser):
    group = parser.getgroup("bench", "engine benchmarks")
    group.addoption("--bench-quick", action="store_true", help="small shapes (the --quick cases)")
    group.addoption("--bench-dtype", default="float32", help="float32 or float64")
    group.addoption("--bench-threads", type=int, default=None, help="threads for Numba, PyTorch and BLAS")
