"""Shared test fixtures: devices, dtype tolerances, non-contiguous copies, directional finite differences."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Tolerances for a kernel against the float64 reference, per dtype. float32 reductions over long rows
# lose a few ulps each; tests scale atol by the magnitude of the reference where values are large.
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}

DTYPES = [np.float32, np.float64]


def tol(dtype, scale=1.0):
    t = TOL[np.dtype(dtype).type]
    return dict(rtol=t["rtol"] * scale, atol=t["atol"] * scale)


def assert_close(actual, expected, dtype, scale=1.0, err_msg=""):
    """Kernel output vs float64 reference; atol grows with the reference's magnitude (llm.c style)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape} {err_msg}"
    t = tol(dtype, scale)
    mag = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=t["rtol"], atol=t["atol"] * mag, err_msg=err_msg)


def noncontig(a, device="cpu"):
    """The same values as host array `a` in a non-contiguous view on `device` (every other element of a
    larger buffer; on "cuda" the buffer is copied to the device, then sliced there)."""
    a = np.asarray(a)
    buf = np.empty(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype) if a.ndim else np.empty(2, a.dtype)
    (buf[..., ::2] if a.ndim else buf[:1].reshape(()))[...] = a
    buf = to_dev(buf, device)
    view = buf[..., ::2] if a.ndim else buf[:1].reshape(())
    assert a.ndim == 0 or a.size == 0 or not view.flags.c_contiguous or a.shape[-1] <= 1
    return view


def directional_fd(f, inputs, direction=None, eps=1e-6, seed=0):
    """Central difference of scalar f(*inputs) along one random direction, in float64.

    Returns (fd, directions): compare fd with sum_i <grad_i, direction_i> from an analytic backward.
    """
    rng = np.random.default_rng(seed)
    inputs = [np.asarray(x, dtype=np.float64) for x in inputs]
    dirs = direction or [rng.standard_normal(x.shape) for x in inputs]
    plus = f(*[x + eps * d for x, d in zip(inputs, dirs)])
    minus = f(*[x - eps * d for x, d in zip(inputs, dirs)])
    return (plus - minus) / (2 * eps), dirs


def check_backward_fd(forward, backward, inputs, seed=0, rtol=1e-5, eps=1e-6):
    """Check a float64 reference backward against directional finite differences.

    forward(*inputs) -> y ; backward(dout, *inputs) -> tuple of grads (one per input).
    The scalar is <y, dout> for a fixed random dout.
    """
    rng = np.random.default_rng(seed + 1)
    y0 = np.asarray(forward(*inputs))
    dout = rng.standard_normal(y0.shape)
    grads = backward(dout, *inputs)
    if not isinstance(grads, tuple):
        grads = (grads,)
    fd, dirs = directional_fd(lambda *xs: float(np.sum(np.asarray(forward(*xs)) * dout)), inputs, eps=eps, seed=seed)
    analytic = sum(float(np.sum(g * d)) for g, d in zip(grads, dirs))
    assert abs(fd - analytic) <= rtol * max(1.0, abs(fd)), f"finite difference {fd} vs analytic {analytic}"


# --- devices -------------------------------------------------------------------------------------------
# One suite for both devices: a test that takes the `device` fixture (or is parametrized over DEVICES) runs
# once on "cpu" and once on "cuda". The "cuda" half carries the `cuda` mark. It runs on a GPU with CuPy, or
# under Numba's CUDA simulator, which must be switched on before numba is imported, so `make test` runs it
# in a second process: NUMBA_ENABLE_CUDASIM=1 pytest -m cuda. Where neither is there it is skipped.
DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=pytest.mark.cuda)]


def cuda_available():
    from engine.backend import cuda_status
    return cuda_status()[0]


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: the test's cuda half (make test runs it under the simulator)")


def pytest_collection_modifyitems(config, items):
    if cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA here: a GPU with CuPy, or NUMBA_ENABLE_CUDASIM=1 before numba is "
                                   "imported (make test runs the cuda half so)")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


def to_dev(a, device):
    """A host array on `device`: itself on "cpu", a device copy (CuPy, or the simulator's) on "cuda"."""
    from engine.backend import to_device
    return to_device(np.asarray(a), device) if device == "cuda" else np.asarray(a)


def to_host(a):
    """Any array as a NumPy array: device arrays copied back explicitly (.get()), as CuPy requires."""
    if isinstance(a, (tuple, list)):
        return type(a)(to_host(x) for x in a)
    if a is None or type(a) is np.ndarray or np.isscalar(a) or isinstance(a, np.generic):
        return a
    return a.get()


def kernels_on(device):
    """The kernel module that serves `device`: kernels.cpu or kernels.cuda (the same names in both).
    Importing kernels.cuda needs no GPU."""
    import kernels.cpu
    import kernels.cuda
    return kernels.cuda if device == "cuda" else kernels.cpu


def on_devices(names, cpu, cuda=None):
    """Arguments for @pytest.mark.parametrize(*on_devices("a,b", cpu_cases, cuda_cases)): "device" first,
    then `names`; every case in `cpu` runs on "cpu", every case in `cuda` (default: the same) on "cuda", so
    that the simulated half can take a subset that still covers the code paths (tiny shapes, both dtypes,
    the edge cases) without the whole product. A case is a tuple of values (a bare value with one name)."""
    n = len(names.split(","))
    out = []
    for dev, cases in zip(DEVICES, (cpu, cpu if cuda is None else cuda)):
        for case in cases:
            vals = case if n > 1 else (case,)
            assert len(vals) == n, f"case {case!r} for {names!r}"
            out.append(pytest.param(dev.values[0], *vals, marks=dev.marks))
    return "device," + names, out


def cases(*lists):
    """Every combination of the lists' values, as a list of tuples (itertools.product)."""
    import itertools
    return list(itertools.product(*lists))


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    return request.param


def check_engine_grad(fn, inputs, seed=0, rtol=1e-6, eps=1e-6, device="cpu"):
    """Check the tape's gradients of `fn(*tensors) -> Tensor` against directional finite differences,
    all in float64. `inputs` are host arrays; each becomes a float64 Tensor on `device` with requires_grad."""
    import engine
    rng = np.random.default_rng(seed + 7)
    ts = [engine.tensor(np.asarray(x, np.float64), dtype=np.float64, requires_grad=True, device=device)
          for x in inputs]
    y = fn(*ts)
    assert y.device == device, f"output on {y.device}, the inputs on {device}"
    dout = rng.standard_normal(y.shape)
    y.backward(engine.tensor(dout, dtype=np.float64, device=device))
    for i, t in enumerate(ts):
        assert t.grad is not None, f"input {i} got no gradient"
        assert t.grad.device == device, f"input {i}: gradient on {t.grad.device}"

    def scalar(*xs):
        with engine.no_grad():
            out = fn(*[engine.tensor(x, dtype=np.float64, device=device) for x in xs])
        return float(np.sum(out.numpy() * dout))

    fd, dirs = directional_fd(scalar, inputs, eps=eps, seed=seed)
    analytic = sum(float(np.sum(t.grad.numpy() * d)) for t, d in zip(ts, dirs))
    assert abs(fd - analytic) <= rtol * max(1.0, abs(fd)), f"finite difference {fd} vs tape {analytic}"


# Tests that assert where a training run lands use SEED, so that the suite can be rerun across seeds
# (ENGINE_TEST_SEED=3 pytest tests/test_models.py ...) to check that each bound holds with margin; with
# ENGINE_OUTCOME_LOG=<file> each such test appends its measured values there (one JSON object per line).
SEED = int(os.environ.get("ENGINE_TEST_SEED", "0"))


def log_outcome(test, **values):
    path = os.environ.get("ENGINE_OUTCOME_LOG")
    if path:
        import json
        with open(path, "a") as f:
            f.write(json.dumps({"test": test, "seed": SEED, **{k: float(v) for k, v in values.items()}}) + "\n")
