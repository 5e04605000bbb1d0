"""The registered cases under pytest-benchmark: `pytest bench/ --benchmark-only [--bench-quick]`.

One test per case x pass x implementation, grouped per case and pass, so pytest-benchmark's table puts the
engine beside the NumPy reference and PyTorch. Same callables as `python -m bench` (bench/runner.py says what
each pass times); pytest-benchmark does the rounds, one implementation after another (not interleaved).
"""
import os

import numpy as np
import pytest

from bench import core, runner

core.load_all()
IMPLS = ("engine", "numpy", "torch")
_BUILT = {}


def _passes(case):
    return ("step",) if case.family in ("models", "optim") else ("fwd", "bwd")


PARAMS = [pytest.param(case, p, impl, id=f"{case.op}[{case.label}]-{p}-{impl}")
          for case in core.CASES for p in _passes(case) for impl in IMPLS
          if not (case.family == "models" and impl == "numpy")]          # models: engine vs PyTorch only


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


@pytest.mark.parametrize("case,pname,impl", PARAMS)
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
    benchmark.group = f"{case.op} [{case.label}] {pname} {np.dtype(dtype).name}"
    benchmark.extra_info.update(op=case.op, family=case.family, label=case.label, pass_=pname, impl=impl)
    rounds = (3 if impl == "numpy" else 10) if not quick else 3
    benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1, iterations=1)
