"""The CUDA launch layer (kernels/cuda/_launch.py), in the CPU test process: no GPU and no simulator.

How arguments are typed must match Numba's typing (else the PTX launch path would compile a different
signature than the dispatcher); the flattened argument layout must match the parameter list of the PTX that
Numba's real compiler emits (checked by compiling with NVVM, which needs no GPU); kernels.ptxcheck must
report a kernel that does not compile."""
import json

import numpy as np
import pytest
from numba import config, typeof

pytestmark = pytest.mark.skipif(bool(config.ENABLE_CUDASIM), reason="compiles for real: not under the simulator")

from kernels import ptxcheck  # noqa: E402
from kernels.cuda import _launch  # noqa: E402

NVVM, WHY = ptxcheck.nvvm_available()
needs_nvvm = pytest.mark.skipif(not NVVM, reason=f"no NVVM: {WHY}")


@pytest.mark.parametrize("value", [
    np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float64).T, np.zeros((4, 6), np.int64)[:, ::2],
    np.zeros(5, np.int32), np.zeros((2, 3, 4), np.float32), np.zeros((), np.float64),
    True, 3, 2.5, np.float32(1.5), np.int32(7), np.uint64(9), np.bool_(False),
])
def test_argspec_types_arguments_as_numba_does(value):
    from numba import types
    spec = _launch.argspec(value)
    want = typeof(value)
    if isinstance(want, types.Array):
        want = types.Array(want.dtype, want.ndim, want.layout)       # device arrays are never read-only
    assert _launch.numba_type(spec) == want


def test_argspec_rejects_what_is_not_an_array_or_number():
    with pytest.raises(TypeError, match="str"):
        _launch.argspec("x")


@needs_nvvm
def test_flattened_layout_is_the_ptx_parameter_list():
    """A kernel taking every kind of argument the kernels use: the PTX parameter sizes, in order, are what
    flatten() passes."""
    def probe(a1, a2, a3, flag, n, x32, x64, small, out):
        if flag and n > 0:
            out[0] = a1[0] + a2[0, 0] + a3[0, 0, 0] + x32 + x64 + small

    k = _launch.Kernel(probe)
    args = [np.zeros(4, np.float32), np.zeros((2, 3), np.float64).T, np.zeros((2, 2, 2), np.int32), True, 5,
            np.float32(1), 2.0, np.int32(3), np.zeros(1, np.float64)]
    specs = [_launch.argspec(a) for a in args]
    ptxcheck._no_driver((9, 0))
    ptx = k.compile_ptx(specs, (9, 0))
    assert _launch.ptx_param_sizes(ptx) == sum((_launch.flat_layout(s) for s in specs), [])
    assert _launch.ptx_entry(ptx).startswith("_Z")


@needs_nvvm
def test_ptxcheck_reports_a_kernel_that_does_not_compile(tmp_path, capsys):
    def broken(x):
        x[0] = np.linalg.inv(x)       # no LAPACK on the device

    k = _launch.Kernel(broken).register()
    rec = tmp_path / "launches.json"
    rec.write_text(json.dumps([[k.name, json.dumps([_launch.argspec(np.zeros((2, 2)))])]]))
    try:
        assert ptxcheck.main([str(rec)]) == 1
    finally:
        del _launch.KERNELS[k.name]
    out = capsys.readouterr().out
    assert "broken" in out and "does not compile" in out
    assert "never launched" in out          # and the module kernels this record never ran are listed


@needs_nvvm
@pytest.mark.skipif(ptxcheck.find_ptxas() is None, reason="no ptxas")
def test_ptxas_rejects_a_kernel_the_gpu_could_not_load():
    """NVVM compiles a kernel asking for 160 KB of static shared memory; assembling it for the GPU fails, which
    is what --ptxas is for. A normal kernel assembles and reports its registers."""
    from numba import cuda, float64

    def greedy(x):
        s = cuda.shared.array(20000, float64)
        s[cuda.threadIdx.x] = x[0]
        cuda.syncthreads()
        x[0] = s[0]

    def fine(x):
        x[cuda.threadIdx.x] += 1.0

    spec = [_launch.argspec(np.zeros(4))]
    ptxcheck._no_driver((9, 0))
    with pytest.raises(RuntimeError, match="shared"):
        ptxcheck.assemble(ptxcheck.find_ptxas(), _launch.Kernel(greedy).compile_ptx(spec, (9, 0)), (9, 0))
    regs, spill, smem = ptxcheck.assemble(ptxcheck.find_ptxas(), _launch.Kernel(fine).compile_ptx(spec, (9, 0)), (9, 0))
    assert 0 < regs < 64 and spill == 0 and smem == 0
