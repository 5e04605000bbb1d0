"""pytest settings for `pytest bench/ --benchmark-only` (pytest-benchmark): options, narrow default columns, and
an engine-vs-PyTorch summary at the end.

The thread environment of `python -m bench` applies here too (bench/__main__.py says why idle OpenMP and
OpenBLAS workers sleep instead of spinning); it takes effect only if nothing imported numpy, numba or torch
earlier in this process. Defaults set here (each yields to the same flag on the command line): columns
min, median, iqr; rows sorted by name (engine, then torch; a saved run beside the new one); names without
the "test_" prefix; GC off while timing. A --benchmark-compare-fail regression ends the run with exit
status 1 and one line, instead of pytest-benchmark's traceback.
"""
import os

import pytest

from bench.__main__ import PASSIVE

for _k, _v in PASSIVE.items():
    os.environ.setdefault(_k, _v)

DEFAULTS = {"--benchmark-columns": ("benchmark_columns", ["min", "median", "iqr"]),
            "--benchmark-name": ("benchmark_name", "short"),
            "--benchmark-sort": ("benchmark_sort", "name"),
            "--benchmark-disable-gc": ("benchmark_disable_gc", True)}
RESULTS = []          # (op, shape, pass, dtype, impl, min_s, median_s), filled by test_benchmarks.py
_SESSION = []
try:
    from pytest_benchmark.session import PerformanceRegression
except ImportError:                   # without pytest-benchmark there is nothing to compare
    PerformanceRegression = ()


def pytest_addoption(parser):
    group = parser.getgroup("bench", "engine benchmarks")
    group.addoption("--bench-quick", action="store_true", help="small shapes (the --quick cases of python -m bench)")
    group.addoption("--bench-dtype", default="float32", help="float32 or float64")
    group.addoption("--bench-threads", type=int, default=None, help="threads for Numba, PyTorch and BLAS "
                                                                    "(default: all cores)")
    group.addoption("--bench-numpy", action="store_true", help="also time the float64 NumPy reference (slow)")


def pytest_configure(config):
    given = " ".join(config.invocation_params.args)
    for flag, (dest, value) in DEFAULTS.items():
        if flag not in given and hasattr(config.option, dest):
            setattr(config.option, dest, value)
    from bench import core
    core.load_peers_first()          # PyTorch before Numba's OpenMP pool (core.load_peers_first says why)


def _ms(s):
    return "-" if s is None else f"{1e3 * s:.3f}" if s < 1 else f"{1e3 * s:.0f}"


def summary_lines(results):
    """One row per op x shape x pass: engine and PyTorch medians side by side, and their ratio."""
    rows = {}
    for op, shape, pname, dtype, impl, mn, med in results:
        rows.setdefault((op, shape, pname, dtype), {})[impl] = (mn, med)
    if not rows:
        return []
    table = [("op", "shape", "pass", "engine ms", "torch ms", "x torch")]
    for (op, shape, pname, dtype), got in rows.items():
        e, t = got.get("engine", (None, None))[1], got.get("torch", (None, None))[1]
        table.append((op, shape[:34], pname, _ms(e), _ms(t), f"{t / e:.2f}" if e and t else "-"))
    w = [max(len(r[i]) for r in table) for i in range(6)]
    fmt = lambda r: "  ".join(c.ljust(w[i]) if i < 3 else c.rjust(w[i]) for i, c in enumerate(r))
    head = [f"engine vs PyTorch, {results[0][3]}: median ms per call; x torch = torch time / engine time "
            "(> 1: the engine is faster)", fmt(table[0]), fmt(["-" * n for n in w])]
    return head + [fmt(r) for r in table[1:]]


def pytest_sessionstart(session):
    _SESSION.append(session)


@pytest.hookimpl(wrapper=True)
def pytest_terminal_summary(terminalreporter):
    """After pytest-benchmark's tables: the engine-vs-PyTorch summary, and a regression as exit status 1."""
    regressed = False
    try:
        result = yield
    except PerformanceRegression:
        regressed, result = True, None
    lines = summary_lines(RESULTS)
    if lines:
        terminalreporter.write_line("")
        for line in lines:
            terminalreporter.write_line(line)
    if regressed:
        terminalreporter.write_line("\nslower than the saved run past --benchmark-compare-fail (listed above); on a "
                                    "busy machine the torch rows regress too: rerun before trusting it", red=True)
        _SESSION[-1].exitstatus = pytest.ExitCode.TESTS_FAILED
    return result
