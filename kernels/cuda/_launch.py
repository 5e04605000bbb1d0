"""How kernels.cuda launches its kernels: one `Kernel` object per `__global__` function, two launch paths.

    @kernel                       # instead of @cuda.jit
    def _relu_fwd(x, y): ...
    _relu_fwd[grid, block](x, y)  # CuPy (or simulator) arrays, Python or NumPy scalars; CuPy's current stream

- "numba" (the default): Numba's own dispatcher, on CuPy's current stream. Each launch converts every CuPy
  array (`cuda.as_cuda_array`) and types every argument. Measured on an H200 host (numba-cuda 0.30.4, host
  time per launch): 49 us for a kernel of 3 Numba device arrays, 99 us for one of 8 (about 10 us per array
  argument); 3 CuPy arrays left for Numba to convert cost 137 us.
- "ptx" (`ENGINE_CUDA_LAUNCH=ptx`): the same Python function compiled once per argument signature by
  `cuda.compile_ptx` and loaded as a CuPy `RawModule`; each launch passes the arrays flattened into the
  fields of Numba's array model (meminfo, parent, nitems, itemsize, data, shape..., strides...). Measured on
  the same H200: 21 us per launch with the flattened arguments prepared once, 39 us when they are flattened
  on every call, as here. It is opt-in until `make gpu-check` has passed with it on hardware.

Under the simulator the numba path runs (the simulator is Numba's dispatcher). With `ENGINE_CUDA_RECORD=
<file>` every launch's argument signature is written to <file> at exit; `python -m kernels.ptxcheck
<file>` then compiles each recorded (kernel, signature) to PTX with the real compiler (no GPU needed, only
NVVM) and checks that its parameter list is the layout `flatten` passes. `make test` does both, so every
kernel the simulator runs is also compiled for sm_90 with the GPU's block sizes.
"""
import atexit
import importlib
import json
import os
import re

import numpy as np
from numba import cuda

from kernels import _simcupy
from kernels._cupy import cupy

from ._dev import SIM, xp_of

MODE = os.environ.get("ENGINE_CUDA_LAUNCH", "numba").lower()
if MODE not in ("numba", "ptx"):
    raise ValueError(f"ENGINE_CUDA_LAUNCH must be 'numba' or 'ptx', got {MODE!r}")
RECORD_FILE = os.environ.get("ENGINE_CUDA_RECORD")

LAUNCHES = [0]          # kernel launches so far (tests count them per op)
KERNELS = {}            # name -> Kernel, for the compile check
_recorded = set()       # (kernel name, signature) seen, when recording


def argspec(a):
    """A launch argument's type as plain data, the way Numba types it: ("array", dtype, ndim, layout) for
    host, simulator and device arrays, ("scalar", dtype) for numbers (Python bool, int, float become
    boolean, int64, float64)."""
    if isinstance(a, (bool, np.bool_)):
        return ("scalar", "bool")
    if isinstance(a, int):
        return ("scalar", "int64")
    if isinstance(a, float):
        return ("scalar", "float64")
    if isinstance(a, np.generic):
        return ("scalar", a.dtype.name)
    if hasattr(a, "__cuda_array_interface__") or isinstance(a, np.ndarray):
        f = a.flags
        layout = "C" if f.c_contiguous else "F" if f.f_contiguous else "A"
        return ("array", np.dtype(a.dtype).name, a.ndim, layout)
    raise TypeError(f"kernel argument of type {type(a).__name__} is not an array or a number")


def numba_type(spec):
    from numba import from_dtype, types
    if spec[0] == "scalar":
        return types.boolean if spec[1] == "bool" else from_dtype(np.dtype(spec[1]))
    _, dtype, ndim, layout = spec
    return types.Array(from_dtype(np.dtype(dtype)), ndim, layout)


def flat_layout(spec):
    """The byte sizes of the kernel parameters one argument becomes in PTX."""
    if spec[0] == "scalar":
        return [1] if spec[1] == "bool" else [np.dtype(spec[1]).itemsize]
    ndim = spec[2]
    return [8, 8, 8, 8, 8] + [8] * (2 * ndim)


def flatten(a, spec, out):
    """Append the values one argument becomes (see flat_layout) to `out`."""
    if spec[0] == "scalar":
        out.append(np.bool_(a) if spec[1] == "bool" else np.dtype(spec[1]).type(a))
        return
    out += [np.uint64(0), np.uint64(0), np.int64(a.size), np.int64(a.itemsize), np.uint64(a.data.ptr)]
    out += [np.int64(n) for n in a.shape]
    out += [np.int64(s) for s in a.strides]


def _to_numba(a):
    """What Numba's dispatcher takes without a per-launch copy: CuPy arrays as Numba device views. Under the
    simulator (which runs kernels on host memory) the stand-in's arrays are handed over as their memory, and
    a read-only array is copied (the simulator writes every argument back)."""
    if SIM:
        if type(a) is _simcupy.ndarray:
            a = a._a
        if isinstance(a, np.ndarray):
            return a if a.flags.writeable else a.copy()
        return a
    if hasattr(a, "__cuda_array_interface__"):
        return cuda.as_cuda_array(a)
    return a


_STREAMS = {}            # CuPy stream pointer -> the Numba stream object wrapping it (made once)


def _numba_stream(args):
    """CuPy's current stream as a Numba stream (0, the default stream, under the simulator)."""
    if SIM:
        return 0
    for a in args:
        if hasattr(a, "__cuda_array_interface__") and xp_of(a) is not np:
            ptr = cupy().cuda.get_current_stream().ptr
            s = _STREAMS.get(ptr)
            if s is None:
                s = _STREAMS[ptr] = cuda.external_stream(ptr)
            return s
    return 0


_ENTRY = re.compile(r"\.entry\s+([\w$]+)\s*\(")


def ptx_entry(ptx):
    """The mangled entry name of the (single) kernel in a PTX module."""
    names = _ENTRY.findall(ptx)
    if len(names) != 1:
        raise RuntimeError(f"expected one kernel entry in the PTX, found {names}")
    return names[0]


_PARAM = re.compile(r"\.param\s+(?:\.align\s+\d+\s+)?\.[a-z](\d+)\s+[\w$]+(?:\[(\d+)\])?")


def ptx_param_sizes(ptx):
    """The byte size of each parameter of the PTX module's kernel, in order."""
    start = _ENTRY.search(ptx).end()
    body = ptx[start:ptx.index(")", start)]
    return [int(bits) // 8 * int(count or 1) for bits, count in _PARAM.findall(body)]


class Kernel:
    """A `__global__` kernel launched as `k[grid, block](*args)` (see the module docstring)."""

    def __init__(self, fn):
        self.fn = fn
        self.jit = cuda.jit(fn)
        qual = fn.__qualname__
        # a kernel made inside a factory (conv's per-dtype kernels) records the factory and its dtype
        self.factory = qual.split(".<locals>.")[0] if ".<locals>." in qual else None
        self.key = ()
        self._ptx = {}

    @property
    def name(self):
        key = f"[{','.join(self.key)}]" if self.key else ""
        return f"{self.fn.__module__}:{self.fn.__qualname__}{key}"

    def register(self, *key):
        """Enter the kernel in KERNELS; a factory kernel passes the factory's arguments (dtypes, ints)."""
        self.key = tuple(str(k) if isinstance(k, (int, np.integer)) else np.dtype(k).name for k in key)
        KERNELS[self.name] = self
        return self

    def __getitem__(self, config):
        grid, block = config
        return lambda *args: self.launch(grid, block, args)

    def launch(self, grid, block, args):
        LAUNCHES[0] += 1
        if RECORD_FILE:
            _recorded.add((self.name, json.dumps([argspec(a) for a in args])))
        if MODE == "ptx" and not SIM:
            return self._launch_ptx(grid, block, args)
        self.jit[grid, block, _numba_stream(args)](*[_to_numba(a) for a in args])

    def compile_ptx(self, specs, cc):
        """PTX for one argument signature, compiled by Numba's CUDA compiler for compute capability cc."""
        sig = tuple(numba_type(s) for s in specs)
        ptx, _ = cuda.compile_ptx(self.fn, sig, cc=cc)
        return ptx

    def _launch_ptx(self, grid, block, args):
        specs = tuple(argspec(a) for a in args)
        fn = self._ptx.get(specs)
        if fn is None:
            fn = self._ptx[specs] = _load(self, specs)
        flat = []
        for a, s in zip(args, specs):
            flatten(a, s, flat)
        fn(_dim3(grid), _dim3(block), tuple(flat))


def _dim3(d):
    return tuple(d) if isinstance(d, tuple) else (int(d),)


def _load(k, specs):
    import tempfile

    cc = cupy().cuda.Device().compute_capability          # e.g. "90"
    ptx = k.compile_ptx(specs, (int(cc[:-1]), int(cc[-1])))
    want = sum((flat_layout(s) for s in specs), [])
    got = ptx_param_sizes(ptx)
    if got != want:
        raise RuntimeError(f"{k.name}: the PTX kernel takes parameters of sizes {got}, the launcher would pass "
                           f"{want}; launch with ENGINE_CUDA_LAUNCH=numba")
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(ptx)
    try:
        return cupy().RawModule(path=f.name).get_function(ptx_entry(ptx))
    finally:
        os.unlink(f.name)


def find_kernel(name):
    """The Kernel called `name` (Kernel.name's form), building a factory kernel from the factory and key the
    name carries (module:factory.<locals>.fn[dtype,...]); None if there is none."""
    k = KERNELS.get(name)
    if k is None and "[" in name:
        mod, rest = name.split(":")
        factory = rest.split(".<locals>.")[0]
        key = rest[rest.index("[") + 1:-1].split(",")
        getattr(importlib.import_module(mod), factory)(*(int(a) if a.isdigit() else np.dtype(a) for a in key))
        k = KERNELS.get(name)
    return k


def kernel(fn):
    """Decorator: a `Kernel` (module-level kernels register themselves; factory kernels call .register)."""
    k = Kernel(fn)
    if k.factory is None:
        k.register()
    return k


@atexit.register
def _write_record():
    if RECORD_FILE and _recorded:
        os.makedirs(os.path.dirname(os.path.abspath(RECORD_FILE)), exist_ok=True)
        old = []
        if os.path.exists(RECORD_FILE):
            with open(RECORD_FILE) as f:
                old = [tuple(r) for r in json.load(f)]
        with open(RECORD_FILE, "w") as f:
            json.dump(sorted(set(old) | _recorded), f, indent=0)
