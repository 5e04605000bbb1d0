"""The bench's plumbing: the two registries (kernel checks and timed cases), backends, the timer, threads.

Each family module (conv.py, pool.py, ...) registers
  * `VerifyOp`s: one kernel pair `<op>_fwd` / `<op>_bwd` of every backend against kernels.reference, on fixed
    configurations plus seeded random ones (bench/verify.py runs them);
  * `Case`s: one op at one standard shape, whose `build(ctx, params)` returns `Impls`, the callables to time
    per pass ("fwd", "bwd") and per implementation ("engine", "numpy", "torch", "cupy"), plus a FLOP and a
    byte model (bench/runner.py times them).
"""
import contextlib
import dataclasses
import gc
import importlib
import os
import statistics
import time
from typing import Callable

import numpy as np

MODULES = ("activation", "embedding", "linear", "optim", "conv", "pool", "norm", "softmax", "attention", "rnn",
           "fused", "models")
PEERS = ("numpy", "torch", "cupy")          # every implementation but "engine"; ratios are peer / engine


# ---- kernel checks ----------------------------------------------------------------------------------------
@dataclasses.dataclass
class VerifyOp:
    """One kernel pair checked against the float64 reference.

    inputs(params, rng) -> dict of float64 (or integer) arrays and scalars; float arrays are cast to the
    dtype under test (the reference gets them in float64). run(k, inp, dout_like) calls module `k`'s
    kernels and returns {"fwd": [...], "bwd": [...]} (None entries skipped); `dout_like(y)` makes the
    seeded upstream gradient for output y, in y's dtype and on y's device. naive(inp) (optional) returns
    the forward in the dtype under test with plain NumPy: the tolerance then also admits twice its error
    (the FlashAttention criterion)."""
    op: str
    family: str
    kernels: tuple
    fixed: list
    sample: Callable
    inputs: Callable
    run: Callable
    scale: float = 1.0                        # multiplies the dtype's tolerance
    naive: Callable = None
    noncontig: tuple = ()                     # input names passed as non-contiguous views in fixed[-1]
    label: Callable = None

    def describe(self, params):
        if self.label is not None:
            return self.label(params)
        return " ".join(f"{k}={v}" for k, v in params.items() if not k.startswith("_"))


VERIFY = {}


def verify_op(**kw):
    op = VerifyOp(**kw)
    VERIFY[op.op] = op
    return op


# ---- timed cases ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Impls:
    """What one case times. passes: pass name ("fwd", "bwd", "step") -> {implementation -> zero-argument
    callable}; None callables are dropped. flops/bytes: pass -> the FLOP or byte model of one call (0: not
    modeled); `bound` says which one the machine limit applies to. extra: more figures for the JSON."""
    passes: dict
    flops: dict = dataclasses.field(default_factory=dict)
    bytes: dict = dataclasses.field(default_factory=dict)
    bound: str = "bytes"
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Case:
    op: str
    family: str
    label: str
    params: dict
    quick: dict
    build: Callable
    engine_op: str = None                     # name in engine.functional the case needs (None: no check)
    devices: tuple = ("cpu", "cuda")          # where the case runs (the GPU-sized cases: cuda only)
    gpu_set: bool = False                     # one of the GPU shapes judged on a GPU (--gpu-set runs these)
    quick_label: str = None                   # the label of the quick shape (None: made from the params)

    @property
    def name(self):
        return f"{self.op} {self.label}"

    def label_for(self, quick):
        """The label of the shape timed: `label` at full size, else `quick_label` or one made from `quick`."""
        if not quick:
            return self.label
        if self.quick_label:
            return self.quick_label
        return " ".join(("x".join(map(str, v)) if isinstance(v, tuple) else k if v is True else f"{k}={v}")
                        for k, v in self.quick.items() if v is not False)


CASES = []


def bench_case(op, family, label, params, quick, engine_op=None, devices=("cpu", "cuda"), gpu_set=False,
               quick_label=None):
    """Decorator registering `build(ctx, params) -> Impls` as a timed case; `label` names the shape `params`
    gives, `quick_label` the one `quick` gives."""
    def wrap(build):
        CASES.append(Case(op, family, label, params, quick, build, engine_op, tuple(devices), gpu_set, quick_label))
        return build
    return wrap


def load_all():
    """Import every family module so that they register; a module that fails to import is reported."""
    errors = {}
    for mod in MODULES:
        try:
            importlib.import_module(f"bench.{mod}")
        except Exception as e:                       # a half-written kernel module must not stop the rest
            errors[mod] = f"{type(e).__name__}: {e}"
    return errors


def select(items, ops, key=lambda x: (x.op, x.family)):
    """Items whose op or family is named in `ops` (None: all)."""
    if not ops:
        return list(items)
    return [it for it in items if any(k in ops for k in key(it))]


# ---- backends ----------------------------------------------------------------------------------------------
class Backend:
    """A kernel module plus how to move arrays to and from its device."""

    def __init__(self, name, module, put=None, get=None, sync=None, tiny=False):
        self.name, self.module, self.tiny = name, module, tiny
        self.put = put or (lambda a: a)
        self.get = get or (lambda a: a)
        self.sync = sync or (lambda: None)


def cpu_backend():
    import kernels.cpu
    return Backend("cpu", kernels.cpu)


def cuda_backend(simulator=False):
    """(Backend, None) when `kernels.cuda` and a device (or the simulator) are there, else (None, reason).
    Arrays move with kernels.cuda's own to_device/to_host when it defines them, else CuPy, else numba.cuda."""
    if simulator and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        return None, "the simulator needs NUMBA_ENABLE_CUDASIM=1 before numba is imported (use --cuda-sim)"
    try:
        from numba import cuda
        if not simulator and not cuda.is_available():
            return None, "no CUDA device"
        mod = importlib.import_module("kernels.cuda")
    except ImportError as e:
        return None, f"kernels.cuda is not there ({e})"
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"
    put, get = getattr(mod, "to_device", None), getattr(mod, "to_host", None)
    if put is None:
        try:
            if simulator:
                raise ImportError
            import cupy
            put, get = cupy.asarray, cupy.asnumpy
        except ImportError:
            put = cuda.to_device
            get = lambda a: a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)
    return Backend("cudasim" if simulator else "cuda", mod, put, get, cuda.synchronize, tiny=simulator), None


# ---- first calls (compile time) ----------------------------------------------------------------------------
FIRST_CALLS = {}          # (backend, kernel, dtypes) -> (seconds of its first call, PHASE then)
_TRACE = []               # while tracing, the keys of every instrumented call
PHASE = ["verify"]        # who makes first calls now: "verify" (tiny shapes: ~ pure compile) or "bench"


def _sig(args):
    return tuple(str(a.dtype) for a in args if hasattr(a, "dtype") and hasattr(a, "shape"))


_INSTRUMENTED = {}        # module -> (backend name, its public kernel names)


def instrument(module, backend_name):
    """Register the module's public kernels to be timed at their first call per argument dtypes (Numba
    compiles once per signature). The wrappers are in place only inside `instrumenting()` (verify, and each
    case's first call): the timed calls run the kernels themselves, so per-op rows measure the engine, not a
    wrapper (one left in place cost 3-15 us per op)."""
    names = [name for name in getattr(module, "__all__", dir(module))
             if callable(getattr(module, name, None)) and name.endswith(("_fwd", "_bwd", "_step", "_train", "_eval"))]
    _INSTRUMENTED[module] = (backend_name, names)


def _wrap(fn, name, backend_name):
    def wrapper(*args, **kw):
        key = (backend_name, name, _sig(args))
        if _TRACE:
            _TRACE[-1].append(key)
        if key in FIRST_CALLS:
            return fn(*args, **kw)
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        FIRST_CALLS[key] = (time.perf_counter() - t0, PHASE[0])
        return out
    wrapper._bench_wrapped = True
    wrapper.__wrapped__ = fn
    wrapper.__name__ = name
    return wrapper


@contextlib.contextmanager
def instrumenting():
    """Wrappers around the registered kernels as they are now (a test may have swapped one), for the duration;
    the kernels themselves again after. Nested uses are fine."""
    saved = []
    for module, (backend_name, names) in _INSTRUMENTED.items():
        for name in names:
            fn = getattr(module, name, None)
            if fn is None or getattr(fn, "_bench_wrapped", False):
                continue
            saved.append((module, name, fn))
            setattr(module, name, _wrap(fn, name, backend_name))
    try:
        yield
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)


def traced(fn):
    """Call fn() with the kernels instrumented; return (seconds, keys of the kernels it reached, in order)."""
    _TRACE.append([])
    t0 = time.perf_counter()
    try:
        with instrumenting():
            fn()
    finally:
        dt = time.perf_counter() - t0
        keys = _TRACE.pop()
    return dt, list(dict.fromkeys(keys))


# ---- threads -----------------------------------------------------------------------------------------------
def set_threads(n):
    """The same thread count for Numba, PyTorch and the BLAS under NumPy. They never run at once: the timer
    calls one implementation at a time. Returns what each library reports afterwards."""
    optional("torch")            # first: see load_peers_first
    import numba
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    out = {"numba": numba.get_num_threads()}
    try:
        import threadpoolctl
        threadpoolctl.threadpool_limits(n, user_api="blas")
        out["blas"] = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    except ImportError:
        pass
    torch = optional("torch")
    if torch is not None:
        torch.set_num_threads(n)
        out["torch"] = torch.get_num_threads()
    try:
        out["numba_layer"] = numba.threading_layer()
    except ValueError:
        out["numba_layer"] = "not yet initialized"
    return out


def progress_bar(items, desc, progress):
    """A tqdm bar over items (on stderr), or the items themselves when off or without tqdm."""
    if not progress:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, leave=False, dynamic_ncols=True)


_OPTIONAL = {}


def load_peers_first():
    """Import PyTorch (when installed) before Numba starts its OpenMP thread pool. Both use libgomp; whichever
    loads first is the one both get. Measured here (2 cores, SDPA B8 H8 L512 d64 fp32): with the system
    libgomp that Numba's omp layer loads, PyTorch's CPU attention took 180-235 ms instead of 38 ms, while the
    Numba kernels ran at the same speed either way. Loading PyTorch's own libgomp first is fair to both."""
    import sys
    if "numba.np.ufunc.omppool" in sys.modules:
        print("warning: Numba's OpenMP pool started before PyTorch was imported: PyTorch may run slower "
              "than it does alone", file=sys.stderr)
    return optional("torch")


def optional(name):
    """The module, or None when it is not installed (remembered)."""
    if name not in _OPTIONAL:
        try:
            _OPTIONAL[name] = importlib.import_module(name)
        except Exception:
            _OPTIONAL[name] = None
    return _OPTIONAL[name]


# ---- timer ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Timing:
    first_s: float
    median_s: float
    min_s: float
    q1_s: float
    q3_s: float
    n: int
    number: int                      # calls per sample

    def asdict(self):
        return dataclasses.asdict(self)


def measure(fns, repeat=15, warmup=2, budget_s=2.0, min_samples=3, sync=lambda: None, min_sample_s=2e-3,
            gap_s=0.0):
    """Time several implementations of one computation, interleaved.

    Each callable's first call is timed alone (compile time lands there), then `warmup` untimed calls, then up
    to `repeat` rounds; each round times one sample of every implementation, in an order rotated per round,
    so that noise from other processes falls on all of them alike. A sample loops `number` calls, chosen so
    that it lasts at least `min_sample_s`. An implementation leaves the rotation once it has `min_samples`
    samples and has used `budget_s` (slow NumPy references). GC is off while timing. `gap_s` sleeps between
    samples, letting spinning worker threads of the previous library go idle. Warm-up stops early once it has
    used half the budget. Returns name -> Timing."""
    names = list(fns)
    first, number = {}, {}
    for n in names:
        t0 = time.perf_counter()
        fns[n]()
        sync()
        first[n] = time.perf_counter() - t0
    for n in names:
        t, used = first[n], 0.0
        for _ in range(warmup):
            if used > budget_s / 2:              # a slow reference: its samples warm it up enough
                break
            t0 = time.perf_counter()
            fns[n]()
            sync()
            t = time.perf_counter() - t0
            used += t
        number[n] = max(1, min(100, int(min_sample_s / max(t, 1e-7))))
    samples = {n: [] for n in names}
    spent = dict.fromkeys(names, 0.0)
    active = list(names)
    enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeat):
            if not active:
                break
            k = r % len(active)
            for n in active[k:] + active[:k]:
                fn, m = fns[n], number[n]
                if gap_s:
                    time.sleep(gap_s)
                t0 = time.perf_counter()
                for _ in range(m):
                    fn()
                sync()
                dt = time.perf_counter() - t0
                samples[n].append(dt / m)
                spent[n] += dt
            active = [n for n in active if len(samples[n]) < min_samples or spent[n] < budget_s]
    finally:
        if enabled:
            gc.enable()
    out = {}
    for n in names:
        s = sorted(samples[n])
        q = statistics.quantiles(s, n=4) if len(s) >= 2 else [s[0]] * 3
        out[n] = Timing(first[n], statistics.median(s), s[0], q[0], q[2], len(s), number[n])
    return out
