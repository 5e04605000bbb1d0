"""This machine: what it is (CPU, versions, threads, git commit) and what it can do, measured at start-up.

Limits: peak FLOP/s per dtype from the best of NumPy's BLAS GEMM and torch.mm on square matrices; memory
bandwidth from the best of a large NumPy copy and a Numba prange copy, counting read + write bytes (STREAM's
convention). The thread probe times a Numba prange kernel and torch ops, alone and interleaved, to show whether
one library's idle worker threads slow the other down.
"""
import os
import platform
import subprocess
import sys
import time

import numpy as np

from . import core


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args):
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return None


def describe(threads):
    """Machine, versions, thread counts, git commit: the JSON's `meta`."""
    import numba
    vers = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__}
    for name in ("llvmlite", "torch", "cupy", "matplotlib", "tqdm"):
        mod = core.optional(name)
        if mod is not None:
            vers[name] = getattr(mod, "__version__", "?")
    mem = None
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    status = _git("status", "--porcelain")
    blas = None
    try:
        import threadpoolctl
        blas = [{k: p.get(k) for k in ("internal_api", "num_threads", "version", "architecture")}
                for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    except ImportError:
        pass
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(), "platform": platform.platform(), "cpu": _cpu_model(), "cores": os.cpu_count(),
        "memory_bytes": mem, "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "versions": vers, "threads": threads, "blas": blas,
        "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR") or "(Numba's default)",
        "git": {"commit": _git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None,
                "changed_files": len(status.splitlines()) if status else 0},
        "argv": sys.argv,
    }


def _best(fn, repeat):
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def limits(quick=False, dtypes=("float32", "float64")):
    """{'peak_flops': {dtype: FLOP/s}, 'bandwidth_Bps': B/s, 'how': {...}}, from the best of a few runs."""
    n = 512 if quick else 2048
    rep = 2 if quick else 5
    rng = np.random.default_rng(0)
    torch = core.optional("torch")
    peak, how = {}, {}
    for dt in dtypes:
        a, b = (rng.standard_normal((n, n)).astype(dt) for _ in range(2))
        found = {"numpy": 2 * n ** 3 / _best(lambda: a @ b, rep)}
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            found["torch"] = 2 * n ** 3 / _best(lambda: torch.mm(ta, tb), rep)
        who = max(found, key=found.get)
        peak[dt], how[f"gemm_{dt}"] = found[who], {"n": n, "by": who, **{k: v / 1e9 for k, v in found.items()}}
    size = (1 << 22) if quick else (1 << 27)               # bytes: 4 MiB (quick) or 128 MiB, past any cache
    src = np.ones(size // 4, np.float32)
    dst = np.empty_like(src)
    found = {"numpy_copy": 2 * src.nbytes / _best(lambda: np.copyto(dst, src), rep)}
    try:
        found["numba_copy"] = 2 * src.nbytes / _best(lambda: _par_copy()(dst, src), rep)
    except Exception:
        pass
    who = max(found, key=found.get)
    how["copy"] = {"bytes": src.nbytes, "by": who, **{k: v / 1e9 for k, v in found.items()}}
    return {"peak_flops": peak, "bandwidth_Bps": found[who], "how": how}


def merge_limits(a, b):
    """The higher of two measurements of each limit (the machine did at least that)."""
    out = {"peak_flops": {k: max(a["peak_flops"].get(k, 0), b["peak_flops"].get(k, 0))
                          for k in set(a["peak_flops"]) | set(b["peak_flops"])},
           "bandwidth_Bps": max(a["bandwidth_Bps"], b["bandwidth_Bps"]), "how": {"start": a["how"], "end": b["how"]}}
    return out


_PCOPY = []


def _par_copy():
    if not _PCOPY:
        from numba import njit, prange

        @njit(parallel=True, cache=True)
        def copy(dst, src):
            n = src.size
            chunk = 1 << 16
            for c in prange((n + chunk - 1) // chunk):
                a = c * chunk
                b = min(n, a + chunk)
                dst[a:b] = src[a:b]              # a slice copy: vectorized (an element loop here is not)
        _PCOPY.append(copy)
    return _PCOPY[0]


def _median_times(fns, reps, gap_s=0.0, interleave=True):
    out = {k: [] for k in fns}
    order = [(k, f) for _ in range(reps) for k, f in fns.items()] if interleave else \
        [(k, f) for k, f in fns.items() for _ in range(reps)]
    for k, f in order:
        if gap_s:
            time.sleep(gap_s)
        t0 = time.perf_counter()
        f()
        out[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in out.items()}


def thread_probe(quick=False, gap_s=0.002):
    """A Numba prange copy, a torch add and a NumPy (OpenBLAS) GEMM at the thread counts set: median time of
    each alone (a block of calls), interleaved (numba, torch, numpy, numba, ...), and interleaved with a sleep
    of gap_s before each call. Interleaved / alone well above 1 means the previous library's workers, still
    spinning, take the cores from the next one; if the gap brings it back to ~1, use --gap."""
    torch = core.optional("torch")
    n = 1 << (18 if quick else 21)
    src = np.ones(n, np.float32)
    dst = np.empty_like(src)
    m = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    copy = _par_copy()
    fns = {"numba": lambda: copy(dst, src), "numpy_blas": lambda: m @ m}
    if torch is not None:
        ts = torch.from_numpy(src)
        fns["torch"] = lambda: torch.add(ts, 1.0)
    for f in fns.values():
        f()
    reps = 15 if quick else 40
    alone = _median_times(fns, reps, interleave=False)
    inter = _median_times(fns, reps)
    gapped = _median_times(fns, reps, gap_s)
    return {"alone_s": alone, "interleaved_s": inter, "interleaved_gap_s": gapped, "gap_s": gap_s,
            "slowdown": {k: inter[k] / alone[k] for k in fns},
            "slowdown_with_gap": {k: gapped[k] / alone[k] for k in fns},
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
