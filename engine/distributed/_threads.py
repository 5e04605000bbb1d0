"""Each rank's share of its node's cores for Numba's and the BLAS's thread pools.

Every process starts pools as wide as the node, so ranks that share a node oversubscribe it: measured on the
2-core development machine, a conv net's training step took 89 ms on one rank (1 Numba + 1 BLAS thread),
450-550 ms on each of two ranks with 2 + 2 threads, and 59-72 ms with 1 + 1. A rank's share is the cores it
may run on (its affinity mask) divided among the ranks on its node whose masks overlap it: a launcher that pins
each rank to its own cores (Open MPI, Intel MPI, `srun --cpu-bind`) leaves each its set; MPICH's hydra does not
pin, so the ranks divide the node, or the container's CPU set where one limits every process alike.
A count the user set in the environment is left alone: NUMBA_NUM_THREADS for Numba; OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS or MKL_NUM_THREADS for the BLAS.
"""
import ctypes
import os
import sys

NUMBA_KEYS = ("NUMBA_NUM_THREADS",)
BLAS_KEYS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# OpenBLAS's setter under the names its builds export: the plain library, NumPy's and SciPy's wheels (ILP64).
_OURS = set()           # variables this module wrote: not the user's
_OPENBLAS_SETTERS = ("openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
                     "openblas_set_num_threads64_", "scipy_openblas_set_num_threads")


def allowed_cores():
    """The cores this process may run on (its affinity mask; the node's count where there is none)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def core_share(cores, sharing):
    """Cores for a rank that may run on `cores` cores shared with `sharing` ranks, itself included (at least 1)."""
    return max(1, cores // max(1, sharing))


def apply_share(cores, sharing):
    """Set Numba's and the BLAS's thread counts to this rank's share unless the user set them.
    Returns {"cores": share, "numba": what was done, "blas": what was done} for reports."""
    n = core_share(cores, sharing)
    return {"cores": n, "numba": _set_numba(n), "blas": _set_blas(n)}


def _user_set(keys):
    return next((f"{k}={os.environ[k]} (user)" for k in keys if os.environ.get(k) and k not in _OURS), None)


def _set_numba(n):
    user = _user_set(NUMBA_KEYS)
    if user:
        return user
    if "numba" not in sys.modules:
        # before numba's import the pool itself is sized: no idle workers beyond the share
        os.environ["NUMBA_NUM_THREADS"] = str(n)
        _OURS.add("NUMBA_NUM_THREADS")
        return n
    import numba
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    return numba.get_num_threads()


def _set_blas(n):
    user = _user_set(BLAS_KEYS)
    if user:
        return user
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return _set_openblas(n)
    threadpool_limits(n, user_api="blas")
    return n


def _set_openblas(n):
    """Without threadpoolctl: call OpenBLAS's setter in every OpenBLAS this process has loaded (found in
    /proc/self/maps, Linux). Returns n, or a note when none was found."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return "unknown (no threadpoolctl, no /proc/self/maps)"
    done = False
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _OPENBLAS_SETTERS:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn(ctypes.c_int(n))
                done = True
                break
    if not done:
        # NumPy may not have loaded its BLAS yet: the variable is then still read at its load
        os.environ["OPENBLAS_NUM_THREADS"] = str(n)
        _OURS.add("OPENBLAS_NUM_THREADS")
    return n
