"""The CPU cases under pytest-benchmark: `pytest bench/ --benchmark-only [--bench-quick] [--bench-numpy]`.

One test per case x pass x implementation, grouped per op, pass and the shape timed, so that each group
puts the engine beside PyTorch (and, with --bench-numpy, the float64 NumPy reference). The callables are
those of `python -m bench` (bench/runner.py says what each pass times); each is called twice untimed first
(compilation, first touch), then pytest-benchmark calibrates and times it, one implementation after the
other. Saved runs and comparisons: `make bench-save` / `make bench-compare` (README, "Benchmarks").
"""
import os
import re

import numpy as np
import pytest

from bench import conftest, core, runner

core.load_all()
_BUILT = {}


def _passes(case):
    return ("step",) if case.family in ("models", "optim") else ("fwd", "bwd")


def _slug(label):
    return re.sub(r"[^A-Za-z0-9.+]+", "_", label).strip("_")


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    quick = metafunc.config.getoption("--bench-quick")
    impls = ("engine", "torch") + (("numpy",) if metafunc.config.getoption("--bench-numpy") else ())
    params = [pytest.param(case, p, impl, id=f"{case.op}-{_slug(case.label_for(quick))}-{p}-{impl}")
              for case in core.CASES if "cpu" in case.devices for p in _passes(case) for impl in impls
              if not (case.family == "models" and impl == "numpy")]     # models: engine vs PyTorch only
    metafunc.parametrize("case,pname,impl", params)


@pytest.fixture(scope="session")
def bench_opts(request):
    threads = request.config.getoption("--bench-threads") or os.cpu_count()
    core.set_threads(threads)
    return request.config.getoption("--bench-quick"), request.config.getoption("--bench-dtype")


def _impls(case, quick, dtype):
    key = (id(case), quick, dtype)
    if key not in _BUILT:
        _BUILT.clear()                                 # keep one case's arrays alive at a time
        ctx = runner.Ctx(dtype, "cpu", quick)
        _BUILT[key] = case.build(ctx, case.quick if quick else case.params)
    return _BUILT[key]


def test_case(benchmark, bench_opts, case, pname, impl):
    quick, dtype = bench_opts
    import engine.functional as F
    need = (case.engine_op,) if isinstance(case.engine_op, str) else (case.engine_op or ())
    missing = [n for n in need if not hasattr(F, n)]
    if missing:
        pytest.skip(f"engine.functional has no {', '.join(missing)}")
    fn = _impls(case, quick, dtype).passes.get(pname, {}).get(impl)
    if fn is None:
        pytest.skip(f"no {impl} implementation of {case.op} {pname}")
    shape = case.label_for(quick)
    benchmark.group = f"{case.op} {pname} [{shape}] {np.dtype(dtype).name}"
    benchmark.extra_info.update(op=case.op, family=case.family, shape=shape, pass_=pname, impl=impl)
    fn()                                               # compile and first touch, untimed
    fn()
    benchmark(fn)
    if benchmark.stats is not None:                   # None under --benchmark-disable
        st = benchmark.stats.stats
        conftest.RESULTS.append((case.op, shape, pname, np.dtype(dtype).name, impl, st.min, st.median))
