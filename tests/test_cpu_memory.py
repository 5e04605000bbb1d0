"""kernels/cpu/_memory.py: importing the CPU kernels raises glibc's mmap and trim thresholds, so a step's
freed arrays are reused without page faults, unless the user set malloc's thresholds or opted out."""
import os
import platform
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="mallopt's thresholds are glibc's")

# 40 MiB: above glibc's largest dynamic mmap threshold (32 MiB), so by default each allocation is a fresh mmap
CODE = """
import json, resource, numpy as np, kernels.cpu
from kernels.cpu import _memory
faults = []
for _ in range(6):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(10 << 20, np.float32)
    del a
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
print(json.dumps({"done": _memory.keep_freed_memory(), "faults": faults[2:]}))
"""


def _run(env):
    import json
    drop = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES", "ENGINE_KEEP_FREED_MEMORY")
    env = {k: v for k, v in os.environ.items() if k not in drop} | env
    out = subprocess.run([sys.executable, "-c", CODE], env=env, cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_freed_memory_is_reused_without_page_faults():
    got = _run({})
    assert got["done"] == "set"
    assert max(got["faults"]) <= 2, got           # measured 0; a fresh 40 MiB mapping faults 20 to 10,240 times


def test_the_users_settings_and_the_opt_out_are_kept():
    off = _run({"ENGINE_KEEP_FREED_MEMORY": "0"})
    assert off["done"] == "off"
    # glibc's default: a fresh mmap each time, at least 20 faults even in 2 MiB huge pages (measured 532 with
    # NumPy's madvise(MADV_HUGEPAGE); 10,240 in 4 KiB pages): the fault count can tell the two apart
    assert min(off["faults"]) >= 20, off
    assert _run({"MALLOC_TRIM_THRESHOLD_": "131072"})["done"] == "user's"
    assert _run({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"})["done"] == "user's"
