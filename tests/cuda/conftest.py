"""The CUDA kernels' tests run where kernels.cuda can run: under the Numba simulator
(`NUMBA_ENABLE_CUDASIM=1` before numba is imported: `make test` starts a separate pytest process for this
folder) or on a real GPU with CuPy. Anywhere else the folder is skipped, saying why."""
import numpy as np
import pytest
from numba import config, cuda

SIM = bool(config.ENABLE_CUDASIM)


def _gpu():
    if SIM:
        return False
    try:
        import cupy  # noqa: F401
        return cuda.is_available()
    except Exception:
        return False


GPU = _gpu()


def pytest_collection_modifyitems(config, items):
    if SIM or GPU:
        return
    skip = pytest.mark.skip(reason="needs NUMBA_ENABLE_CUDASIM=1 (make test runs it so) or a GPU with CuPy")
    for item in items:
        if "tests/cuda/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(skip)


@pytest.fixture
def to_dev():
    """Host array -> what the CUDA kernels take: CuPy on a GPU, the NumPy array itself under the simulator."""
    if GPU:
        import cupy
        return cupy.asarray
    return lambda a: np.asarray(a)


@pytest.fixture
def to_host():
    if GPU:
        import cupy
        return cupy.asnumpy
    return lambda a: np.asarray(a)
