"""Devices and the kernels that serve them: NumPy arrays live on "cpu" and go to `kernels.cpu`; CuPy arrays
live on "cuda" and go to `kernels.cuda`. Under Numba's CUDA simulator (`NUMBA_ENABLE_CUDASIM=1`, no GPU)
`cupy` is the stand-in kernels/_simcupy.py, which refuses what CuPy refuses; the engine runs the same code
on it as on a GPU, so CI checks the GPU's code paths.

`kernels.cpu` and `kernels.cuda` export the same names, so an op calls `kernels_for(x).softmax_fwd(...)`
and never names a device.
"""
import threading

import numpy as np

from kernels._cupy import cupy

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def device_of(array):
    if type(array) is np.ndarray:            # the common case first: this runs several times per op
        return "cpu"
    if isinstance(array, (np.ndarray, np.generic)) or np.isscalar(array):
        return "cpu"
    return "cuda"


def array_module(array):
    if isinstance(array, (np.ndarray, np.generic)):
        return np
    return cupy()


_CPU_KERNELS = None


def kernels_for(array):
    global _CPU_KERNELS
    if type(array) is np.ndarray and _CPU_KERNELS is not None:     # the common case: a plain attribute read
        return _CPU_KERNELS
    if isinstance(array, (np.ndarray, np.generic)):     # NumPy scalars (0-d arithmetic gives them) too
        import kernels.cpu
        _CPU_KERNELS = kernels.cpu
        return kernels.cpu
    import kernels.cuda
    return kernels.cuda


def simulated():
    """True when numba runs CUDA kernels in its simulator (NUMBA_ENABLE_CUDASIM=1 before numba's import)."""
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def cuda_status():
    """(available, why not)."""
    if simulated():
        return True, ""
    try:
        import cupy
    except ImportError:
        return False, "CuPy is not installed (pip install '.[cuda]' on a machine with an NVIDIA GPU)"
    try:
        from numba import cuda
        if not cuda.is_available() or cupy.cuda.runtime.getDeviceCount() < 1:
            return False, "no CUDA GPU is visible to Numba and CuPy"
    except Exception as e:
        return False, f"the CUDA driver did not answer ({type(e).__name__}: {e})"
    return True, ""


def check_device(device):
    """Normalize a device name; raise a clear error for one this install cannot serve."""
    name = str(device).split(":")[0]
    if name == "cpu":
        return "cpu"
    if name == "cuda":
        ok, why = cuda_status()
        if not ok:
            raise RuntimeError(f"device 'cuda' is not available: {why}")
        return "cuda"
    raise ValueError(f"device: unknown device {device!r}; expected 'cpu' or 'cuda'")


DEVICE_TO_HOST = [0]     # copies made by to_device(..., "cpu"): the tests count them during a training step

# Checks of values that live on the GPU (a target class out of range, an index past an embedding) would make
# the host wait for the device. On "cuda" they are queued instead and done where the host reads device data
# anyway (Tensor.item/numpy/tolist/float, .to("cpu")), or once MAX_PENDING have piled up: the error then
# names the op and the value, a little after the op that met it, as PyTorch reports a device-side assert.
# The queue is per thread: a check queued by one thread's op raises at that thread's next host read.
_LOCAL = threading.local()
MAX_PENDING = 64


def _pending():
    q = getattr(_LOCAL, "pending", None)
    if q is None:
        q = _LOCAL.pending = []
    return q


def check_values(bad, message):
    """Raise ValueError(message()) if the 0-d boolean array `bad` is true: at once on the CPU, at the next
    host read on "cuda" (see above). `message` may read device arrays; it runs only when the check fails."""
    if device_of(bad) == "cpu":
        if bool(bad):
            raise ValueError(message())
        return
    q = _pending()
    q.append((bad, message))
    if len(q) >= MAX_PENDING:
        flush_checks()


def flush_checks():
    """Do the queued device checks (a host wait); raise the first failure's ValueError."""
    q = _pending()
    pending = list(q)
    q.clear()
    if not pending:
        return
    DEVICE_TO_HOST[0] += 1                       # every flag in one copy
    xp = array_module(pending[0][0])
    flags = xp.stack([xp.asarray(bad).reshape(()) for bad, _ in pending]).get()
    for failed, (_, message) in zip(flags, pending):
        if failed:
            raise ValueError(message())


def to_device(array, device):
    """`array` on `device` ("cpu" or "cuda", already checked): a copy when it moves, itself when it is there."""
    if device_of(array) == device:
        return array
    if device == "cpu":
        flush_checks()
        DEVICE_TO_HOST[0] += 1
        return array.get()
    return cupy().asarray(array)
