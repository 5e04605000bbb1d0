"""Settings shared by the CPU kernels, and the small-array rule for elementwise ones.

An elementwise op is written as a serial `@njit` loop `_op(*args, lo, hi)` plus a parallel driver
`_op_par(*args)` that runs it over CHUNK-sized pieces with `prange`. `run_chunked` calls the driver for
large arrays and the serial loop in the calling thread for small ones: waking the thread pool costs tens of
microseconds (milliseconds on a loaded machine), more than a small array's work. (The drivers are written
out rather than generated: numba's cache keys on a function's name and line, and function-typed
arguments are not cached across processes.)
"""
FAST = {"contract", "arcp", "reassoc", "afn"}     # fastmath without nnan/ninf: NaN, inf and -inf masks stay honest
CHUNK = 1 << 14
PARALLEL_MIN = 1 << 16


def run_chunked(serial, parallel, n, *args):
    if n < PARALLEL_MIN:
        serial(*args, 0, n)
    else:
        parallel(*args)
