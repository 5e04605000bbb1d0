"""Device memory as the CUDA simulator sees it: a NumPy array of its own type.

Under `NUMBA_ENABLE_CUDASIM=1` there is no GPU and no CuPy, and the CUDA kernels run on NumPy arrays. So
that the engine can still tell a "cuda" tensor from a "cpu" one (and route it to kernels.cuda, and refuse to
mix the two), arrays on the simulated device are `SimDeviceArray`s. NumPy's ufuncs, reductions and views
keep the subclass; functions that return base arrays (np.asarray, np.ascontiguousarray) are re-viewed by
the backend at the kernels' boundary. Pure NumPy: importing it starts nothing."""
import numpy as np


class SimDeviceArray(np.ndarray):
    """A NumPy array standing for device memory under the CUDA simulator."""

    def __repr__(self):
        return "SimDeviceArray(" + repr(self.view(np.ndarray))[6:]

    def get(self):
        """A host copy, as cupy.ndarray.get() gives."""
        return np.array(self, copy=True, subok=False)


def to_sim(a):
    """A SimDeviceArray with a's values (a copy, as a host-to-device transfer is)."""
    return np.array(a, copy=True, subok=False).view(SimDeviceArray)


def as_sim(a):
    """The same memory viewed as a SimDeviceArray (no copy); scalars and non-arrays pass through."""
    if isinstance(a, np.ndarray) and not isinstance(a, SimDeviceArray):
        return a.view(SimDeviceArray)
    return a
