"""One line on stderr when kernels compile, so that a first run's wait is never silent.

Numba compiles a kernel on its first call with a new argument signature unless its cache has it (the cache
lives under kernels.cache_dir(); `python -m engine.warmup` fills it ahead of time). Numba broadcasts a
"numba:compile" event only for real compiles, not for cache loads, so a warm run prints nothing. The first
compile prints one line; a long run of compiles then adds a line with the count at most every PROGRESS_EVERY
seconds. `kernels._notice.ENABLED = False` silences it.
"""
import os
import sys
import time

from numba.core import event

ENABLED = True
PROGRESS_EVERY = 5.0          # seconds between progress lines when stderr is not a terminal


class _CompileNotice(event.Listener):
    def __init__(self):
        self.depth = 0        # kernels call other kernels: count the outermost compile only
        self.done = 0
        self.started = None
        self.last = 0.0

    def on_start(self, ev):
        self.depth += 1
        if self.depth > 1 or not ENABLED:
            return
        now = time.perf_counter()
        if self.started is None:
            self.started = self.last = now
            from kernels import CACHE_DIR
            _write(f"engine: compiling kernels for first use, once per machine (cached in {CACHE_DIR}; "
                   "`python -m engine.warmup` compiles them ahead of time)\n")

    def on_end(self, ev):
        self.depth -= 1
        if self.depth or not ENABLED or self.started is None:
            return
        self.done += 1
        now = time.perf_counter()
        name = getattr(ev.data.get("dispatcher"), "__name__", "?") if isinstance(ev.data, dict) else "?"
        line = f"engine: compiled {self.done} kernel{'s' * (self.done != 1)} in {now - self.started:.0f} s ({name})"
        if now - self.last >= PROGRESS_EVERY:
            _write(line + "\n")
            self.last = now


def _write(text):
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass


_LISTENER = None


def install():
    """Register the listener once per process."""
    global _LISTENER
    if _LISTENER is None and os.environ.get("NUMBA_DISABLE_JIT", "0") in ("", "0"):
        _LISTENER = _CompileNotice()
        event.register("numba:compile", _LISTENER)
