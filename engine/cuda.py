"""torch.cuda's queries: is_available() and device_count(), answered by engine.backend.cuda_status (a usable
CuPy + Numba CUDA install with a visible GPU, or the Numba CUDA simulator)."""
from .backend import cuda_status, cupy

__all__ = ["is_available", "device_count"]


def is_available():
    """True when "cuda" tensors can be made here."""
    return cuda_status()[0]


def device_count():
    """The number of visible CUDA GPUs (1 under the simulator, 0 without CUDA)."""
    if not is_available():
        return 0
    return int(cupy().cuda.runtime.getDeviceCount())
