"""Freed memory stays in the process: a training step's arrays are reused without page faults.

A training step allocates the same arrays every step (activations, their gradients, GEMM outputs: LeNet at
batch 256 about 12 MB a step). glibc's malloc serves an allocation of more than M_MMAP_THRESHOLD (128 KiB at
start, raised up to 32 MiB as large blocks are freed) with a fresh mmap, and returns free memory at the top
of its heap to the system once more than M_TRIM_THRESHOLD is free. Either way the next step's array lands on
pages the kernel must fault in and zero again: measured on the 2-core development machine, 3,200-4,200 minor
page faults per LeNet step, about 1.2 us each, 4-5 ms of a 16 ms step. With both thresholds raised the same
step takes 0 faults and 11-13 ms.

So, when kernels.cpu is imported on glibc, `keep_freed_memory` sets, through mallopt:
- M_MMAP_THRESHOLD = MMAP_THRESHOLD (256 MiB): blocks below it come from malloc's heap, which reuses them;
- M_TRIM_THRESHOLD = TRIM_THRESHOLD (1 GiB): up to that much free memory stays mapped for the next step.
The cost is memory: a process keeps up to TRIM_THRESHOLD of freed heap mapped (its resident size does not
drop after a large step), and free blocks can fragment the heap. It applies to the whole process (NumPy's and
PyTorch's allocations too). A user who set either threshold (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_,
or GLIBC_TUNABLES naming glibc.malloc) keeps their own settings, as does ENGINE_KEEP_FREED_MEMORY=0. On
other C libraries (musl, macOS) nothing is done.
"""
import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1            # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 1 << 30
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
OPT_OUT = "ENGINE_KEEP_FREED_MEMORY"

_done = None


def keep_freed_memory():
    """Raise glibc's mmap and trim thresholds once per process (see the module docstring). Returns what was
    done: "set", "user's", "off", "not glibc", or the first call's answer on later calls."""
    global _done
    if _done is not None:
        return _done
    if os.environ.get(OPT_OUT, "").strip() in ("0", "false", "no", "off"):
        _done = "off"
    elif any(os.environ.get(k) for k in USER_SETTINGS) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        _done = "user's"
    else:
        _done = _mallopt()
    return _done


def _mallopt():
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version             # glibc only: musl has mallopt as a no-op stub
    except (AttributeError, OSError):
        return "not glibc"
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return "set" if ok else "refused"
