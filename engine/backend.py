"""Which kernels serve an array: NumPy arrays go to `kernels.cpu`, CuPy arrays to `kernels.cuda`.

`kernels.cpu` and `kernels.cuda` export the same names, so an op calls `kernels_for(x).softmax_fwd(...)`
and never names a device.
"""
import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def device_of(array):
    return "cpu" if isinstance(array, np.ndarray) or np.isscalar(array) else "cuda"


def array_module(array):
    if isinstance(array, (np.ndarray, np.generic)):
        return np
    import cupy
    return cupy


def kernels_for(array):
    if isinstance(array, np.ndarray):
        import kernels.cpu
        return kernels.cpu
    import kernels.cuda
    return kernels.cuda


def check_device(device):
    """Normalize a device name; raise a clear error for one this install cannot serve."""
    name = str(device).split(":")[0]
    if name == "cpu":
        return "cpu"
    if name == "cuda":
        raise RuntimeError("device 'cuda' is not available: this build of the engine has only the CPU backend")
    raise ValueError(f"device: unknown device {device!r}; expected 'cpu' or 'cuda'")
