"""Compile every recorded CUDA kernel launch to PTX with the real compiler, no GPU needed.

    python -m kernels.ptxcheck LAUNCHES.json [--cc 9.0] [--ptxas] [--resources]

LAUNCHES.json is what a run with `ENGINE_CUDA_RECORD=LAUNCHES.json` wrote (make test records the simulator
tests). The simulator runs kernels as Python, so it cannot see what only compilation finds (types that do
not unify, unsupported functions, local arrays sized by a variable); this compiles each (kernel, argument
signature) pair with Numba's CUDA compiler (NVVM) and the GPU's block sizes, and checks that the kernel's PTX
parameter list is the layout the PTX launch path passes (_launch.flatten). Kernels that were never
launched are listed, and fail the check. With --ptxas (where NVIDIA's ptxas is found) each PTX is also
assembled for the GPU, which is where a kernel asking for more shared memory or registers than the GPU
has would fail; --resources prints each kernel's registers, spills and shared memory. Exit status 0 when
everything compiles and matches; 1 otherwise. Where no NVVM is installed it says so and exits 0 with
nothing checked, since nothing can be compiled.
"""
import argparse
import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import time


def nvvm_available():
    try:
        from numba.cuda.cudadrv import nvvm
        nvvm.NVVM()
        return True, ""
    except Exception as e:          # NvvmSupportError and friends: no libnvvm on this machine
        return False, f"{type(e).__name__}: {e}"


def find_ptxas():
    """NVIDIA's PTX assembler: on PATH, under CUDA_HOME or /usr/local/cuda, or None."""
    for cand in (shutil.which("ptxas"), os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "ptxas")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


_REGS = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")
_SPILL = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


def assemble(ptxas, ptx, cc):
    """Run ptxas on one PTX module: (registers, spill bytes, shared bytes), or raise with its message."""
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "k.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        r = subprocess.run([ptxas, f"-arch=sm_{cc[0]}{cc[1]}", "-v", src, "-o", os.path.join(d, "k.cubin")],
                           capture_output=True, text=True)
    if r.returncode:
        errors = [line for line in r.stderr.splitlines() if "error" in line.lower()]
        raise RuntimeError("; ".join(errors) or r.stderr.strip() or f"ptxas exit {r.returncode}")
    regs, spill, smem = _REGS.search(r.stderr), _SPILL.search(r.stderr), _SMEM.search(r.stderr)
    return (int(regs.group(1)) if regs else -1, sum(map(int, spill.groups())) if spill else 0,
            int(smem.group(1)) if smem else 0)


def _no_driver(cc):
    """Numba compiles a kernel's device functions for the current device's compute capability, which needs
    a driver; with none here, tell it the capability we compile for."""
    import types

    import numba.cuda.dispatcher as dispatcher
    if hasattr(dispatcher, "get_current_device"):
        dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("record")
    ap.add_argument("--cc", default="9.0", help="compute capability to compile for (default 9.0, H100/H200)")
    ap.add_argument("--ptxas", action="store_true", help="also assemble each PTX with NVIDIA's ptxas, if found")
    ap.add_argument("--resources", action="store_true", help="with --ptxas: print registers, spills, shared memory")
    args = ap.parse_args(argv)
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        sys.exit("ptxcheck compiles for real: run it without NUMBA_ENABLE_CUDASIM")
    ok, why = nvvm_available()
    if not ok:
        print(f"ptxcheck: no NVVM on this machine, nothing compiled ({why})")
        return 0
    cc = tuple(int(p) for p in args.cc.split("."))
    _no_driver(cc)

    import kernels.cuda
    from kernels.cuda import _launch
    for m in pkgutil.iter_modules(kernels.cuda.__path__):
        importlib.import_module(f"kernels.cuda.{m.name}")
    with open(args.record) as f:
        record = [(name, tuple(tuple(s) for s in json.loads(sig))) for name, sig in json.load(f)]

    ptxas = find_ptxas() if args.ptxas else None
    if args.ptxas and ptxas is None:
        print("ptxcheck: no ptxas found (PATH, CUDA_HOME, /usr/local/cuda): PTX not assembled")
    failures, seen, resources = [], set(), []
    t0 = time.perf_counter()
    for name, specs in record:
        k = _launch.find_kernel(name)
        if k is None:
            failures.append(f"{name}: recorded but not found")
            continue
        seen.add(name)
        try:
            ptx = k.compile_ptx(specs, cc)
        except Exception as e:
            failures.append(f"{name}{list(specs)}: does not compile: {type(e).__name__}: {e}")
            continue
        want = sum((_launch.flat_layout(s) for s in specs), [])
        got = _launch.ptx_param_sizes(ptx)
        if got != want:
            failures.append(f"{name}{list(specs)}: PTX parameter sizes {got}, the launcher passes {want}")
        if ptxas:
            try:
                resources.append((name, specs) + assemble(ptxas, ptx, cc))
            except Exception as e:
                failures.append(f"{name}{list(specs)}: ptxas fails: {e}")
    never = sorted(n for n, k in _launch.KERNELS.items() if k.factory is None and n not in seen)
    failures += [f"{n}: never launched by the recorded run, so not compiled" for n in never]
    print(f"ptxcheck: {len(record)} signatures of {len(seen)} kernels compiled for sm_{cc[0]}{cc[1]} in "
          f"{time.perf_counter() - t0:.0f} s; {len(failures)} problems")
    if resources:
        spilling = sorted({n.split(":")[-1] for n, _, _, sp, _ in resources if sp})
        print(f"ptxas: {len(resources)} assembled; most registers {max(r[2] for r in resources)}, most shared "
              f"memory {max(r[4] for r in resources)} bytes; spilling: {', '.join(spilling) or 'none'}")
        if args.resources:
            for name, specs, regs, spill, smem in sorted(resources, key=lambda r: (r[0], str(r[1]))):
                dts = sorted({s[1] for s in specs if s[0] == "array"} - {"int64", "int32", "bool"})
                print(f"  {name.split(':')[-1][:58]:58s} {'/'.join(dts):16s} {regs:4d} regs {spill:6d} B spill "
                      f"{smem:6d} B smem")
    for line in failures:
        print("  " + line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
