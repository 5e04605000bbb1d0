"""Project layout rules: both backends (kernels.cpu, kernels.cuda) mirror the reference name for name, and
importing compiles nothing. These run in the CPU process: importing kernels.cuda needs no GPU."""
import importlib
import pkgutil
import subprocess
import sys

import kernels.cpu
import kernels.reference

FAMILY_MODULES = [m.name for m in pkgutil.iter_modules(kernels.reference.__path__)]


def public(module):
    return set(getattr(module, "__all__", []))


def test_cpu_backend_mirrors_the_reference_module_for_module():
    for fam in FAMILY_MODULES:
        ref = importlib.import_module(f"kernels.reference.{fam}")
        cpu = importlib.import_module(f"kernels.cpu.{fam}")
        assert public(ref), f"kernels.reference.{fam} exports nothing"
        assert public(cpu) == public(ref), f"{fam}: cpu {sorted(public(cpu))} vs reference {sorted(public(ref))}"
    assert public(kernels.cpu.conv) <= set(dir(kernels.cpu))


def test_cuda_backend_mirrors_the_reference_module_for_module():
    """kernels.cuda exports the reference's names, module for module (importing it needs no GPU)."""
    import kernels.cuda
    cuda_modules = {m.name for m in pkgutil.iter_modules(kernels.cuda.__path__) if not m.name.startswith("_")}
    assert cuda_modules == set(FAMILY_MODULES), f"cuda {sorted(cuda_modules)} vs reference {FAMILY_MODULES}"
    for fam in FAMILY_MODULES:
        ref = importlib.import_module(f"kernels.reference.{fam}")
        cu = importlib.import_module(f"kernels.cuda.{fam}")
        assert public(cu) == public(ref), f"{fam}: cuda {sorted(public(cu))} vs reference {sorted(public(ref))}"
        assert public(cu) <= set(dir(kernels.cuda)), f"kernels.cuda does not export all of kernels.cuda.{fam}"


def test_every_kernel_name_has_a_forward_and_a_backward_or_is_an_update():
    names = set().union(*(public(importlib.import_module(f"kernels.reference.{f}")) for f in FAMILY_MODULES))
    for n in names:
        if n.endswith("_fwd"):
            assert n[:-4] + "_bwd" in names or any(m.startswith(n[:-4] + "_bwd") for m in names), n


def test_import_compiles_nothing():
    code = ("import time, numba.core.registry as r; t = time.perf_counter(); import engine, engine.functional, "
            "engine.nn, engine.optim, kernels.cpu, kernels.cuda; from numba.core.dispatcher import Dispatcher; import gc; "
            "compiled = [d for d in gc.get_objects() if isinstance(d, Dispatcher) and d.signatures]; "
            "print(len(compiled))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0", out.stdout + out.stderr


def test_every_cpu_kernel_uses_numpys_error_model():
    """Numba's default error model ('python') checks every division for a zero divisor, to raise
    ZeroDivisionError; the check is a branch, and a loop with a branch does not vectorize (sigmoid's forward,
    with one division, ran 13x slower than PyTorch's). Every CPU kernel takes error_model='numpy': x / 0 gives
    inf or NaN, as in PyTorch."""
    from numba.core.registry import CPUDispatcher
    kernel_modules = [m.name for m in pkgutil.iter_modules(kernels.cpu.__path__)]
    found = []
    for name in kernel_modules:
        mod = importlib.import_module(f"kernels.cpu.{name}")
        for attr, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == mod.__name__:
                found.append(attr)
                assert obj.targetoptions.get("error_model") == "numpy", f"kernels.cpu.{name}.{attr}"
    assert len(found) > 50, found
