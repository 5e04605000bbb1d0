"""python -m engine.warmup runs a training step of every layer family, and a second run compiles nothing; a
compile prints one line on stderr saying so."""
import numpy as np
import pytest
from numba.core import event

from engine import warmup


class _Count(event.Listener):
    def __init__(self):
        self.n = 0

    def on_start(self, ev):
        self.n += 1

    def on_end(self, ev):
        pass


def test_warmup_covers_the_families_and_leaves_nothing_to_compile(capsys):
    # two worker processes compile into the (test) cache; this process then loads what they cached: it may
    # compile only what a race on a kernel's cache index dropped (two workers adding signatures to one
    # kernel's index at the same moment), never the ~45 kernels the workloads need
    count = _Count()
    with event.install_listener("numba:compile", count):
        times = warmup.warmup(("float32",), quiet=True, jobs=2)
    assert set(times) == {f"{w}/float32" for w in ("mlp", "cnn", "resnet", "attention", "recurrent")}
    assert count.n <= 3, f"{count.n} kernels compiled here after the workers had cached them"
    assert set(warmup.LONGEST_FIRST) == {w for w, _ in warmup._workloads(np.float32)}
    count = _Count()
    with event.install_listener("numba:compile", count):
        warmup.warmup(("float32",), quiet=True)
    assert count.n == 0, f"{count.n} kernels compiled on the second run"


def test_warmup_rejects_a_bad_job_count(capsys):
    with pytest.raises(SystemExit):
        warmup.main(["--jobs", "0"])
    assert "--jobs: expected a positive count, got 0" in capsys.readouterr().err


def test_a_compile_says_so_once(capsys, monkeypatch):
    import kernels.cpu  # noqa: F401  (installs the notice)
    from kernels import _notice
    listener = _notice._LISTENER
    monkeypatch.setattr(listener, "started", None)        # as in a fresh process
    monkeypatch.setattr(listener, "done", 0)
    from numba import njit

    @njit
    def f(x):                        # a fresh function: it must compile
        return x * 2.0
    f(np.float64(1.0))
    f(np.int64(1))
    f(np.int64(2))                   # no compile
    err = capsys.readouterr().err
    assert err.count("engine: compiling kernels for first use") == 1, err
    assert listener.done == 2
