"""One set of CPU threads for the engine: Numba's kernels and the BLAS GEMMs take turns, never fight.

A process that imports NumPy has two thread pools: OpenBLAS's (NumPy's GEMMs) and, once a parallel kernel
runs, Numba's OpenMP pool. Both spin-wait when idle: OpenBLAS's workers for about 2^28 cycles after each
GEMM, OpenMP's for GOMP_SPINCOUNT iterations after each parallel region. In a training step, where GEMMs and
Numba kernels alternate every few hundred microseconds, each pool's spinning workers hold the cores the other
pool's next call needs. Measured on the 2-core development machine (LeNet training step, batch 256, each
setting in its own process): 96 ms with the libraries' defaults, 64 ms with OpenMP's workers asleep
(OMP_WAIT_POLICY=passive), 41 ms with OpenBLAS on one thread, against PyTorch's 37 ms.

So the engine, for its own work:
- asks OpenMP for a short spin (GOMP_SPINCOUNT=SPIN_COUNT) unless the user set OMP_WAIT_POLICY or
  GOMP_SPINCOUNT, before Numba's OpenMP pool starts (`short_spin_openmp`, run when kernels.cpu is
  imported). A worker then spins for some tens of microseconds after a parallel region, long enough to
  catch the next kernel of a step (the Python between two kernels takes 5-50 us), and sleeps after, so it
  does not hold a core through a long GEMM. Asleep at once (OMP_WAIT_POLICY=PASSIVE, what the engine set
  before) each parallel call paid the wake-up: 50-70 us on the development VM, so a relu on 65,536
  elements took 50 us in parallel against 3 us serially; with SPIN_COUNT 3 us. Whole steps, same machine,
  each in its own process, passive -> 3000: ResNet 18-20 -> 12-13 ms, GRU LM 13-20 -> 13-14 ms, LeNet and
  the transformer block unchanged within the noise (10-12, 34-37 ms); the libgomp default (300,000, about
  a millisecond) gave ResNet 16 ms and the transformer 47-51 ms (spinning workers held the GEMM's cores);
- runs its GEMMs with OpenBLAS on one thread (`gemm`), so OpenBLAS's workers are never woken by the engine
  and never spin; a GEMM large enough to pay for a hand-off (GEMM_SPLIT_FLOPS) is split by rows over the
  engine's own GEMM threads (a persistent pool as wide as Numba's thread count, workers asleep when idle),
  each running OpenBLAS's single-threaded kernel on its block. OpenBLAS's thread count is restored after
  each engine GEMM, so the user's own NumPy calls keep theirs. A GEMM of GEMM_BLAS_THREADS_FLOPS or more
  (milliseconds of work) runs on OpenBLAS's own threads: there they are faster than the split (measured on
  4096x512x512: 6.7 ms against 12), and their spinning afterwards costs little next to the GEMM.
"""
import ctypes
import math
import os
import sys
import threading

import numpy as np

GEMM_SPLIT_FLOPS = 1 << 23       # 8 MFLOP (~60-80 us on one core): below it a hand-off costs more than it saves
GEMM_BLAS_THREADS_FLOPS = 1 << 30  # 1 GFLOP (several ms): OpenBLAS's own threads, whose later spinning it amortizes


SPIN_COUNT = "3000"              # libgomp's spin iterations before an idle worker sleeps (its default: 300,000)


def short_spin_openmp():
    """GOMP_SPINCOUNT=SPIN_COUNT for the OpenMP runtime Numba's pool loads, unless the user chose a policy or
    a spin count, or the pool has started already (then it read its settings). Returns what was done."""
    if os.environ.get("OMP_WAIT_POLICY") or os.environ.get("GOMP_SPINCOUNT"):
        return "user's"
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is not None and getattr(parallel, "_is_initialized", False):
        return "started already"
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return "GOMP_SPINCOUNT=" + SPIN_COUNT


# ---- OpenBLAS's thread count, through its own C API --------------------------------------------------------
_SETTERS = ("openblas_set_num_threads", "scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads")
_GETTERS = ("openblas_get_num_threads", "scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
            "scipy_openblas_get_num_threads")
_BLAS = None                     # [(set, get)] for every OpenBLAS loaded, found on first use
_LOCK = threading.Lock()


def _openblas():
    global _BLAS
    if _BLAS is None:
        found = []
        try:
            from threadpoolctl import threadpool_info
            paths = {i["filepath"] for i in threadpool_info() if i.get("internal_api") == "openblas"}
        except Exception:
            paths = set()
        for path in sorted(paths):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            s = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
            g = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
            if s is not None and g is not None:
                s.argtypes, s.restype, g.argtypes, g.restype = [ctypes.c_int], None, [], ctypes.c_int
                found.append((s, g))
        _BLAS = found
    return _BLAS


class _OneBlasThread:
    """`with one_blas_thread:` OpenBLAS runs on the calling thread only; its count is restored after. Nested
    and concurrent uses are counted, so the count is restored when the last one leaves."""
    depth = 0
    saved = ()

    def __enter__(self):
        with _LOCK:
            if _OneBlasThread.depth == 0:
                libs = _openblas()
                _OneBlasThread.saved = [g() for _, g in libs]
                for (s, _), n in zip(libs, _OneBlasThread.saved):
                    if n != 1:
                        s(1)
            _OneBlasThread.depth += 1

    def __exit__(self, *exc):
        with _LOCK:
            _OneBlasThread.depth -= 1
            if _OneBlasThread.depth == 0:
                for (s, _), n in zip(_openblas(), _OneBlasThread.saved):
                    if n != 1:
                        s(n)


one_blas_thread = _OneBlasThread()


# ---- the engine's GEMM threads --------------------------------------------------------------------------------
class _Pool:
    """n-1 worker threads that sleep on a condition until given a block (the caller computes one block too)."""

    def __init__(self):
        self.workers = []
        self.cv = threading.Condition()
        self.jobs = []
        self.left = 0
        self.error = None

    def _worker(self):
        while True:
            with self.cv:
                while not self.jobs:
                    self.cv.wait()
                job = self.jobs.pop()
            try:
                job()
            except BaseException as e:       # reported to the caller
                self.error = e
            with self.cv:
                self.left -= 1
                if self.left == 0:
                    self.cv.notify_all()

    def run(self, jobs):
        """Run every job, the caller taking the first; returns when all are done."""
        need = len(jobs) - 1
        while len(self.workers) < need:
            t = threading.Thread(target=self._worker, name="engine-gemm", daemon=True)
            t.start()
            self.workers.append(t)
        with self.cv:
            self.error = None
            self.left = need
            self.jobs.extend(jobs[1:])
            self.cv.notify_all()
        jobs[0]()
        with self.cv:
            while self.left:
                self.cv.wait()
        if self.error is not None:
            raise self.error


_POOL = _Pool()
_POOL_LOCK = threading.Lock()


def _threads():
    import numba
    return numba.get_num_threads()


def gemm(a, b):
    """a @ b for 2-D NumPy arrays (any strides), on one OpenBLAS thread per block of rows (see the module)."""
    m, k = a.shape
    n = b.shape[1]
    flops = 2 * m * n * k
    if flops >= GEMM_BLAS_THREADS_FLOPS:
        return a @ b
    parts = min(_threads(), m // 8) if flops >= GEMM_SPLIT_FLOPS else 1
    with one_blas_thread:
        if parts <= 1 or not _POOL_LOCK.acquire(blocking=False):
            return a @ b
        try:
            out = np.empty((m, n), dtype=np.result_type(a.dtype, b.dtype))
            step = math.ceil(m / parts)
            jobs = [lambda lo=lo: np.matmul(a[lo:lo + step], b, out=out[lo:lo + step]) for lo in range(0, m, step)]
            _POOL.run(jobs)
            return out
        finally:
            _POOL_LOCK.release()
